#!/usr/bin/env bash
# The device communicator (NCCL; in the LFL_CUDA=EMU build the NCCL emulator
# over MPI) on 1, 2 and 3 ranks: every collective on device tensors equals the MPI
# communicator's result on host copies (tests/sh/dist/nccl_collectives.lua); a
# stalled rank makes rank 0 fail within ddp_timeout naming the operation; a
# killed one ends the job; `lfl train recipe --nproc 2` with device: cuda gives
# the loss / grad-norm curve and weights of the same run with device: cpu
# (LoRA and full fine-tuning, plain data parallel); ZeRO on a device and a
# device index that is not the rank's own are refused. Needs a CUDA device (a GPU, or build-emu's emulator),
# NCCL and MPI: skips with the reason otherwise.
# Usage: test_cuda_nccl.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_cuda_nccl.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
unset WORLD_SIZE NNODES NODE_RANK FORCE_TORCHRUN NPROC_PER_NODE
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

why=$("$LFL" -e 'local d, n = lfl.sys.cuda(); local ok, nccl = lfl.comm.nccl()
  if n < 1 then io.write("no CUDA device (" .. d .. ")")
  elseif not ok then io.write("no NCCL (" .. nccl .. ")")
  elseif not lfl.comm.have_mpi() then io.write("no MPI (NCCL is bootstrapped over it)") end')
if [ -n "$why" ]; then echo "test_cuda_nccl: skipped: $why"; exit 0; fi
command -v mpirun >/dev/null || { echo "FAIL  mpirun is missing (openmpi-bin)"; exit 1; }

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -25 | sed 's/^/      | /'; return 0; }
SCRIPT=$ROOT/tests/sh/dist/nccl_collectives.lua

for n in 1 2 3; do
    out=$(timeout 300 "$LFL" "$SCRIPT" --nproc $n 2>&1); rc=$?
    if [ $rc = 0 ] && [ "$(printf '%s\n' "$out" | grep -c 'nccl collectives ok')" = $n ]; then ok
    else fail "device collectives on $n rank(s) (rc $rc)" "$out"; fi
done

t0=$(date +%s)
out=$(timeout 120 "$LFL" "$SCRIPT" stall --nproc 2 2>&1); rc=$?
t1=$(date +%s)
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "nccl stall ok" && [ $((t1 - t0)) -le 30 ]; then ok
else fail "a stalled rank: rank 0 fails naming all_reduce within ddp_timeout=3 s (rc $rc, $((t1 - t0)) s)" "$out"; fi

t0=$(date +%s)
out=$(timeout 120 "$LFL" "$SCRIPT" kill --nproc 2 2>&1); rc=$?
t1=$(date +%s)
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "rank 1 dies on purpose" && [ $((t1 - t0)) -le 30 ]; then ok
else fail "a dead rank ends the job (rc $rc, $((t1 - t0)) s)" "$out"; fi

# ---- data-parallel training on the device: the CPU's curve and weights ----
mkdir -p "$TMPD/model"
for f in tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors \
         tests/golden/serve/tokenizer.json; do
    ln -s "$ROOT/$f" "$TMPD/model/"
done
export LFL_CACHE=$TMPD/cache
cat >"$TMPD/r.yaml" <<EOF
model_name_or_path: $TMPD/model
stage: sft
dataset: alpaca_demo
template: chatml
cutoff_len: 24
max_samples: 16
per_device_train_batch_size: 2
gradient_accumulation_steps: 2
max_steps: 3
logging_steps: 1
save_steps: 1000
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
# compare.lua A B FILE: logged loss / grad_norm / lr per step and A/FILE vs B/FILE
cat >"$TMPD/compare.lua" <<'EOF'
local a, b, file = arg[1], arg[2], arg[3]
local function log(dir)
  local out = {}
  for line in io.lines(dir .. "/trainer_log.jsonl") do
    local r = lfl.json.decode(line)
    if r.loss then out[r.current_steps] = r end
  end
  return out
end
local la, lb, common = log(a), log(b), 0
for s, r in pairs(lb) do
  local q = la[s] or error(b .. ": step " .. s .. " is not in " .. a, 0)
  for _, k in ipairs({"loss", "grad_norm", "lr"}) do
    if math.abs(q[k] - r[k]) > 1e-4 * math.max(1, math.abs(q[k])) then
      error(string.format("step %d %s: %.9g on the device vs %.9g on the CPU", s, k, q[k], r[k]), 0)
    end
  end
  common = common + 1
end
if common < 3 then error("only " .. common .. " common logged steps", 0) end
local x, y = lfl.safetensors.load(a .. "/" .. file), lfl.safetensors.load(b .. "/" .. file)
local worst, n = 0, 0
for k, v in pairs(x) do
  local w = y[k] or error(b .. "/" .. file .. " lacks " .. k, 0)
  local d = (v:to("f32") - w:to("f32")):abs():max():item() / math.max(1e-6, w:to("f32"):abs():max():item())
  if d > worst then worst = d end
  n = n + 1
end
if n == 0 or worst > 1e-4 then error(string.format("%d tensors, max relative difference %g", n, worst), 0) end
print(string.format("same: %d steps, %d tensors, max relative difference %.2g", common, n, worst))
EOF
train() { # NAME OUT [KEY=VALUE...]: lfl train on 2 ranks
    local name=$1 out=$2; shift 2
    T_OUT=$(timeout 600 "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/$out" "$@" --nproc 2 2>&1); T_RC=$?
    [ $T_RC = 0 ] || fail "$name: training failed (rc $T_RC)" "$T_OUT"
    return $T_RC
}
# Each fine-tuning type must train on the device in one process first: while it
# cannot (kernels and device autograd land op by op), its 2-rank runs are only
# checked to set up data parallel on the device (NCCL's bootstrap, rank 0's
# weights broadcast there) and then to stop where one process stops.
for ft in lora full; do
    file=adapter_model.safetensors extra=()
    [ $ft = full ] && file=model.safetensors extra=(finetuning_type=full learning_rate=1.0e-3)
    probe=$(timeout 600 "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/probe_$ft" device=cuda max_steps=1 "${extra[@]}" 2>&1)
    if [ $? != 0 ]; then
        why=$(printf '%s\n' "$probe" | grep -m1 '^lfl: ' | sed 's/^lfl: //')
        echo "test_cuda_nccl: 2-rank $ft training on the device skipped: one process cannot train there yet ($why)"
        out=$(timeout 600 "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/setup_$ft" device=cuda "${extra[@]}" --nproc 2 2>&1)
        rc=$?
        stop=$(printf '%s\n' "$why" | sed 's/^[^ ]*: //')
        if [ $rc != 0 ] && printf '%s' "$out" | grep -q "data parallel: 2 ranks" && printf '%s' "$out" | grep -q "device cuda:0" \
            && printf '%s' "$out" | grep -qF -- "$stop"; then ok
        else fail "$ft, 2 ranks on the device: data parallel is set up, then the run stops where one process does ($stop)" "$out"; fi
        continue
    fi
    train "$ft on cpu, 2 ranks" ${ft}_cpu "${extra[@]}" || continue
    train "$ft on cuda, 2 ranks" ${ft}_cuda device=cuda "${extra[@]}" || continue
    if printf '%s' "$T_OUT" | grep -q "device cuda:0" && printf '%s' "$T_OUT" | grep -q "data parallel: 2 ranks"; then ok
    else fail "$ft on cuda: the run reports its device and 2 ranks" "$T_OUT"; fi
    out=$(timeout 120 "$LFL" "$TMPD/compare.lua" "$TMPD/${ft}_cuda" "$TMPD/${ft}_cpu" $file 2>&1); rc=$?
    if [ $rc = 0 ]; then ok; [ -n "${VERBOSE:-}" ] && echo "ok    $ft, 2 ranks, device vs cpu: $out"
    else fail "$ft, 2 ranks: device curve and weights = CPU's" "$out"; fi
done

# ---- refusals ----
out=$(timeout 120 "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/z2" device=cuda \
      deepspeed="$ROOT/recipes/deepspeed/ds_z2_config.json" --nproc 2 2>&1); rc=$?
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "ZeRO stage 2 on a CUDA device is not implemented yet"; then ok
else fail "ZeRO on a device is refused by name (rc $rc)" "$out"; fi
out=$(timeout 120 "$LFL" train "$TMPD/r.yaml" output_dir="$TMPD/d5" device=cuda:5 --nproc 2 2>&1); rc=$?
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "device: cuda:5 with 2 ranks: each rank trains on its own device"; then ok
else fail "a device index that is not the rank's own is refused (rc $rc)" "$out"; fi

echo "test_cuda_nccl: $passed passed, $failed failed"
[ $failed = 0 ]
