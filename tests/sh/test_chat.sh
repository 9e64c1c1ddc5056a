#!/usr/bin/env bash
# `lfl chat` driven through pipes: streamed replies, `clear`, `exit`, end of
# input, option errors, and Ctrl-C (SIGINT) stopping a reply without leaving.
# Uses SmolLM2-135M-Instruct (tests/fixtures.sh; its parts are skipped without
# it) and the tiny llama of tests/golden/models with the 64-token test tokenizer.
# Usage: test_chat.sh path/to/lfl
trap "" PIPE # a chat that died must fail a check below, not kill this script
set -u
LFL=$(realpath "${1:?usage: test_chat.sh path/to/lfl}")
GGUF="$HOME/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
PID=
TINY=$TMPD/tiny
mkdir -p "$TINY"
cp "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
   "$ROOT/tests/golden/serve/tokenizer.json" "$TINY/"
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMPD"; }
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$OUT"; fi; }

OUT=$("$LFL" chat --bogus 2>&1); RC=$?
check "unknown option fails" '[ $RC -ne 0 ] && [[ "$OUT" == *"unknown option --bogus"* ]]'
OUT=$("$LFL" chat 2>&1 </dev/null); RC=$?
check "--model required" '[ $RC -ne 0 ] && [[ "$OUT" == *"--model is required"* ]]'
OUT=$("$LFL" chat --model x --temperature hot 2>&1); RC=$?
check "numeric option checked" '[ $RC -ne 0 ] && [[ "$OUT" == *"--temperature expects a number"* ]]'

if [ ! -f "$GGUF" ]; then
    echo "(model parts skipped: $GGUF missing; run tests/fixtures.sh)"
else
    OUT=$(printf 'What is the capital of France?\nWhat did I just ask?\nclear\nWhat did I just ask?\nexit\nnever read\n' |
          timeout 120 "$LFL" chat --model "$GGUF" --template chatml --temperature 0 --max-new-tokens 12 2>&1); RC=$?
    check "pipe chat exits 0" '[ $RC -eq 0 ]'
    check "answers" '[[ "$OUT" == *"Assistant: The capital of France is Paris."* ]]'
    check "clear" '[[ "$OUT" == *"History has been removed."* ]]'
    check "exit stops reading" '[ $(grep -o "Assistant:" <<<"$OUT" | wc -l) -eq 3 ]'
    # the same question with and without the history gets different replies
    A2=$(grep -o "Assistant: .*" <<<"$OUT" | sed -n 2p); A3=$(grep -o "Assistant: .*" <<<"$OUT" | sed -n 3p)
    check "history kept, then cleared" '[ -n "$A2" ] && [ "$A2" != "$A3" ]'
fi
OUT=$(printf 'Hi\n' | timeout 60 "$LFL" chat --model "$TINY" --template chatml --max-new-tokens 4 2>&1); RC=$?
check "end of input exits 0" '[ $RC -eq 0 ] && [[ "$OUT" == *"Assistant: "* ]]'
# Ctrl-C during a long reply: the reply stops, the chat goes on
mkfifo "$TMPD/in"
timeout 120 "$LFL" chat --model "$TINY" --template chatml --temperature 0 --max-new-tokens 1000000 \
    <"$TMPD/in" >"$TMPD/out" 2>&1 &
PID=$!
exec 3>"$TMPD/in"
echo "Write a long story." >&3
for _ in $(seq 1 120); do
    [ "$(wc -c <"$TMPD/out")" -gt 160 ] && break
    sleep 0.5
done
kill -INT "$PID"
sleep 1
echo "exit" >&3
exec 3>&-
wait "$PID"; RC=$?; PID=
OUT=$(cat "$TMPD/out")
check "Ctrl-C stops the reply" '[[ "$OUT" == *"[stopped]"* ]]'
# the prompt comes back and `exit` is read: the chat went on
check "chat continues after Ctrl-C" '[ $RC -eq 0 ] && [[ "$OUT" == *"[stopped]"$'"'"'\n\nUser: '"'"'* ]]'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
