"""Writes tests/golden/templates/lf_modelfiles.json: the Ollama Modelfile that
LlamaFactory's `llamafactory-cli export` writes next to an exported model
(Template.get_ollama_modelfile after get_template_and_fix_tokenizer), for every
template in recipes/templates/ with the llama3 and qwen3 tokenizers (tokenizer.json
and tokenizer_config.json) from ../shared/data/tokenizers. The stop lines come
from a Python set of ids, so their order is not meaningful. A template LlamaFactory cannot write one for (a dict
slot, a template needing another tokenizer) is recorded with its error.

Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_modelfile_goldens.py
"""
import json
import os

from llamafactory.data.template import TEMPLATES, get_template_and_fix_tokenizer
from llamafactory.hparams import DataArguments
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
OUT = os.path.join(REPO, "tests", "golden", "templates", "lf_modelfiles.json")

TOKENIZERS = ["llama3", "qwen3"]


def main():
    names = sorted(f[:-4] for f in os.listdir(os.path.join(REPO, "recipes", "templates")) if f.endswith(".lua"))
    out = {}
    for tk in TOKENIZERS:
        for name in names:
            if name not in TEMPLATES:
                continue
            tok = AutoTokenizer.from_pretrained(os.path.join(SHARED, tk))
            try:
                tpl = get_template_and_fix_tokenizer(tok, DataArguments(template=name))
                out[f"{tk}/{name}"] = {"modelfile": tpl.get_ollama_modelfile(tok)}
            except Exception as e:  # noqa: BLE001 - recorded for lfl to refuse alike
                out[f"{tk}/{name}"] = {"error": f"{type(e).__name__}: {e}"}
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(len(out), "modelfiles,", sum("error" in v for v in out.values()), "errors")


if __name__ == "__main__":
    main()
