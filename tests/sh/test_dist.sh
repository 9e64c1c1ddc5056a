#!/usr/bin/env bash
# Multi-process training through MPI (issue 20), on the tiny golden llama:
# the collectives on 1, 2 and 3 ranks; 2 ranks give the loss curve and the final
# weights of 1 rank with the same global batch (LoRA and full fine-tuning, plain
# data parallel, ZeRO-1, ZeRO-2 and ZeRO-3, whose partitioning tests/sh/dist/zero3.lua
# watches from inside); resuming a 2-rank checkpoint (ZeRO-2, ZeRO-3) with 1 and with
# 2 ranks continues the curve; a stalled rank fails the job with the timeout's
# message within ddp_timeout, a killed one ends it; `mpirun -n 2 lfl` directly,
# `lfl recipe.lua --nproc 2`, FORCE_TORCHRUN; refusals (offload, stage-3 keys, torchrun's
# WORLD_SIZE / NNODES). MPI is required: without it this test fails, loudly.
# Usage: test_dist.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_dist.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
cleanup() {
    # a rank left stopped by a failed check must not outlive the test
    [ -n "${STOPPED:-}" ] && kill -CONT "$STOPPED" 2>/dev/null
    rm -rf "$TMPD"
}
trap cleanup EXIT
export LFL_CACHE=$TMPD/cache OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
unset WORLD_SIZE NNODES NODE_RANK FORCE_TORCHRUN NPROC_PER_NODE LFL_PATH
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -25; return 0; }
run() {
    timeout 120 "$@" >"$TMPD/out" 2>"$TMPD/err" </dev/null
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
has() { printf '%s' "$1" | grep -qF -- "$2"; }

# ---- MPI is part of the build (tests/setup.sh installs it) ----
run "$LFL" -e 'io.write(tostring(lfl.comm.have_mpi()))'
if [ "$OUT" != true ] || ! command -v mpirun >/dev/null; then
    echo "FAIL  lfl was built without MPI or mpirun is missing: install libopenmpi-dev openmpi-bin (tests/setup.sh)"
    exit 1
fi

# ---- collectives and the bucket layout ----
for n in 1 2 3; do
    run "$LFL" "$ROOT/tests/sh/dist/collectives.lua" --nproc $n
    expect "collectives on $n rank(s)" [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c 'collectives ok')" = $n ]
done

# ---- the tiny model and a recipe ----
mkdir -p "$TMPD/model"
for f in tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors \
         tests/golden/serve/tokenizer.json; do
    ln -s "$ROOT/$f" "$TMPD/model/"
done
cat >"$TMPD/r.yaml" <<EOF
model_name_or_path: $TMPD/model
stage: sft
dataset: alpaca_demo
template: chatml
cutoff_len: 24
max_samples: 40
per_device_train_batch_size: 2
gradient_accumulation_steps: 4
max_steps: 4
logging_steps: 1
save_steps: 2
learning_rate: 1.0e-2
lr_scheduler_type: cosine
warmup_steps: 1
max_grad_norm: 0.1
overwrite_output_dir: true
disable_tqdm: true
seed: 5
finetuning_type: lora
lora_dropout: 0
EOF
for s in 1 2; do
    sed "s/\"stage\": 2/\"stage\": $s/" "$ROOT/recipes/deepspeed/ds_z2_config.json" >"$TMPD/z$s.json"
done
# LlamaFactory's ds_z3_config.json with the persistence threshold at 0: the tiny
# model's tensors (all under its "auto" 10 x hidden) are partitioned too
sed 's/"stage3_param_persistence_threshold": "auto"/"stage3_param_persistence_threshold": 0/' \
    "$ROOT/recipes/deepspeed/ds_z3_config.json" >"$TMPD/z3.json"
# compare.lua A B FILE: the logged losses and grad norms of A and B (steps both
# logged) and the tensors of A/FILE and B/FILE agree to float tolerance
cat >"$TMPD/compare.lua" <<'EOF'
local a, b, file = arg[1], arg[2], arg[3]
local function log(dir)
  local out, n = {}, 0
  for line in io.lines(dir .. "/trainer_log.jsonl") do
    local r = lfl.json.decode(line)
    if r.loss then out[r.current_steps] = r; n = n + 1 end
  end
  return out, n
end
local common = 0
local have = io.open(b .. "/trainer_log.jsonl")
if have then have:close() end
local la, lb = have and log(a) or {}, have and log(b) or {}
for s, r in pairs(lb) do
  local q = la[s]
  if not q then error(b .. ": step " .. s .. " is not in " .. a, 0) end
  for _, k in ipairs({"loss", "grad_norm", "lr"}) do
    if math.abs(q[k] - r[k]) > 1e-5 * math.max(1, math.abs(q[k])) then
      error(string.format("step %d %s: %.9g vs %.9g", s, k, q[k], r[k]), 0)
    end
  end
  common = common + 1
end
if have and common == 0 then error("no common logged steps", 0) end
local x, y = lfl.safetensors.load(a .. "/" .. file), lfl.safetensors.load(b .. "/" .. file)
local worst, n = 0, 0
for k, v in pairs(x) do
  if not y[k] then error(b .. "/" .. file .. " lacks " .. k, 0) end
  local d = (v:to("f32") - y[k]:to("f32")):abs():max():item()
  if d > worst then worst = d end
  n = n + 1
end
if n == 0 or worst > 1e-5 then error(string.format("%d tensors, max difference %g", n, worst), 0) end
print(string.format("same: %d steps, %d tensors, max difference %.2g", common, n, worst))
EOF
same() { # NAME A B FILE
    run "$LFL" "$TMPD/compare.lua" "$2" "$3" "$4"
    expect "$1" [ "$RC" = 0 ]
}

# ---- 2 ranks x accumulation 2 = 1 rank x accumulation 4 ----
run "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/lora1"
expect "LoRA, 1 rank" [ "$RC" = 0 ]
run "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 output_dir="$TMPD/lora2" --nproc 2
expect "LoRA, 2 ranks: data parallel reported" has "$OUT" "data parallel: 2 ranks"
expect "LoRA, 2 ranks: only rank 0 logs" [ "$(printf '%s\n' "$OUT" | grep -c '^\[lfl\] step 1/4')" = 1 ]
same "LoRA: 2 ranks = 1 rank (curve, adapter)" "$TMPD/lora1" "$TMPD/lora2" adapter_model.safetensors
for s in 1 2; do
    run "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 deepspeed="$TMPD/z$s.json" \
        output_dir="$TMPD/lora_z$s" --nproc 2
    expect "LoRA ZeRO-$s runs" has "$OUT" "ZeRO stage $s"
    same "LoRA: ZeRO-$s = plain data parallel" "$TMPD/lora2" "$TMPD/lora_z$s" adapter_model.safetensors
    same "LoRA: ZeRO-$s checkpoint-2 (gathered optimizer state) = 1 rank's" "$TMPD/lora1/checkpoint-2" \
        "$TMPD/lora_z$s/checkpoint-2" optimizer.safetensors
done
run "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 deepspeed="$TMPD/z3.json" output_dir="$TMPD/lora_z3" \
    --nproc 2
expect "LoRA ZeRO-3 runs, parameters partitioned" has "$OUT" "parameters partitioned: 3712 of 7424 values on this rank"
same "LoRA: ZeRO-3 = plain data parallel (curve, gathered adapter)" "$TMPD/lora2" "$TMPD/lora_z3" \
    adapter_model.safetensors
same "LoRA: ZeRO-3 checkpoint-2 (gathered optimizer state) = 1 rank's" "$TMPD/lora1/checkpoint-2" \
    "$TMPD/lora_z3/checkpoint-2" optimizer.safetensors
for ft in full lora; do
    run env LFL_LOG_ALL_RANKS=1 "$LFL" "$ROOT/tests/sh/dist/zero3.lua" "$TMPD/model" "$TMPD/z3.json" "$TMPD/zin_$ft" \
        $ft --nproc 2
    expect "ZeRO-3 $ft: released after set-up and between steps, one layer gathered at a time, whole after training" \
        [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c 'zero3 ok')" = 2 ]
done
run env LFL_LOG_ALL_RANKS=1 "$LFL" "$ROOT/tests/sh/dist/zero3.lua" "$TMPD/model" "$TMPD/z2.json" "$TMPD/zin_z2" full \
    --nproc 2
expect "ZeRO-2 full: each layer's gradient reduce-scattered and freed during backward, none outlives it" \
    [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c 'zero2 ok')" = 2 ]
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full output_dir="$TMPD/full1"
expect "full, 1 rank" [ "$RC" = 0 ]
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full gradient_accumulation_steps=2 output_dir="$TMPD/full2" --nproc 2
same "full: 2 ranks = 1 rank (curve, weights)" "$TMPD/full1" "$TMPD/full2" model.safetensors
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full gradient_accumulation_steps=2 deepspeed="$TMPD/z2.json" \
    output_dir="$TMPD/full_z2" --nproc 2
expect "full ZeRO-2: gradients reduce-scattered a layer at a time" \
    has "$OUT" "gradients reduce-scattered a layer at a time during backward"
same "full: ZeRO-2 = plain data parallel" "$TMPD/full2" "$TMPD/full_z2" model.safetensors
# without gradient checkpointing (no per-layer recompute) ZeRO-2 reduce-scatters the whole gradient at the step
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full gradient_accumulation_steps=2 deepspeed="$TMPD/z2.json" \
    disable_gradient_checkpointing=true output_dir="$TMPD/full_z2b" --nproc 2
expect "full ZeRO-2 without checkpointing: at the step" [ "$RC" = 0 ] && \
    ! has "$OUT" "gradients reduce-scattered a layer at a time"
same "full: ZeRO-2 without checkpointing = plain data parallel" "$TMPD/full2" "$TMPD/full_z2b" model.safetensors
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full gradient_accumulation_steps=2 deepspeed="$TMPD/z3.json" \
    output_dir="$TMPD/full_z3" --nproc 2
same "full: ZeRO-3 = plain data parallel (curve, gathered model)" "$TMPD/full2" "$TMPD/full_z3" model.safetensors
same "full: ZeRO-3 checkpoint-2 = 1 rank's (weights)" "$TMPD/full1/checkpoint-2" "$TMPD/full_z3/checkpoint-2" \
    model.safetensors

run "$LFL" train "$TMPD/r.yaml" finetuning_type=full use_badam=true badam_switch_interval=1 output_dir="$TMPD/badam1"
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full use_badam=true badam_switch_interval=1 gradient_accumulation_steps=2 \
    output_dir="$TMPD/badam2" --nproc 2
same "BAdam (blocks without gradients stay untouched): 2 ranks = 1 rank" "$TMPD/badam1" "$TMPD/badam2" model.safetensors

# ---- resume a 2-rank ZeRO-2 checkpoint with 1 rank and with 2 ----
for w in 1 2; do
    mkdir -p "$TMPD/res$w"
    cp -r "$TMPD/lora_z2/checkpoint-2" "$TMPD/res$w/"
done
run "$LFL" train "$TMPD/r.yaml" overwrite_output_dir=false output_dir="$TMPD/res1"
expect "resume with 1 rank" has "$OUT" "resumed from $TMPD/res1/checkpoint-2 (step 2)"
same "resume with 1 rank continues the curve" "$TMPD/lora1" "$TMPD/res1" adapter_model.safetensors
run "$LFL" train "$TMPD/r.yaml" overwrite_output_dir=false gradient_accumulation_steps=2 deepspeed="$TMPD/z1.json" \
    output_dir="$TMPD/res2" --nproc 2
expect "resume with 2 ranks (ZeRO-1)" has "$OUT" "resumed from $TMPD/res2/checkpoint-2 (step 2)"
same "resume with 2 ranks continues the curve" "$TMPD/lora1" "$TMPD/res2" adapter_model.safetensors
# a 2-rank ZeRO-3 checkpoint (full fine-tuning) resumed with 1 rank and with 2 (ZeRO-3)
for w in 1 2; do
    mkdir -p "$TMPD/z3res$w"
    cp -r "$TMPD/full_z3/checkpoint-2" "$TMPD/z3res$w/"
done
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full overwrite_output_dir=false output_dir="$TMPD/z3res1"
expect "ZeRO-3 checkpoint resumed with 1 rank" has "$OUT" "resumed from $TMPD/z3res1/checkpoint-2 (step 2)"
same "ZeRO-3 checkpoint, 1 rank continues the curve" "$TMPD/full1" "$TMPD/z3res1" model.safetensors
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full overwrite_output_dir=false gradient_accumulation_steps=2 \
    deepspeed="$TMPD/z3.json" output_dir="$TMPD/z3res2" --nproc 2
expect "ZeRO-3 checkpoint resumed with 2 ranks (ZeRO-3)" has "$OUT" "resumed from $TMPD/z3res2/checkpoint-2 (step 2)"
same "ZeRO-3 checkpoint, 2 ranks continue the curve" "$TMPD/full1" "$TMPD/z3res2" model.safetensors
# 3 ranks cannot start at micro-batch 4 of the epoch (a 2-rank checkpoint after 2 steps x 2 x 2 ranks... = 8)
mkdir -p "$TMPD/res3" && cp -r "$TMPD/lora_z2/checkpoint-2" "$TMPD/res3/"
run "$LFL" train "$TMPD/r.yaml" overwrite_output_dir=false gradient_accumulation_steps=2 output_dir="$TMPD/res3" --nproc 3
expect "resume with 3 ranks where the position does not divide: refused" \
    has "$ERR" "3 ranks cannot resume there (it is not a multiple of 3)"

# ---- a stalled rank: the others fail within ddp_timeout naming the operation; a killed one ends the job ----
rank_pid() { # RANK: the pid of that rank of the newest mpirun
    local mp c
    mp=$(pgrep -n -x mpirun) || return 1
    for c in $(pgrep -P "$mp"); do
        tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$c"; return 0; }
    done
    return 1
}
for how in STOP KILL; do
    rm -f "$TMPD/long.log"
    ( timeout 120 "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 max_steps=100000 save_steps=0 \
        ddp_timeout=4 output_dir="$TMPD/long_$how" --nproc 2 >"$TMPD/long.log" 2>&1; echo "rc=$?" >>"$TMPD/long.log" ) &
    for _ in $(seq 1 300); do grep -q "step 3/" "$TMPD/long.log" 2>/dev/null && break; sleep 0.1; done
    victim=$(rank_pid 1)
    t0=$(date +%s)
    [ "$how" = STOP ] && STOPPED=$victim
    kill -$how "$victim" 2>/dev/null
    for _ in $(seq 1 600); do grep -q "^rc=" "$TMPD/long.log" && break; sleep 0.1; done
    t1=$(date +%s)
    [ -n "${STOPPED:-}" ] && { kill -CONT "$STOPPED" 2>/dev/null; STOPPED=; }
    wait
    OUT=$(cat "$TMPD/long.log"); ERR=""; RC=$(sed -n 's/^rc=//p' "$TMPD/long.log")
    expect "rank 1 $how: the job fails (rc $RC) within the timeout ($((t1 - t0)) s)" \
        [ -n "$RC" ] && [ "$RC" != 0 ] && [ $((t1 - t0)) -le 30 ]
    if [ "$how" = STOP ]; then
        expect "rank 1 STOP: rank 0 names the operation and ddp_timeout" \
            has "$OUT" "did not complete on rank 0 of 2 within ddp_timeout=4 s: another rank has died or stalled"
    fi
done

# ---- other ways in ----
mpirun_root=()
[ "$(id -u)" = 0 ] && mpirun_root=(--allow-run-as-root)
run mpirun "${mpirun_root[@]}" --oversubscribe -n 2 "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 \
    output_dir="$TMPD/direct"
same "mpirun -n 2 lfl train directly" "$TMPD/lora1" "$TMPD/direct" adapter_model.safetensors
cat >"$TMPD/recipe.lua" <<EOF
local r = lfl.args.read_yaml("$TMPD/r.yaml")
r.gradient_accumulation_steps = 2
r.output_dir = "$TMPD/fromlua"
return r
EOF
run "$LFL" "$TMPD/recipe.lua" --nproc 2
same "lfl recipe.lua --nproc 2" "$TMPD/lora1" "$TMPD/fromlua" adapter_model.safetensors
run env FORCE_TORCHRUN=1 NPROC_PER_NODE=2 "$LFL" train "$TMPD/r.yaml" gradient_accumulation_steps=2 \
    output_dir="$TMPD/torchrun"
expect "FORCE_TORCHRUN=1 NPROC_PER_NODE=2 starts 2 ranks" has "$OUT" "data parallel: 2 ranks"

# ---- refusals, each naming what to change ----
run env FORCE_TORCHRUN=1 "$LFL" train "$TMPD/r.yaml"
expect "FORCE_TORCHRUN without NPROC_PER_NODE" has "$ERR" "FORCE_TORCHRUN=1 needs NPROC_PER_NODE"
run env WORLD_SIZE=2 "$LFL" train "$TMPD/r.yaml"
expect "torchrun's WORLD_SIZE=2" has "$ERR" "WORLD_SIZE=2 is set (torchrun / accelerate?)"
run env NNODES=2 NODE_RANK=0 "$LFL" train "$TMPD/r.yaml"
expect "NNODES=2" has "$ERR" "--hostfile"
run "$LFL" train "$TMPD/r.yaml" --nproc zero
expect "--nproc zero" has "$ERR" "--nproc takes a number of processes"
run "$LFL" train "$TMPD/r.yaml" deepspeed=examples/deepspeed/ds_z3_config.json output_dir="$TMPD/z3"
expect "ZeRO-3 in one process is plain training" has "$OUT" "ZeRO stage 3 in one process is plain training"
run "$LFL" train "$TMPD/r.yaml" deepspeed="$ROOT/recipes/deepspeed/ds_z3_offload_config.json" output_dir="$TMPD/off3"
expect "ZeRO-3 offload refused by name" has "$ERR" "zero_optimization.offload_optimizer is not implemented in lfl"
sed 's/"stage3_max_reuse_distance"/"stage3_unknown_knob"/' "$TMPD/z3.json" >"$TMPD/z3bad.json"
run "$LFL" train "$TMPD/r.yaml" deepspeed="$TMPD/z3bad.json" output_dir="$TMPD/z3bad"
expect "an unknown stage3_ key refused by name" has "$ERR" "zero_optimization.stage3_unknown_knob is not known to lfl"
sed 's/"stage3_gather_16bit_weights_on_model_save": true/"stage3_gather_16bit_weights_on_model_save": false/' \
    "$TMPD/z3.json" >"$TMPD/z3nosave.json"
run "$LFL" train "$TMPD/r.yaml" deepspeed="$TMPD/z3nosave.json" output_dir="$TMPD/z3nosave"
expect "stage3_gather_16bit_weights_on_model_save false refused by name" \
    has "$ERR" "stage3_gather_16bit_weights_on_model_save is false: lfl always saves the gathered model"
sed 's/"stage3_max_live_parameters": 1e9/"stage3_max_live_parameters": 100/' "$TMPD/z3.json" >"$TMPD/z3live.json"
run "$LFL" train "$TMPD/r.yaml" finetuning_type=full gradient_accumulation_steps=2 deepspeed="$TMPD/z3live.json" \
    output_dir="$TMPD/z3live" --nproc 2
expect "stage3_max_live_parameters below a layer refused by name" \
    has "$ERR" "stage3_max_live_parameters is 100, but lfl gathers a whole layer"
run "$LFL" train "$TMPD/r.yaml" deepspeed="$ROOT/recipes/deepspeed/ds_z2_offload_config.json" output_dir="$TMPD/off"
expect "offload refused by name" has "$ERR" "zero_optimization.offload_optimizer is not implemented in lfl"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
