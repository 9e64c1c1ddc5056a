#!/usr/bin/env bash
# LlamaFactory's recipe form of the inference commands, run as processes:
# `lfl chat recipe.yaml k=v` (llamafactory-cli chat examples/inference/*.yaml),
# `lfl api recipe.yaml` with API_HOST / API_PORT / API_KEY, `lfl serve` with a
# recipe, `lfl eval recipe.yaml` and `lfl export` with LlamaFactory's merge recipe,
# on the tiny llama of tests/golden/models with the 64-token test tokenizer.
# Usage: test_recipe_commands.sh path/to/lfl
trap "" PIPE
set -u
LFL=$(realpath "${1:?usage: test_recipe_commands.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LF=$ROOT/../shared/reference/llamafactory-examples
TMPD=$(mktemp -d)
PID=
M=$TMPD/tiny
mkdir -p "$M"
cp "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
   "$ROOT/tests/golden/serve/tokenizer.json" "$M/"
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMPD"; }
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$OUT"; fi; }

cat >"$TMPD/infer.yaml" <<EOF
model_name_or_path: $M
template: chatml
infer_backend: huggingface  # choices: [huggingface, vllm, sglang, ktransformers]
trust_remote_code: true
EOF

# ---- chat ----
OUT=$(printf 'Hi\nexit\n' | timeout 60 "$LFL" chat "$TMPD/infer.yaml" temperature=0 max_new_tokens=4 2>&1); RC=$?
check "chat with a recipe answers" '[ $RC -eq 0 ] && [[ "$OUT" == *"Assistant: "* ]]'
GREEDY=$(printf 'Hi\nexit\n' | timeout 60 "$LFL" chat --model "$M" --template chatml --temperature 0 --max-new-tokens 4 2>&1)
# (the recipe's trust_remote_code gets lfl.args' note on stderr: compare the replies)
check "recipe and --options give the same reply" '[ "$(grep Assistant <<<"$OUT")" = "$(grep Assistant <<<"$GREEDY")" ]'
OUT=$(printf 'Hi\nexit\n' | timeout 60 "$LFL" chat "model_name_or_path=$M" template=chatml do_sample=false \
      max_new_tokens=4 2>&1); RC=$?
check "chat with key=value only (do_sample=false is greedy)" '[ $RC -eq 0 ] && [ "$OUT" = "$GREEDY" ]'
OUT=$("$LFL" chat "$TMPD/infer.yaml" infer_backend=vllm 2>&1 </dev/null); RC=$?
check "other infer_backend refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"infer_backend '"'"'vllm'"'"' is not available"* ]]'
OUT=$("$LFL" chat "$TMPD/infer.yaml" temprature=0 2>&1 </dev/null); RC=$?
check "unknown key refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"unknown argument '"'"'temprature'"'"'"* ]]'

# ---- api (serve's LlamaFactory name) with API_HOST / API_PORT / API_KEY ----
API_HOST=127.0.0.1 API_PORT=0 API_KEY=sekrit "$LFL" api "$TMPD/infer.yaml" max_new_tokens=3 \
    >"$TMPD/api.out" 2>"$TMPD/api.log" &
PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMPD/api.out" 2>/dev/null | sed 's/.*://')
    [ -n "$PORT" ] && break
    sleep 0.1
done
OUT=$(cat "$TMPD/api.out" "$TMPD/api.log")
check "api listens on API_HOST with a free API_PORT" '[ -n "$PORT" ] && [[ "$OUT" == *"API key required"* ]]'
if [ -n "$PORT" ]; then
    OUT=$(curl -s -w ' %{http_code}' --max-time 10 "http://127.0.0.1:$PORT/v1/models")
    check "API_KEY enforced" '[[ "$OUT" == *" 401" ]]'
    OUT=$(curl -s -w ' %{http_code}' --max-time 30 -H "Authorization: Bearer sekrit" -H Content-Type:application/json \
          -d '{"model":"x","messages":[{"role":"user","content":"Hi"}]}' "http://127.0.0.1:$PORT/v1/chat/completions")
    check "the recipe's max_new_tokens limits replies" '[[ "$OUT" == *"\"completion_tokens\":3"* ]] && [[ "$OUT" == *" 200" ]]'
fi
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
OUT=$("$LFL" serve "$TMPD/infer.yaml" --port 0 2>&1 </dev/null); RC=$?
check "serve: --options after a recipe refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"give settings as key=value"* ]]'

# ---- eval ----
cat >"$TMPD/eval.yaml" <<EOF
model_name_or_path: $M
finetuning_type: lora
task: mmlu_demo_test
task_dir: $ROOT/tests/golden/eval
template: fewshot
lang: en
n_shot: 2
save_dir: $TMPD/eval
batch_size: 4
EOF
OUT=$(timeout 120 "$LFL" eval "$TMPD/eval.yaml" seed=1 2>&1); RC=$?
REF=$(timeout 120 "$LFL" eval --model "$M" --task mmlu_demo_test --task_dir "$ROOT/tests/golden/eval" --n_shot 2 \
      --seed 1 2>&1)
check "eval with a recipe" '[ $RC -eq 0 ] && [[ "$OUT" == *"Average:"* ]] && [ -s "$TMPD/eval/results.json" ]'
check "eval recipe and --options agree" '[ "$(grep Average <<<"$OUT")" = "$(grep Average <<<"$REF")" ]'

# ---- export with LlamaFactory's merge recipe ----
"$LFL" -e "local m = lfl.model.load('$M'); lfl.peft.add_lora(m, {rank = 2}); lfl.peft.save_adapter(m, '$TMPD/adapter', '$M')" \
    >/dev/null 2>&1
if [ -f "$LF/merge_lora/qwen3_lora_sft.yaml" ]; then
    OUT=$(timeout 120 "$LFL" export "$LF/merge_lora/qwen3_lora_sft.yaml" "model_name_or_path=$M" \
          "adapter_name_or_path=$TMPD/adapter" "export_dir=$TMPD/merged" 2>&1); RC=$?
    check "export with LlamaFactory's merge recipe" '[ $RC -eq 0 ] && [ -s "$TMPD/merged/model.safetensors" ] && [ -s "$TMPD/merged/tokenizer.json" ]'
else
    echo "(export part skipped: $LF is missing)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
