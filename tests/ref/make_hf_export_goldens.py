#!/usr/bin/env python3
"""Writes tests/golden/tokenizers/hf-export-<name>.json: what transformers'
AutoTokenizer gives on the corpus of tests/ref/tokenizer_corpus.py when it loads
the tokenizer files lfl writes for a GGUF vocabulary (tokenizer.json,
tokenizer_config.json, special_tokens_map.json from lfl.model.hf_files).

  $(bash tests/ref/venv.sh) tests/ref/make_hf_export_goldens.py

lfl writes the folders first (./build/lfl tests/ref/lfl_write_hf_tokenizers.lua,
so build lfl and run tests/fixtures.sh before). Per text, as make_tokenizer_goldens.py:
ids (add_special_tokens=True), ids_no_special (False, when different),
ids_split_special (split_special_tokens=True, when different), offsets as flat
byte offsets (valid UTF-8 texts), decoded and decoded_skip (when different).
Per vocabulary, "tokenizer": the class transformers picked, bos/eos/pad/unk
tokens, model_max_length, and the chat template applied to a fixed conversation
(when the GGUF has one). tests/lua/test_hf_save.lua writes the same files and
checks lfl's encoding and template rendering of them against these goldens.
"""
import json
import os
import subprocess
import sys
import tempfile

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "golden", "tokenizers")
sys.path.insert(0, HERE)
from tokenizer_corpus import CORPUS  # noqa: E402

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi! Wie geht's? 你好"},
    {"role": "assistant", "content": "Fine."},
    {"role": "user", "content": "2+2?"},
]


def byte_offsets(text, offsets):
    cum = [0]
    for ch in text:
        cum.append(cum[-1] + len(ch.encode("utf-8")))
    flat = []
    for s, e in offsets:
        flat += [cum[s], cum[e]]
    return flat


def run(tok):
    cases = []
    for raw in CORPUS:
        try:
            raw.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        text = raw.decode("utf-8", errors="replace")
        e = tok(text, return_offsets_mapping=True)
        c = {"ids": e["input_ids"]}
        plain = tok(text, add_special_tokens=False)["input_ids"]
        if plain != c["ids"]:
            c["ids_no_special"] = plain
        split = tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        if split != plain:
            c["ids_split_special"] = split
        if valid:
            c["offsets"] = byte_offsets(text, e["offset_mapping"])
        c["decoded"] = tok.decode(c["ids"], skip_special_tokens=False)
        skip = tok.decode(c["ids"], skip_special_tokens=True)
        if skip != c["decoded"]:
            c["decoded_skip"] = skip
        cases.append(c)
    return cases


def info(tok):
    i = {"class": type(tok).__name__, "model_max_length": tok.model_max_length}
    for k in ("bos_token", "eos_token", "pad_token", "unk_token"):
        i[k] = getattr(tok, k)
    if tok.chat_template:
        i["chat"] = tok.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    return i


def write(name, obj):
    path = os.path.join(OUT, name + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    import tokenizers
    import transformers
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([os.path.join(ROOT, "build", "lfl"), os.path.join(HERE, "lfl_write_hf_tokenizers.lua"), tmp],
                       check=True)
        for name in sorted(os.listdir(tmp)):
            tok = AutoTokenizer.from_pretrained(os.path.join(tmp, name))
            write("hf-export-" + name, {
                "source": f"lfl.model.hf_files.write_tokenizer of the {name} GGUF, loaded by transformers "
                          f"{transformers.__version__} (tokenizers {tokenizers.__version__})",
                "conversation": CONVERSATION, "tokenizer": info(tok), "cases": run(tok)})


if __name__ == "__main__":
    main()
