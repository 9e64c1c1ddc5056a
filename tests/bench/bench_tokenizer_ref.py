#!/usr/bin/env python3
"""Python `tokenizers` on the text tests/bench/bench_tokenizer.lua generates
(figures only): one document at a time, and encode_batch (Rayon, all cores).

  ./build/lfl tests/bench/bench_tokenizer.lua && $(bash tests/ref/venv.sh) tests/bench/bench_tokenizer_ref.py
"""
import os
import sys
import time

from tokenizers import Tokenizer

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lfl_bench_tokenizer.txt"
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "tokenizers")
with open(path, "rb") as f:
    docs = f.read().decode("utf-8").split("\n\x1e\n")
total = sum(len(d.encode("utf-8")) for d in docs)
print(f"text: {total / 1e6:.2f} MB in {len(docs)} documents; batch threads: {os.environ.get('RAYON_NUM_THREADS', os.cpu_count())}")
for name in ["llama3", "qwen3", "deepseek_v3", "gemma3", "llama2"]:
    tok = Tokenizer.from_file(os.path.join(root, name, "tokenizer.json"))
    tok.encode_batch(docs[:200], add_special_tokens=False)
    t0 = time.perf_counter()
    ntok = 0
    for d in docs:
        ntok += len(tok.encode(d, add_special_tokens=False).ids)
    single = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = tok.encode_batch(docs, add_special_tokens=False)
    batch = time.perf_counter() - t1
    assert sum(len(e.ids) for e in out) == ntok
    print(f"{name:12s} {ntok:9d} tokens  single {total / 1e6 / single:6.2f} MB/s  batch {total / 1e6 / batch:6.2f} MB/s")
