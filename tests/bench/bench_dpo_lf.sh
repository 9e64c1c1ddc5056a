#!/usr/bin/env bash
# DPO side by side: one LlamaFactory recipe (LoRA r8 on all linears, sigmoid
# DPO, beta 0.1, LlamaFactory's dpo_en_demo pairs, cutoff_len 512, batch 2
# pairs in file order (disable_shuffling), 8 steps, gradient checkpointing on as
# both default) trained by
# `llamafactory-cli train` (torch CPU) and by `lfl train`, on the same SmolLM2
# weights (lf_smollm2.sh) and 2 threads. The reference is the adapter-off base
# on both sides. Prints each side's train_runtime and samples/s (from its
# train_results.json, the same pairs on both sides), lfl's tokens/s, and the
# peak RSS of each process. f32 unless "bf16" (bf16: true on both sides).
# Needs the LlamaFactory venv (bash tests/ref/lf_venv.sh), the fixture GGUF and
# ../shared/data/llamafactory-data (LlamaFactory's demo data).
# Usage: bash tests/bench/bench_dpo_lf.sh [workdir] [f32|bf16] [lf|lfl|both]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-$(mktemp -d)}
BF16=false; [ "${2:-f32}" = bf16 ] && BF16=true
WHO=${3:-both}
DATA=${LF_DATA:-$ROOT/../shared/data/llamafactory-data}
[ -f "$DATA/dpo_en_demo.json" ] || { echo "bench_dpo_lf: $DATA/dpo_en_demo.json is missing (LF_DATA)"; exit 1; }
source "$ROOT/tests/bench/lf_smollm2.sh"
recipe() { # $1: output folder
  cat <<YAML
model_name_or_path: $W/smollm2
stage: dpo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
pref_beta: 0.1
pref_loss: sigmoid
dataset: dpo_en_demo
dataset_dir: $DATA
template: smollm
cutoff_len: 512
max_samples: 64
disable_shuffling: true
overwrite_cache: true
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
max_steps: 8
logging_steps: 1
learning_rate: 5.0e-6
lr_scheduler_type: constant
output_dir: $1
overwrite_output_dir: true
report_to: none
save_steps: 1000
bf16: $BF16
YAML
}
cd "$W"
prec=$([ $BF16 = true ] && echo bf16 || echo f32)
runtime() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['train_runtime'], r.get('train_samples_per_second'))" "$1"; }
if [ "$WHO" != lfl ]; then
  { recipe "$W/lf_out"; echo "use_cpu: true"; } > "$W/lf.yaml"
  OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES= /usr/bin/time -f "maxrss %M" -o "$W/lf_time.txt" \
      "$(dirname "$PY")/llamafactory-cli" train lf.yaml > "$W/lf.log" 2>&1 || { tail -30 "$W/lf.log"; exit 1; }
  read -r rt sps < <(runtime "$W/lf_out/train_results.json")
  printf 'LlamaFactory DPO (LoRA r8, SmolLM2-135M %s, dpo_en_demo, cutoff 512, batch 2, 8 steps, 2 threads)\n' "$prec"
  printf '  train_runtime %.1f s, %s samples/s, peak RSS %.0f MB\n' "$rt" "$sps" "$(($(sed -n 's/maxrss //p' "$W/lf_time.txt") / 1024))"
fi
if [ "$WHO" != lf ]; then
  recipe "$W/lfl_out" > "$W/lfl.yaml"
  OMP_NUM_THREADS=2 /usr/bin/time -f "maxrss %M" -o "$W/lfl_time.txt" "$LFL" train "$W/lfl.yaml" > "$W/lfl.log" 2>&1 \
      || { tail -30 "$W/lfl.log"; exit 1; }
  read -r rt sps < <(runtime "$W/lfl_out/train_results.json")
  printf 'lfl DPO (the same recipe)\n'
  printf '  train_runtime %.1f s, %s samples/s, peak RSS %.0f MB; %s\n' "$rt" "$sps" \
      "$(($(sed -n 's/maxrss //p' "$W/lfl_time.txt") / 1024))" "$(grep -o 'done: .*' "$W/lfl.log" | tail -1)"
fi
