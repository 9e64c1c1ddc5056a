#!/usr/bin/env bash
# A venv with the `llamafactory` package from PyPI, layered over the shared
# reference venv (tests/ref/venv.sh) so torch is not downloaded twice:
# llamafactory pins transformers<=5.6, so installing it into the shared venv
# would downgrade transformers for every other golden script. The layer's own
# site-packages (llamafactory, its transformers, peft, trl, ...) come first;
# the shared venv's packages are reached through a .pth file. Prints its python.
set -euo pipefail
base_py=$(bash "$(dirname "$0")/venv.sh")
venv=${LFL_LF_VENV:-$HOME/.cache/lfl/refvenv-lf}
if [ ! -x "$venv/bin/python" ]; then
  real=$("$base_py" -c 'import sys; print(sys.base_prefix)')/bin/python3
  "$real" -m venv "$venv" >&2
  site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  "$base_py" -c 'import site; print(site.getsitepackages()[0])' > "$site/zz_refvenv.pth"
fi
if ! "$venv/bin/python" -m pip show -q llamafactory >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install -q llamafactory >&2
fi
echo "$venv/bin/python"
