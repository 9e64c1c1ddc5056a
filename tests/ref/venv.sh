#!/usr/bin/env bash
# Creates (or reuses) the reference Python stack used to write goldens, in a
# venv outside the repo: ${LFL_REF_VENV:-~/.cache/lfl/refvenv}. Prints its python.
# CI never runs this: goldens are committed.
set -euo pipefail
venv=${LFL_REF_VENV:-$HOME/.cache/lfl/refvenv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
need=(torch transformers tokenizers safetensors numpy jinja2 gguf sentencepiece protobuf accelerate "$@")
missing=()
for p in "${need[@]}"; do
  "$venv/bin/python" -m pip show -q "${p%%[=<>]*}" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  "$venv/bin/python" -m pip install -q "${missing[@]}" >&2
fi
echo "$venv/bin/python"
