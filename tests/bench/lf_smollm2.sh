# Sourced by the LlamaFactory side-by-side benchmarks (bench_*_lf.sh) with ROOT
# (the repository) and W (the work folder) set: sets LFL, cache and PY (the
# LlamaFactory venv's python) and writes SmolLM2-135M-Instruct as an HF folder
# $W/smollm2 (the fixture GGUF's weights saved by lfl, the tokenizer through
# transformers' GGUF reader), so both sides train the same weights.
LFL=$ROOT/build/lfl
cache=${LFL_CACHE:-$HOME/.cache/lfl}
PY=$(bash "$ROOT/tests/ref/lf_venv.sh" | tail -1)
mkdir -p "$W"
"$LFL" -e "lfl.load('$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf'):save('$W/smollm2')"
"$PY" -c "
from transformers import AutoTokenizer
AutoTokenizer.from_pretrained('$cache/models', gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf').save_pretrained('$W/smollm2')"
