#!/usr/bin/env bash
# A venv with the `llamafactory` package from PyPI, layered over the shared
# reference venv (tests/ref/venv.sh) so torch is not downloaded twice:
# llamafactory pins transformers<=5.6, so installing it into the shared venv
# would downgrade transformers for every other golden script. The layer's own
# site-packages (llamafactory, its transformers, peft, trl, ...) come first;
# the shared venv's packages are reached through a .pth file. Prints its python.
#
# Pins (checked on every run, so an older layer is brought up to them):
#   llamafactory==0.9.5   the version the goldens and the parity work follow
#   kernels>=0.12,<0.13   what the layer's transformers 5.6 declares for its
#                         kernels integration; without it the shared venv's
#                         newer kernels (0.19, pulled in by transformers 5.2x)
#                         is imported and llamafactory-cli dies at start with
#                         "Either a revision or a version must be specified"
#   adam-mini==1.1.1      the optimizer LlamaFactory imports for use_adam_mini
#                         (tests/ref/make_adam_mini_goldens.py)
#   apollo-torch==1.0.3   the optimizer LlamaFactory imports for use_apollo
#                         (tests/ref/make_apollo_goldens.py)
set -euo pipefail
base_py=$(bash "$(dirname "$0")/venv.sh")
venv=${LFL_LF_VENV:-$HOME/.cache/lfl/refvenv-lf}
pins=("llamafactory==0.9.5" "kernels>=0.12,<0.13" "adam-mini==1.1.1" "apollo-torch==1.0.3")
if [ ! -x "$venv/bin/python" ]; then
  real=$("$base_py" -c 'import sys; print(sys.base_prefix)')/bin/python3
  "$real" -m venv "$venv" >&2
  site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  "$base_py" -c 'import site; print(site.getsitepackages()[0])' > "$site/zz_refvenv.pth"
fi
# the version the layer resolves first (its own site-packages, then the shared venv's)
if ! "$venv/bin/python" - "${pins[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    if not req.specifier.contains(version(req.name), prereleases=True):
        sys.exit(1)
PY
then
  "$venv/bin/python" -m pip install -q "${pins[@]}" >&2
fi
echo "$venv/bin/python"
