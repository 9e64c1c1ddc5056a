"""Writes the YAML goldens: what PyYAML's SafeLoader (yaml.safe_load) and
LlamaFactory's recipe reader (OmegaConf.to_container(OmegaConf.load(path)),
llamafactory/hparams/parser.py read_args) make of each input, for
tests/lua/test_yaml.lua to compare lfl.yaml.decode against.

  $(bash tests/ref/venv.sh pyyaml omegaconf) tests/ref/make_yaml_goldens.py [examples-dir]

Inputs: tests/golden/yaml/inputs/*.yaml (committed) -> tests/golden/yaml/expected.json,
the canonical text of each value (below) or the error and its line; and every
YAML file of LlamaFactory's examples (default ../shared/reference/llamafactory-examples)
-> tests/golden/yaml/llamafactory_examples.json, the sha256 of each canonical text
(the examples are compared from ../shared; their text is not copied into the repo).

Canonical text (the same function is in tests/lua/test_yaml.lua): None "~",
booleans "T"/"F", numbers "n" + %.17g (nan, inf, -inf spelt so), integers beyond
2^53 "i" + digits, strings "s<bytes>:" + UTF-8, lists "[a,b]", mappings "{k=v,...}"
sorted by the bytes of "k=v", an empty list or mapping "()" (Lua has one empty
table). A datetime.date is its ISO text (lfl keeps timestamps as text).
"""
import datetime
import hashlib
import json
import math
import os
import sys

import yaml
from omegaconf import OmegaConf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "golden", "yaml")


def canon(v):
    if v is None:
        return b"~"
    if v is True:
        return b"T"
    if v is False:
        return b"F"
    if isinstance(v, int) and abs(v) > 2**53:
        return b"i" + str(v).encode()
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return b"nnan"
        if math.isinf(f):
            return b"ninf" if f > 0 else b"n-inf"
        return b"n" + (b"%.17g" % f)
    if isinstance(v, datetime.date):
        v = v.isoformat()
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return b"s%d:" % len(b) + b
    if isinstance(v, (list, tuple)):
        if not v:
            return b"()"
        return b"[" + b",".join(canon(x) for x in v) + b"]"
    if isinstance(v, dict):
        if not v:
            return b"()"
        return b"{" + b",".join(sorted(canon(k) + b"=" + canon(x) for k, x in v.items())) + b"}"
    raise TypeError("no canonical form for %r" % (v,))


def load_pyyaml(path):
    with open(path, "rb") as f:
        return yaml.safe_load(f)


def load_omegaconf(path):
    return OmegaConf.to_container(OmegaConf.load(path))


def outcome(fn, path):
    try:
        v = fn(path)
    except Exception as e:  # the goldens record that it fails and where
        mark = getattr(e, "problem_mark", None)
        return {"error": str(e).splitlines()[0], "line": mark.line + 1 if mark else None}
    return {"canon": canon(v).decode("utf-8", "surrogateescape")}


def main():
    examples = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "reference",
                                                                  "llamafactory-examples")
    inputs = os.path.join(GOLD, "inputs")
    out = {}
    for name in sorted(os.listdir(inputs)):
        if name.endswith(".yaml"):
            p = os.path.join(inputs, name)
            out[name] = {"pyyaml": outcome(load_pyyaml, p), "omegaconf": outcome(load_omegaconf, p)}
    with open(os.path.join(GOLD, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    digests = {}
    for dirpath, _, files in os.walk(examples):
        for name in files:
            if name.endswith((".yaml", ".yml")):
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, examples)
                entry = {}
                for schema, fn in (("pyyaml", load_pyyaml), ("omegaconf", load_omegaconf)):
                    o = outcome(fn, p)
                    entry[schema] = ({"sha256": hashlib.sha256(o["canon"].encode("utf-8", "surrogateescape")).hexdigest()}
                                     if "canon" in o else o)
                digests[rel] = entry
    with open(os.path.join(GOLD, "llamafactory_examples.json"), "w") as f:
        json.dump(dict(sorted(digests.items())), f, indent=1, sort_keys=True)
        f.write("\n")
    print("%d inputs, %d LlamaFactory examples" % (len(out), len(digests)))


if __name__ == "__main__":
    main()
