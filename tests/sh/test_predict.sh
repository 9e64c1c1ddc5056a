#!/usr/bin/env bash
# `lfl train` with do_predict (a LlamaFactory-style predict YAML without
# do_train predicts only; a recipe with a dataset trains, then predicts; the
# trained adapter predicts alone) and `lfl perplexity` (against the
# transformers golden, with an adapter, option errors). Uses
# SmolLM2-135M-Instruct (tests/fixtures.sh); its parts are skipped, saying so,
# without it. Usage: test_predict.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_predict.sh path/to/lfl}")
GGUF="${LFL_CACHE:-$HOME/.cache/lfl}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export LFL_CACHE=$TMPD/cache # the dataset cache of these runs stays here

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$OUT"; fi; }
# the number after "key: " in $OUT
field() { printf '%s\n' "$OUT" | sed -n "s/^$1: //p"; }

# ---- option errors (no model needed) ----
OUT=$("$LFL" perplexity 2>&1); RC=$?
check "perplexity: --model and --file required" '[ $RC -ne 0 ] && [[ "$OUT" == *"--model and --file are required"* ]]'
OUT=$("$LFL" perplexity --model x --file "$TMPD/none.txt" 2>&1); RC=$?
check "perplexity: unreadable file named" '[ $RC -ne 0 ] && [[ "$OUT" == *"cannot read $TMPD/none.txt"* ]]'
OUT=$("$LFL" perplexity --model x --file y --stride half 2>&1); RC=$?
check "perplexity: --stride checked" '[ $RC -ne 0 ] && [[ "$OUT" == *"--stride expects a whole number"* ]]'
OUT=$("$LFL" help perplexity 2>&1); RC=$?
check "help perplexity" '[ $RC -eq 0 ] && [[ "$OUT" == *"--cutoff_len N"* ]]'
OUT=$("$LFL" help 2>&1); RC=$?
check "perplexity listed" '[[ "$OUT" == *"perplexity "* ]]'
cat > "$TMPD/nogen.yaml" <<EOF
model_name_or_path: $TMPD/no-model
stage: sft
do_predict: true
eval_dataset: alpaca_demo
EOF
OUT=$("$LFL" "$TMPD/nogen.yaml" 2>&1); RC=$?
check "do_predict needs predict_with_generate" '[ $RC -ne 0 ] && [[ "$OUT" == *"needs predict_with_generate"* ]]'
OUT=$("$LFL" "$TMPD/nogen.yaml" predict_with_generate=true num_beams=3 2>&1); RC=$?
check "beam search refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"beam search is not supported"* ]]'
cat > "$TMPD/noeval.lua" <<EOF
return {model_name_or_path = "$TMPD/no-model", stage = "sft", dataset = "alpaca_demo", do_predict = true,
  predict_with_generate = true}
EOF
OUT=$("$LFL" train "$TMPD/noeval.lua" 2>&1); RC=$?
check "train + predict without an eval set fails before training" '[ $RC -ne 0 ] && [[ "$OUT" == *"needs eval_dataset"* ]] && [[ "$OUT" != *"no-model"* ]]'

if [ ! -f "$GGUF" ]; then
    echo "(model parts skipped: $GGUF missing; run tests/fixtures.sh)"
else
    # LlamaFactory's *_predict.yaml shape: no do_train, eval_dataset only -> prediction only
    cat > "$TMPD/predict.yaml" <<EOF
model_name_or_path: $GGUF
stage: sft
do_predict: true
finetuning_type: lora
eval_dataset: alpaca_demo
dataset_dir: $ROOT/recipes/data
template: smollm
cutoff_len: 128
max_samples: 2
output_dir: $TMPD/pred
per_device_eval_batch_size: 2
predict_with_generate: true
do_sample: false
max_new_tokens: 4
EOF
    OUT=$(timeout 300 "$LFL" "$TMPD/predict.yaml" 2>&1); RC=$?
    check "predict-only yaml runs" '[ $RC -eq 0 ] && [[ "$OUT" == *"predict_bleu-4"* ]]'
    check "predict-only: 2 prediction lines" '[ "$(wc -l < "$TMPD/pred/generated_predictions.jsonl")" = 2 ]'
    check "predict-only: jsonl keys" 'head -1 "$TMPD/pred/generated_predictions.jsonl" | grep -q "^{\"prompt\": \".*\", \"predict\": \".*\", \"label\": \"tekcor\\\\n\"}$"'
    check "predict-only: predict_results.json" 'grep -q "\"predict_rouge-l\": " "$TMPD/pred/predict_results.json"'
    check "predict-only: no training" '[ ! -e "$TMPD/pred/adapter_model.safetensors" ] && [ ! -e "$TMPD/pred/trainer_log.jsonl" ]'

    # a recipe with a dataset trains (one step), then predicts with the trained adapter live
    cat > "$TMPD/train.lua" <<EOF
return {model_name_or_path = "$GGUF", stage = "sft", finetuning_type = "lora", lora_rank = 2,
  lora_target = "q_proj,v_proj", dataset = "alpaca_demo", dataset_dir = "$ROOT/recipes/data", template = "smollm",
  cutoff_len = 64, max_samples = 2, max_steps = 1, per_device_train_batch_size = 2, learning_rate = 1e-3,
  output_dir = "$TMPD/train", logging_steps = 1, do_predict = true, predict_with_generate = true,
  eval_dataset = "alpaca_demo", do_sample = false, max_new_tokens = 4}
EOF
    OUT=$(timeout 300 "$LFL" train "$TMPD/train.lua" 2>&1); RC=$?
    check "train then predict runs" '[ $RC -eq 0 ] && [[ "$OUT" == *"predict_rouge-1"* ]]'
    check "train then predict: adapter and predictions" '[ -f "$TMPD/train/adapter_model.safetensors" ] && [ "$(wc -l < "$TMPD/train/generated_predictions.jsonl")" = 2 ]'
    check "train then predict: all_results has both" 'grep -q "\"train_loss\"" "$TMPD/train/all_results.json" && grep -q "\"predict_bleu-4\"" "$TMPD/train/all_results.json"'

    # the saved adapter, prediction only
    OUT=$(timeout 300 "$LFL" train "$TMPD/predict.yaml" adapter_name_or_path="$TMPD/train" output_dir="$TMPD/pred2" 2>&1); RC=$?
    check "predict with adapter_name_or_path" '[ $RC -eq 0 ] && [ "$(wc -l < "$TMPD/pred2/generated_predictions.jsonl")" = 2 ]'

    # perplexity against transformers (tests/golden/eval/perplexity.json, windows of 40 tokens)
    cat > "$TMPD/golden.lua" <<'EOF'
local f = assert(io.open(arg[1], "rb"))
local g = lfl.json.decode(f:read("*a"))
f:close()
for _, c in ipairs(g.cases) do
  if c.cutoff_len == 40 and c.stride == 40 then print(string.format("%.10g %d %d", c.ppl, c.scored, c.windows)) end
end
EOF
    WANT=$("$LFL" "$TMPD/golden.lua" "$ROOT/tests/golden/eval/perplexity.json")
    read -r WPPL WSCORED WWIN <<< "$WANT"
    OUT=$(timeout 300 "$LFL" perplexity --model "$GGUF" --file "$ROOT/tests/golden/eval/ppl_paragraph.txt" --cutoff_len 40 --stride 40 2>&1); RC=$?
    check "perplexity runs" '[ $RC -eq 0 ] && [ -n "$WPPL" ]'
    check "perplexity: scored tokens and windows" '[ "$(field scored)" = "$WSCORED" ] && [ "$(field windows)" = "$WWIN" ] && [ "$(field tokens)" = 105 ]'
    check "perplexity within 1e-3 of transformers ($WPPL)" 'awk -v a="$(field ppl)" -v b="$WPPL" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != \"\" && d / b < 1e-3) }"'
    BASE=$(field ppl)
    OUT=$(timeout 300 "$LFL" perplexity --model "$GGUF" --adapter "$TMPD/train" --file "$ROOT/tests/golden/eval/ppl_paragraph.txt" --cutoff_len 40 --stride 40 2>&1); RC=$?
    check "perplexity with --adapter" '[ $RC -eq 0 ] && [ -n "$(field ppl)" ] && [ "$(field ppl)" != "$BASE" ]'
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
