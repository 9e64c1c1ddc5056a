#!/usr/bin/env bash
# QLoRA side by side in one run: lfl's bench_qlora.lua and LlamaFactory
# (bench_lora_sft_lf.sh, bitsandbytes' CPU backend) on the same SmolLM2-135M
# weights, LoRA r8 on packed pretraining text, batch 4, 2 threads, alternating
# lfl and LlamaFactory each round so a drifting machine hits both alike.
# Runs: QLoRA NF4 + double quantization computing in f32 and in bf16, and
# lfl's LoRA on the bf16 base as the unquantized reference.
# Usage: bash tests/bench/bench_qlora_side.sh [rounds] [steps] [cutoff_len] ["runs"]
# (runs: default "qlora-nf4dq qlora-nf4dq-bf16 lora-bf16"; lora-bf16 is lfl's only)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-1}; STEPS=${2:-4}; CUT=${3:-256}; RUNS=${4:-qlora-nf4dq qlora-nf4dq-bf16 lora-bf16}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
LFL=$ROOT/build/lfl
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
echo "QLoRA side by side: seq $CUT x batch 4, $STEPS steps (median step), 2 threads, $cpu"
for r in $(seq "$ROUNDS"); do
    for run in $RUNS; do
        line=$(OMP_NUM_THREADS=2 "$LFL" "$ROOT/tests/bench/bench_qlora.lua" train "$run" "$STEPS" "$CUT" 2>&1 | tail -1)
        echo "round $r  lfl           $line"
        [ "$run" = lora-bf16 ] && continue
        lf=$(LF_STEPS=$STEPS LF_CUTOFF=$CUT bash "$ROOT/tests/bench/bench_lora_sft_lf.sh" "$W/lf-$run" "$run" 2>&1 | tail -1)
        echo "round $r  LlamaFactory  $run: $lf"
    done
done
