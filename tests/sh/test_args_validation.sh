#!/usr/bin/env bash
# Bad argument values through the real `lfl train` command line (a YAML
# recipe, key=value overrides): the run fails fast, with a non-zero exit
# status and a message naming the key, the value and what was expected,
# before any model loads. The recipe's model is the tiny golden llama, so the
# same recipe with good values does load it (the "[lfl] model ... loaded"
# line), and with a missing model path the value error still comes first. Also
# `lfl chat` option ranges, and the note for a setting without effect.
# Usage: test_args_validation.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_args_validation.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export HOME=$TMPD LFL_CACHE=$TMPD/cache
unset LFL_PATH

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
# run CMD...: sets OUT (stdout and stderr) and RC, bounded by a timeout
run() { OUT=$(timeout 120 "$@" 2>&1 </dev/null); RC=$?; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "rc=$RC
$OUT"; fi; }

mkdir -p "$TMPD/model"
for f in tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors tests/golden/serve/tokenizer.json; do
    ln -s "$ROOT/$f" "$TMPD/model/"
done
cat >"$TMPD/recipe.yaml" <<EOF
model_name_or_path: $TMPD/model
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
dataset: alpaca_demo
template: chatml
cutoff_len: 24
max_samples: 4
output_dir: $TMPD/run
per_device_train_batch_size: 2
max_steps: 1
logging_steps: 1
learning_rate: 1.0e-3
overwrite_output_dir: true
disable_tqdm: true
EOF

# ---- the good recipe loads the model and trains (the marker the checks below look for) ----
run "$LFL" train "$TMPD/recipe.yaml"
check "the good recipe trains" '[ $RC -eq 0 ] && [[ "$OUT" == *"[lfl] model "*" loaded in "* ]] && [[ "$OUT" == *"[lfl] done: 1 steps"* ]]'

# ---- bad values on the command line: refused before the model loads ----
bad() { # bad NAME EXPECTED ARGS...
    local name=$1 want=$2; shift 2
    run "$LFL" train "$TMPD/recipe.yaml" "$@"
    check "$name" '[ $RC -ne 0 ] && [[ "$OUT" == *"$want"* ]] && [[ "$OUT" != *" loaded in "* ]]'
}
bad "lora_rank=abc" 'command line: lora_rank: expected an integer >= 1, got "abc"' lora_rank=abc
bad "lora_rank=0" "command line: lora_rank: expected an integer >= 1, got 0" lora_rank=0
bad "seed=x" 'command line: seed: expected an integer in [0, 2^32 - 1], got "x"' seed=x
bad "per_device_train_batch_size=0" "per_device_train_batch_size: expected an integer >= 1, got 0" per_device_train_batch_size=0
bad "learning_rate=-1" "learning_rate: expected a number >= 0, got -1" learning_rate=-1
bad "lora_dropout=1.5" "lora_dropout: expected a number in [0, 1), got 1.5" lora_dropout=1.5
bad "top_p=2" "top_p: expected a number in (0, 1], got 2" top_p=2
bad "do_sample=maybe" 'do_sample: expected true or false' do_sample=maybe
bad "lr_scheduler_type=cosin" 'lr_scheduler_type: expected one of linear, cosine' lr_scheduler_type=cosin
bad "quantization_bit=3" "quantization_bit: 3: only bitsandbytes quantization (quantization_bit: 4" quantization_bit=3
bad "lora_rank with full" "lora_rank: 16 has no effect: it applies to finetuning_type lora (this run's is full)" \
    finetuning_type=full lora_rank=16
bad "unknown key" "command line: unknown argument 'lora_rnak' (did you mean 'lora_rank'?)" lora_rnak=8
bad "unknown template" "unknown template 'nosuch'" template=nosuch
bad "unknown dataset" "no_such_dataset" dataset=no_such_dataset

# ---- a bad value in the YAML file names the file ----
sed 's/^lora_rank: 4$/lora_rank: "abc"/' "$TMPD/recipe.yaml" >"$TMPD/bad.yaml"
run "$LFL" train "$TMPD/bad.yaml"
check "a bad YAML value names the file" '[ $RC -ne 0 ] && [[ "$OUT" == *"$TMPD/bad.yaml: lora_rank: expected an integer >= 1, got \"abc\""* ]] && [[ "$OUT" != *" loaded in "* ]]'
run "$LFL" "$TMPD/bad.yaml"
check "lfl recipe.yaml (no train word) the same" '[ $RC -ne 0 ] && [[ "$OUT" == *"lora_rank: expected an integer >= 1"* ]]'

# ---- with no model at all, the value error still comes first ----
run "$LFL" train "$TMPD/recipe.yaml" model_name_or_path="$TMPD/no-such-model" seed=x
check "the value error before the missing model" '[ $RC -ne 0 ] && [[ "$OUT" == *"seed: expected an integer"* ]] && [[ "$OUT" != *"no-such-model"* ]]'

# ---- good text values are coerced; a setting without effect is noted ----
run "$LFL" train "$TMPD/recipe.yaml" lora_rank=8 do_sample=no dataloader_num_workers=4 output_dir="$TMPD/run2"
check "coerced values train, with a note" '[ $RC -eq 0 ] && [[ "$OUT" == *"[lfl] note: dataloader_num_workers=4 has no effect in lfl"* ]] && [[ "$OUT" == *"[lfl] done: 1 steps"* ]]'
OUT=$(cat "$TMPD/run2/adapter_config.json" 2>&1)
check "lora_rank=8 took effect (the recipe says 4)" 'grep -Eq "\"r\":[[:space:]]*8," <<<"$OUT"'

# ---- lfl chat option ranges, before the model ----
run "$LFL" chat --model "$TMPD/no-such-model" --top-p 2
check "chat --top-p 2 refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"lfl chat: --top-p: expected a number in (0, 1], got 2"* ]]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
