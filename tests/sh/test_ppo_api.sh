#!/usr/bin/env bash
# PPO with reward_model_type api (LlamaFactory's get_rewards_from_server) against
# a real reward server, `lfl serve --stage rm` on 127.0.0.1 (a free port), with
# the tiny llama and a seeded value head:
# - ppo.score through the server equals scoring the same texts with the same
#   model and head in process (reward_model_type full), for texts whose
#   tokenization round-trips;
# - `lfl train` stage ppo with reward_model_type api trains 2 steps and logs
#   rewards; a server that is down or answers without scores stops the run
#   with a message naming the URL.
# Usage: test_ppo_api.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_ppo_api.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMPD"
}
trap cleanup EXIT
export HOME=$TMPD LFL_CACHE=$TMPD/cache
unset LFL_PATH

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -25; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "${3:-}"; fi; }

# the policy's model, and a reward model: the same weights with a seeded value head
M=$TMPD/model
RM=$TMPD/rm
mkdir -p "$M" "$RM"
for f in tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors tests/golden/serve/tokenizer.json; do
    cp "$ROOT/$f" "$M/"
    cp "$ROOT/$f" "$RM/"
done
cat >"$TMPD/head.lua" <<LUA
lfl.manual_seed(3)
local vh = require("lfl.train.value_head")
local h = vh.new(32)
h.weight = h.weight * 50 -- scores far enough apart to tell texts apart
vh.save(h, "$RM")
LUA
"$LFL" "$TMPD/head.lua" >"$TMPD/head.log" 2>&1
check "value head written" '[ -f "$RM/value_head.safetensors" ]' "$(cat "$TMPD/head.log")"

"$LFL" serve --model "$RM" --stage rm --template chatml --port 0 >"$TMPD/rm.out" 2>"$TMPD/rm.log" &
PIDS+=($!)
PORT=
for _ in $(seq 1 200); do
    PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMPD/rm.out" 2>/dev/null | sed 's/.*://')
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { echo "reward server did not start:"; cat "$TMPD/rm.log"; echo "0 passed, 1 failed"; exit 1; }
URL=http://127.0.0.1:$PORT/v1/score/evaluation

# ---- the server's scores = the same model and head in process ----
cat >"$TMPD/same.lua" <<LUA
local ppo = require("lfl.train.ppo")
local m = lfl.model.load("$M")
local tok = lfl.tokenizer.load("$M")
local seqs = {}
for i, text in ipairs({"hello world", "a b c d", "the cat sat"}) do seqs[i] = tok:encode(text) end
local api = ppo.setup_reward(m, {reward_model = "$URL", reward_model_type = "api"})
local full = ppo.setup_reward(m, {reward_model = "$RM", reward_model_type = "full"})
local a, f = ppo.score(m, api, seqs, tok), ppo.score(m, full, seqs, tok)
local worst, spread = 0, math.abs(f[1] - f[2]) + math.abs(f[2] - f[3])
for i = 1, #seqs do worst = math.max(worst, math.abs(a[i] - f[i])) end
print(string.format("api %s | local %s | max diff %.3g | spread %.3g", table.concat(a, " "), table.concat(f, " "), worst,
  spread))
assert(#a == 3 and worst <= 1e-5 * (1 + math.abs(f[1])) and spread > 1e-3, "scores differ")
LUA
out=$("$LFL" "$TMPD/same.lua" 2>&1)
rc=$?
[ -n "${VERBOSE:-}" ] && echo "$out"
check "api scores = in-process scores" '[ $rc -eq 0 ] && [[ "$out" == *"max diff"* ]] && [[ "$out" != *"scores differ"* ]]' "rc=$rc $out"

# ---- stage ppo through the server ----
cat >"$TMPD/ppo.yaml" <<EOF
model_name_or_path: $M
stage: ppo
do_train: true
finetuning_type: lora
lora_rank: 4
reward_model: $URL
reward_model_type: api
dataset: alpaca_demo
dataset_dir: $ROOT/recipes/data
template: chatml
cutoff_len: 32
max_samples: 8
max_new_tokens: 6
per_device_train_batch_size: 2
max_steps: 2
logging_steps: 1
learning_rate: 1.0e-4
output_dir: $TMPD/run
overwrite_output_dir: true
disable_tqdm: true
EOF
out=$(timeout 300 "$LFL" train "$TMPD/ppo.yaml" 2>&1 </dev/null)
rc=$?
check "ppo trains with the api reward" '[ $rc -eq 0 ] && [[ "$out" == *"the server at $URL"* ]] && [[ "$out" == *"[lfl] done: 2 steps"* ]]' "rc=$rc $out"
[ -n "${VERBOSE:-}" ] && cat "$TMPD/run/trainer_log.jsonl"
rewards=$(grep -o '"reward": *[-0-9.e]*' "$TMPD/run/trainer_log.jsonl" 2>/dev/null | wc -l)
check "rewards logged per step" '[ "$rewards" -eq 2 ]' "$(cat "$TMPD/run/trainer_log.jsonl" 2>/dev/null)"

# ---- a server that is down, and one that answers without scores ----
out=$(timeout 120 "$LFL" train "$TMPD/ppo.yaml" reward_model=http://127.0.0.1:1/v1/score/evaluation 2>&1 </dev/null)
rc=$?
check "server down: a clear error" '[ $rc -ne 0 ] && [[ "$out" == *"POST http://127.0.0.1:1/v1/score/evaluation"* ]]' "rc=$rc $out"
out=$(timeout 120 "$LFL" train "$TMPD/ppo.yaml" reward_model=http://127.0.0.1:$PORT/v1/models 2>&1 </dev/null)
rc=$?
check "no scores: a clear error" '[ $rc -ne 0 ] && [[ "$out" == *"reward_model_type api: http://127.0.0.1:$PORT/v1/models answered"* ]]' "rc=$rc $out"
out=$(timeout 60 "$LFL" train "$TMPD/ppo.yaml" reward_model=$RM 2>&1 </dev/null)
rc=$?
check "api needs a URL" '[ $rc -ne 0 ] && [[ "$out" == *"reward_model_type api takes the reward server"* ]]' "rc=$rc $out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
