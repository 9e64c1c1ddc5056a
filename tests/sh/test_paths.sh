#!/usr/bin/env bash
# Paths with spaces, quotes, `$(...)` and a newline through every command that
# writes files: lfl train (checkpoints, save_total_limit, resume, the dataset
# cache), lfl export, a predict run and lfl eval's save_dir. No file work of
# lfl goes through a shell, so such a name is just a name and nothing runs.
# Uses the tiny golden llama with the serve tokenizer. Usage: test_paths.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_paths.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
cd "$TMPD" || exit 1

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "$OUT"; fi; }

NASTY="$TMPD/it's a \"dir\" \$(touch PWNED) \`touch PWNED2\`; x
y"
mkdir -p "$NASTY/model"
ln -s "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
      "$ROOT/tests/golden/serve/tokenizer.json" "$NASTY/model/"
export LFL_CACHE="$NASTY/cache"

# recipes are Lua files, so the path goes in as a Lua string (%q quoting)
echo 'io.write(string.format("%q", arg[1]))' > q.lua
q() { "$LFL" q.lua "$1"; }
M=$(q "$NASTY/model")
OUTDIR=$(q "$NASTY/run out")
cat > recipe.lua <<LUA
return {model_name_or_path = $M, stage = "sft", dataset = "alpaca_demo", template = "chatml",
  finetuning_type = "lora", cutoff_len = 24, max_samples = 8, per_device_train_batch_size = 2,
  max_steps = 4, save_steps = 1, save_total_limit = 2, logging_steps = 1, disable_tqdm = true,
  output_dir = $OUTDIR}
LUA
OUT=$("$LFL" recipe.lua 2>&1); RC=$?
check "train into a quoted output_dir" '[ $RC -eq 0 ] && [ -f "$NASTY/run out/adapter_model.safetensors" ]'
check "save_total_limit kept the last two checkpoints" \
  '[ "$(ls "$NASTY/run out" | grep -c "^checkpoint-")" = 2 ] && [ -d "$NASTY/run out/checkpoint-3" ]'
check "the dataset cache under a quoted LFL_CACHE" '[ -n "$(ls "$NASTY/cache/datasets" 2>/dev/null)" ]'
check "nothing ran" '[ ! -e PWNED ] && [ ! -e PWNED2 ] && [ ! -e "$NASTY/PWNED" ]'

# resume from the last checkpoint of that folder
OUT=$("$LFL" recipe.lua max_steps=6 2>&1); RC=$?
check "resume in a quoted output_dir" '[ $RC -eq 0 ] && [[ "$OUT" == *"resumed from"*"checkpoint-3 (step 3)"* ]]'

# export: merge the adapter into a quoted export_dir
OUT=$("$LFL" export model_name_or_path="$NASTY/model" adapter_name_or_path="$NASTY/run out" \
      export_dir="$NASTY/merged 'x'" template=chatml 2>&1); RC=$?
check "export into a quoted export_dir" '[ $RC -eq 0 ] && [ -f "$NASTY/merged '"'"'x'"'"'/model.safetensors" ] && [ -f "$NASTY/merged '"'"'x'"'"'/config.json" ]'

# predict only, into a quoted output_dir
A=$(q "$NASTY/run out")
P=$(q "$NASTY/pred \"out\"")
cat > predict.lua <<LUA
return {model_name_or_path = $M, adapter_name_or_path = $A, stage = "sft", do_train = false, do_predict = true,
  predict_with_generate = true, eval_dataset = "alpaca_demo", max_samples = 2, template = "chatml",
  cutoff_len = 24, max_new_tokens = 2,
  finetuning_type = "lora", output_dir = $P}
LUA
OUT=$("$LFL" predict.lua 2>&1); RC=$?
check "predict into a quoted output_dir" '[ $RC -eq 0 ] && [ -f "$NASTY/pred \"out\"/generated_predictions.jsonl" ]'

# eval: MMLU-style task, results into a quoted save_dir
OUT=$("$LFL" eval --model "$NASTY/model" --task mmlu_demo_test --task_dir "$ROOT/tests/golden/eval" \
      --template chatml --n_shot 0 --save_dir "$NASTY/eval 'res'" 2>&1); RC=$?
check "eval into a quoted save_dir" '[ $RC -eq 0 ] && [ -n "$(ls "$NASTY/eval '"'"'res'"'"'" 2>/dev/null)" ]'

# an empty output_dir is refused, nothing is written to /
printf 'model_name_or_path: %s/model\nstage: sft\ndataset: alpaca_demo\ntemplate: chatml\noutput_dir: ""\n' "$TMPD" > empty.yaml
OUT=$("$LFL" train empty.yaml 2>&1); RC=$?
check "empty output_dir refused" '[ $RC -ne 0 ] && [[ "$OUT" == *"output_dir"* ]]'
check "still nothing ran" '[ ! -e PWNED ] && [ ! -e PWNED2 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
