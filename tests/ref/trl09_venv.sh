#!/usr/bin/env bash
# A venv with trl 0.9.6 (the last TRL with the PPOTrainer LlamaFactory 0.9.x's
# stage ppo runs on), layered over the shared reference venv (tests/ref/venv.sh)
# so torch and transformers are not downloaded again: the layer's own
# site-packages (trl 0.9.6, tyro) come first, the shared venv's packages are
# reached through a .pth file. trl goes in without its dependencies: its pins
# (numpy < 2) would replace the shared venv's, and the goldens only call
# PPOTrainer's formulas, which import with the shared stack. Prints its python.
set -euo pipefail
base_py=$(bash "$(dirname "$0")/venv.sh")
venv=${LFL_TRL09_VENV:-$HOME/.cache/lfl/refvenv-trl09}
if [ ! -x "$venv/bin/python" ]; then
  real=$("$base_py" -c 'import sys; print(sys.base_prefix)')/bin/python3
  "$real" -m venv "$venv" >&2
  site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  "$base_py" -c 'import site; print(site.getsitepackages()[0])' > "$site/zz_refvenv.pth"
fi
if ! "$venv/bin/python" -c 'import trl, tyro, sys; sys.exit(trl.__version__ != "0.9.6")' >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install -q --no-deps "trl==0.9.6" >&2
  "$venv/bin/python" -m pip install -q tyro >&2
fi
echo "$venv/bin/python"
