#!/usr/bin/env bash
# `lfl data preview` / `lfl data stats` with a real tokenizer from
# ../shared/data/tokenizers: rendered examples with trained spans in [[...]]
# (ANSI colour with --color), counts, skipped rows, truncation, percentiles,
# preference and KTO previews, and clear errors for bad arguments.
# Usage: test_data_cmd.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_data_cmd.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOK="$ROOT/../shared/data/tokenizers"
DATA="$ROOT/tests/golden/preprocess/data"
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export HOME=$TMPD
unset LFL_PATH LFL_HOME

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
run() {
    timeout 60 "$@" >"$TMPD/out" 2>"$TMPD/err" </dev/null
    RC=$?
    OUT=$(cat "$TMPD/out")
    ERR=$(cat "$TMPD/err")
}
expect() {
    local name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "rc=$RC
stdout: $OUT
stderr: $ERR"; fi
}
has() { printf '%s' "$OUT" | grep -qF -- "$1"; }
lacks() { ! printf '%s' "$OUT" | grep -qF -- "$1"; }
err_has() { printf '%s' "$ERR" | grep -qF -- "$1"; }

cd "$ROOT"

run "$LFL" data preview alpaca_demo --template llama3 --model "$TOK/llama3" -n 2
expect "preview alpaca runs" test "$RC" -eq 0
expect "preview shows the prompt unhighlighted" has "<|start_header_id|>user<|end_header_id|>"
expect "preview brackets the trained answer with its EOS" has "[[tekcor<|eot_id|>]]"
expect "preview prints -n examples" test "$(printf '%s' "$OUT" | grep -c '^--- example')" -eq 2
expect "no ANSI when not a terminal" lacks $'\e['

run "$LFL" data preview alpaca_demo --template llama3 --model "$TOK/llama3" -n 1 --color
expect "--color highlights with ANSI" has $'\e[1;32mtekcor<|eot_id|>\e[0m'

run "$LFL" data preview chat --dataset_dir "$DATA" --template qwen3 --model "$TOK/qwen3" -n 3
expect "qwen3 preview trains the empty think block" has "[[<think>"
expect "preview reports the skipped record" has "1 skipped: a conversation must have an even number of turns"
# examples 1 and 2 have one answer, example 3 three: 5 trained spans
expect "multi-turn: every answer trained" test "$(printf '%s' "$OUT" | grep -c '^\[\[')" -eq 5

run "$LFL" data preview chat --dataset_dir "$DATA" --template qwen3 --model "$TOK/qwen3" -n 3 --mask_history
expect "mask_history: only the last answer of each example trained" test "$(printf '%s' "$OUT" | grep -c '^\[\[')" -eq 3
expect "mask_history: the last answer is the trained one" has "Douze.<|im_end|>"

run "$LFL" data preview pref --stage rm --dataset_dir "$DATA" --template llama3 --model "$TOK/llama3" -n 1
expect "pairwise preview shows chosen and rejected" has "[[Seven, obviously, because numbers are colours.<|eot_id|>]]"
expect "pairwise preview labels" has "[chosen]"

run "$LFL" data preview kto --stage kto --dataset_dir "$DATA" --template llama3 --model "$TOK/llama3" -n 2
expect "kto preview tags" has "undesirable"
expect "kto preview KL pair" has "[KL pair]"

run "$LFL" data stats chat --dataset_dir "$DATA" --template llama3 --model "$TOK/llama3" --cutoff_len 64
expect "stats runs" test "$RC" -eq 0
expect "stats counts records" has "records             7"
expect "stats counts kept" has "kept                6"
expect "stats counts skipped" has "skipped             1"
expect "stats counts truncated" has "truncated           3 of 6 (longer than cutoff_len 64)"
expect "stats percentiles" bash -c 'printf "%s" "$0" | grep -qE "as trained +mean +[0-9.]+  p50 +[0-9]+  p90 +[0-9]+  p99 +[0-9]+  max +64$"' "$OUT"

run "$LFL" data stats alpaca_demo --template alpaca --model "$TOK/qwen3"
expect "stats on alpaca demo" has "records             400"
expect "stats nothing truncated at 2048" has "truncated           0 of 400"

run "$LFL" data stats chat --dataset_dir "$DATA" --template llama3
expect "missing --model is an error" test "$RC" -ne 0
expect "missing --model says so" err_has "--model (the tokenizer to use) is required"

run "$LFL" data stats nope --dataset_dir "$DATA" --template llama3 --model "$TOK/llama3"
expect "unknown dataset named" err_has "no dataset named 'nope'"

run "$LFL" data frobnicate x --model "$TOK/llama3"
expect "unknown subcommand" err_has "unknown subcommand frobnicate"

run "$LFL" data preview chat --dataset_dir "$DATA" --template nosuch --model "$TOK/llama3"
expect "unknown template" err_has "unknown template 'nosuch'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
