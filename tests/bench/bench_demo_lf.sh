#!/usr/bin/env bash
# The README's main job (recipes/examples/lora_sft.lua: LoRA r8 SFT of
# SmolLM2-135M on identity + alpaca_demo, cutoff 256, batch 4, 2 epochs = 100
# steps, cosine lr 1e-3, bf16) run by LlamaFactory on torch CPU, for the
# side-by-side figure with `lfl recipes/examples/demo.lua`. The identity
# placeholders are filled as the lfl recipe's mapper fills them. Needs the
# LlamaFactory venv (bash tests/ref/lf_venv.sh) and the fixture GGUF; prints
# LlamaFactory's train_runtime and peak RSS.
# Usage: bash tests/bench/bench_demo_lf.sh [workdir]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-$(mktemp -d)}
source "$ROOT/tests/bench/lf_smollm2.sh"
mkdir -p "$W/data"
sed -e 's/{{name}}/Lumen/g' -e 's/{{author}}/the lfl team/g' "$ROOT/recipes/data/identity.json" > "$W/data/identity.json"
cp "$ROOT/recipes/data/alpaca_demo.json" "$W/data/"
cat > "$W/data/dataset_info.json" <<JSON
{"identity": {"file_name": "identity.json"}, "alpaca_demo": {"file_name": "alpaca_demo.json"}}
JSON
cat > "$W/lf.yaml" <<YAML
model_name_or_path: $W/smollm2
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: identity,alpaca_demo
dataset_dir: $W/data
template: smollm
cutoff_len: 256
max_samples: 100
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
learning_rate: 1.0e-3
num_train_epochs: 2.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
logging_steps: 5
save_steps: 100
output_dir: $W/out
overwrite_output_dir: true
report_to: none
bf16: true
use_cpu: true
seed: 42
YAML
cd "$W"
OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES= /usr/bin/time -f "maxrss %M" -o "$W/time.txt" \
    "$(dirname "$PY")/llamafactory-cli" train lf.yaml > "$W/lf.log" 2>&1
"$PY" -c "
import json
r = json.load(open('$W/out/train_results.json'))
s = json.load(open('$W/out/trainer_state.json'))
rss = int(open('$W/time.txt').read().split()[-1]) / 1024
print('LlamaFactory demo recipe (LoRA r8 SFT, SmolLM2-135M, bf16, 2 threads): %d steps in %.1f s, peak RSS %.0f MB'
      % (s['global_step'], r['train_runtime'], rss))"
