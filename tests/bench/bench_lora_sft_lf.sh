#!/usr/bin/env bash
# The bench_lora_sft.lua recipe run by LlamaFactory on torch CPU, for the side by
# side figure: LoRA r8 (all linears) pretraining-style SFT of SmolLM2-135M on
# recipes/data/pretrain_demo.txt, cutoff_len 512 packed, batch 4, 6 steps,
# gradient checkpointing on (LlamaFactory's default) unless "nogc", f32 unless
# "bf16" (bf16: true, LlamaFactory's bf16 weights and autocast), 2 threads;
# "qlora-nf4dq" / "qlora-nf4dq-bf16" add quantization_bit 4 (bitsandbytes NF4
# with double quantization on its CPU backend), compute in f32 / bf16, as
# bench_qlora.lua's runs of the same names.
# Needs the LlamaFactory venv (bash tests/ref/lf_venv.sh) and the fixture GGUF;
# prints LlamaFactory's per-step log, then tokens/s (median step) and peak RSS.
# Usage: bash tests/bench/bench_lora_sft_lf.sh [workdir] [f32|bf16|qlora-nf4dq|qlora-nf4dq-bf16] [gc|nogc]
# (LF_STEPS and LF_CUTOFF in the environment change the 6 steps and cutoff 512)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-$(mktemp -d)}
PREC=${2:-f32}
BF16=false; QUANT=""
case "$PREC" in
    f32) ;;
    bf16) BF16=true ;;
    qlora-nf4dq) QUANT="quantization_bit: 4
quantization_type: nf4
double_quantization: true" ;;
    qlora-nf4dq-bf16) BF16=true; QUANT="quantization_bit: 4
quantization_type: nf4
double_quantization: true" ;;
    *) echo "bench_lora_sft_lf.sh: unknown precision '$PREC' (f32, bf16, qlora-nf4dq, qlora-nf4dq-bf16)" >&2; exit 2 ;;
esac
GC=false; [ "${3:-gc}" = nogc ] && GC=true
STEPS=${LF_STEPS:-6}
CUT=${LF_CUTOFF:-512}
source "$ROOT/tests/bench/lf_smollm2.sh"
cat > "$W/lf.yaml" <<YAML
model_name_or_path: $W/smollm2
stage: pt
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: pretrain_demo
dataset_dir: $ROOT/recipes/data
template: empty
cutoff_len: $CUT
packing: true
per_device_train_batch_size: 4
max_steps: $STEPS
logging_steps: 1
learning_rate: 1.0e-4
lr_scheduler_type: constant
output_dir: $W/out
overwrite_output_dir: true
report_to: none
save_steps: 1000
bf16: $BF16
disable_gradient_checkpointing: $GC
use_cpu: true
$QUANT
YAML
cd "$W"
OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES= /usr/bin/time -f "maxrss %M" -o "$W/time.txt" \
    "$(dirname "$PY")/llamafactory-cli" train lf.yaml > "$W/lf.log" 2>&1
# tqdm's smoothed s/it readings, median (the first step's warm-up weighs little)
tr '\r' '\n' < "$W/lf.log" | grep -o "[0-9]*/$STEPS \[[^]]*, *[0-9.]*s/it\]" | sed 's/.*, *\([0-9.]*\)s\/it.*/\1/' |
    sort -n | awk -v cut="$CUT" -v rss="$(sed -n 's/maxrss //p' "$W/time.txt")" \
    -v prec="$PREC" -v gc="$([ $GC = true ] && echo ", no gradient checkpointing")" \
    '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "LlamaFactory LoRA r8, SmolLM2-135M %s%s, seq %d x batch 4, 2 threads\n  median step %.2f s -> %.0f tokens/s, peak RSS %.0f MB\n", prec, gc, cut, m, 4*cut/m, rss/1024}'
