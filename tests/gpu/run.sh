#!/usr/bin/env bash
# The CUDA backend on a lent GPU, in one call of under 10 minutes: the backend
# tests (every CUDA kernel against the CPU's), the end-to-end tests (forward,
# greedy decoding, LoRA / full / QLoRA / preference-stage curves against the
# CPU, tests/lua/test_cuda_*.lua), then LoRA
# SFT steps and decoding of Llama-shaped models with random weights at 1B and
# 8B, side by side with PyTorch + transformers + PEFT on the same device and
# shapes, and a table of the figures.
#
# Where lfl cannot be built (the GPU machine lacks lfl's Debian libraries),
# prepare the bundle here first: `bash tests/gpu/bundle.sh`, then carry .gpu.
# Files written to $OUT (the device tool's folder) or /tmp/lfl-gpu.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/lfl-gpu}
mkdir -p "$out"
if [ -x .gpu/bin/lfl ]; then
  bin=$PWD/.gpu/bin
  export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
else
  bash tests/gpu/bundle.sh || exit 1
  bin=$PWD/.gpu/bin
fi
export LFL_HOME=$PWD OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/gpu.txt"
"$bin/lfl" --version | tee -a "$out/gpu.txt"

echo "== backend tests"
pass=0 fail=0
for t in "$bin"/test_cuda_* "$bin/test_dispatch"; do
  name=$(basename "$t")
  if timeout 120 "$t" >"$out/$name.log" 2>&1; then pass=$((pass + 1)); r=ok; else fail=$((fail + 1)); r=FAIL; fi
  echo "$name: $r ($(tail -1 "$out/$name.log"))"
done
echo "== end to end"
e2e=ok
for t in tests/lua/test_cuda_*.lua; do
  name=$(basename "$t" .lua)
  if timeout 180 "$bin/lfl" "$t" >"$out/$name.log" 2>&1; then r=ok; else r=FAIL; e2e=FAIL; fi
  echo "$name: $r ($(grep -E "^(FAIL|[0-9]+ passed)" "$out/$name.log" | tr '\n' ' '))"
done
echo "end to end: $e2e"

echo "== benchmarks"
: >"$out/results.txt"
bench() { # name, timeout, command...
  local name=$1 limit=$2
  shift 2
  if timeout "$limit" "$@" >"$out/$name.log" 2>&1; then grep "^RESULT" "$out/$name.log" | sed "s/^RESULT/$name/" >>"$out/results.txt"
  else echo "$name failed or timed out ($limit s): $(tail -2 "$out/$name.log" | tr '\n' ' ')" | tee -a "$out/results.txt"; fi
}
bench lfl-1b 90 "$bin/lfl" tests/gpu/bench_lora.lua 1b cuda 1024 4 6
bench torch-1b 90 "$py" tests/gpu/bench_lora_torch.py 1b cuda 1024 4 6
bench lfl-8b 150 "$bin/lfl" tests/gpu/bench_lora.lua 8b cuda 1024 4 5
bench torch-8b 150 "$py" tests/gpu/bench_lora_torch.py 8b cuda 1024 4 5

echo "== table"
{
  echo "| run | tokens/s | step s | peak MiB | MFU | GEMM TFLOP/s | decode b1 tok/s | decode b32 tok/s | loss |"
  echo "|---|---|---|---|---|---|---|---|---|"
  while read -r line; do
    case "$line" in
      *"tokens_per_s="*)
        get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
        echo "| $(echo "$line" | cut -d' ' -f1) | $(get tokens_per_s) | $(get step_s) | $(get peak_mib) | $(get mfu) |" \
             "$(get gemm_tflops) | $(get decode_b1) | $(get decode_b32) | $(get loss) |" ;;
      *) echo "| $line |" ;;
    esac
  done <"$out/results.txt"
  echo
  echo "backend tests: $pass passed, $fail failed; end to end: $e2e"
} | tee "$out/table.md"
[ "$fail" -eq 0 ] && [ "$e2e" = ok ]
