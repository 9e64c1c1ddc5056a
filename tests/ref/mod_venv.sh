#!/usr/bin/env bash
# A venv for the mixture-of-depths goldens (make_mod_goldens.py): the PyPI
# package mixture-of-depth (module MoD) that LlamaFactory 0.9.5 imports for
# `mixture_of_depths: convert | load`, with the transformers it was written
# against, layered over the shared reference venv (tests/ref/venv.sh) for
# torch. MoD 1.2.0 does not import under transformers 5 (it imports
# transformers.TRANSFORMERS_CACHE, gone since 4.4x; its model classes are
# copies of transformers 4.41's llama/mistral/... modeling), so LlamaFactory
# 0.9.5's own transformers cannot run it; 4.41.2 (with the tokenizers and
# huggingface-hub it accepts) can. Prints its python.
set -euo pipefail
base_py=$(bash "$(dirname "$0")/venv.sh")
venv=${LFL_MOD_VENV:-$HOME/.cache/lfl/refvenv-mod}
pins=("mixture-of-depth==1.2.0" "transformers==4.41.2" "tokenizers==0.19.1" "huggingface-hub==0.23.4")
if [ ! -x "$venv/bin/python" ]; then
  real=$("$base_py" -c 'import sys; print(sys.base_prefix)')/bin/python3
  "$real" -m venv "$venv" >&2
  site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  "$base_py" -c 'import site; print(site.getsitepackages()[0])' > "$site/zz_refvenv.pth"
fi
if ! "$venv/bin/python" - "${pins[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
PY
then
  # --no-deps: torch, numpy, safetensors, ... come from the shared venv
  "$venv/bin/python" -m pip install -q --no-deps "${pins[@]}" >&2
fi
echo "$venv/bin/python"
