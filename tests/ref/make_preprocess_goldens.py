"""Writes tests/golden/preprocess/: small dataset files (data/, with a
dataset_info.json) and goldens.json, the input_ids / labels (and position_ids,
chosen/rejected, kl_* and kto_tags where the stage has them) that LlamaFactory
itself produces for them: its get_template_and_fix_tokenizer + get_dataset
(loader -> converter -> Supervised / PackedSupervised / Pairwise / Feedback /
Pretrain processor), with the real tokenizers from ../shared/data/tokenizers.
tests/lua/test_preprocess_goldens.lua must reproduce every case exactly.

Labels are stored compactly: "labels_mask" is a string with one character per
position ("1": label == input id, "0": -100, "x": something else) and
"labels_other" maps those "x" positions (0-based) to the label value.

Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_preprocess_goldens.py
"""
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKS = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
OUT = os.path.join(REPO, "tests", "golden", "preprocess")
DATA = os.path.join(OUT, "data")

TOOLS = json.dumps([
    {"name": "get_weather", "description": "Get the current weather in a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                    "required": ["city"]}},
])

LONG = ("The quick brown fox jumps over the lazy dog while the committee debates the merits of "
        "incremental compilation, caching, and reproducible builds across many machines. ") * 4

CHAT = [
    {"conversations": [{"from": "human", "value": "Hi! Who are you?"},
                       {"from": "gpt", "value": "I am a helpful assistant."}]},
    {"system": "You are a pirate. Answer like one.",
     "conversations": [{"from": "human", "value": "Where is the treasure?"},
                       {"from": "gpt", "value": "Arr, buried on the island, matey!"}]},
    {"conversations": [{"from": "system", "value": "Be brief."},
                       {"from": "human", "value": "What is 2+2?"},
                       {"from": "gpt", "value": "4."},
                       {"from": "human", "value": "And times 3?"},
                       {"from": "gpt", "value": "12."},
                       {"from": "human", "value": "Say it in French, please."},
                       {"from": "gpt", "value": "Douze."}]},
    {"tools": TOOLS,
     "conversations": [{"from": "human", "value": "What's the weather in Paris?"},
                       {"from": "function_call", "value": json.dumps({"name": "get_weather",
                                                                      "arguments": {"city": "Paris"}})},
                       {"from": "observation", "value": json.dumps({"temperature": 21, "sky": "clear"})},
                       {"from": "gpt", "value": "It is 21 degrees and clear in Paris."}]},
    {"conversations": [{"from": "human", "value": "Summarise this: " + LONG},
                       {"from": "gpt", "value": "A fox jumps; a committee debates builds. " + LONG[:200]},
                       {"from": "human", "value": "Shorter?"},
                       {"from": "gpt", "value": "Fox jumps, builds debated."}]},
    {"conversations": [{"from": "human", "value": "你好，世界！ Ünïcödé test 🚀"},
                       {"from": "gpt", "value": "<think>\nThe user greets.\n</think>\n\n你好！🚀"},
                       {"from": "human", "value": "Again"},
                       {"from": "gpt", "value": "Hello again."}]},
    # invalid: ends with a user turn (skipped by both)
    {"conversations": [{"from": "human", "value": "dangling"}]},
]

ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat well.\n2. Sleep.\n3. Exercise."},
    {"instruction": "Translate to German.", "input": "Good morning", "output": "Guten Morgen"},
    {"instruction": "Continue the list.", "input": "a, b, c", "output": "d, e, f",
     "system": "You complete sequences.", "history": [["1, 2, 3", "4, 5, 6"]]},
    {"instruction": "Explain: " + LONG, "input": "", "output": "It is about builds. " + LONG[:300]},
]

PREF = [
    {"conversations": [{"from": "human", "value": "Name a colour."}],
     "chosen": {"from": "gpt", "value": "Blue."}, "rejected": {"from": "gpt", "value": "Seven, obviously, because numbers are colours."}},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                       {"from": "human", "value": "Tell me a joke about cats."}],
     "chosen": {"from": "gpt", "value": "Why did the cat sit on the computer? To keep an eye on the mouse."},
     "rejected": {"from": "gpt", "value": "No."}},
    {"conversations": [{"from": "human", "value": "Explain: " + LONG}],
     "chosen": {"from": "gpt", "value": "Short answer. " + LONG[:250]},
     "rejected": {"from": "gpt", "value": "Bad."}},
]

KTO = [
    {"messages": [{"role": "user", "content": "Is the sky blue?"}, {"role": "assistant", "content": "Yes, usually."}],
     "label": True},
    {"messages": [{"role": "user", "content": "What is 3*3?"}, {"role": "assistant", "content": "10"}],
     "label": False},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi there"},
                  {"role": "user", "content": "Explain: " + LONG}, {"role": "assistant", "content": "Builds. " + LONG[:200]}],
     "label": True},
]

PT = [{"text": "The first document is short."},
      {"text": "Second document: " + LONG[:300]},
      {"text": "Third. 你好 🚀 ünïcödé."},
      {"text": "Fourth document closes the set with a few more words to chunk."}]

INFO = {
    "chat": {"file_name": "chat.json", "formatting": "sharegpt",
             "columns": {"messages": "conversations", "system": "system", "tools": "tools"}},
    "alpaca": {"file_name": "alpaca.json",
               "columns": {"prompt": "instruction", "query": "input", "response": "output",
                           "system": "system", "history": "history"}},
    "pref": {"file_name": "pref.json", "formatting": "sharegpt", "ranking": True,
             "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
    "kto": {"file_name": "kto.json", "formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
    "pt": {"file_name": "pt.jsonl", "columns": {"prompt": "text"}},
}

# (name, tokenizer folder, template, stage, dataset, data args)
CASES = [
    ("llama3_sft", "llama3", "llama3", "sft", "chat", {}),
    ("llama3_sft_cut64", "llama3", "llama3", "sft", "chat", {"cutoff_len": 64}),
    ("llama3_sft_train_on_prompt", "llama3", "llama3", "sft", "chat", {"train_on_prompt": True}),
    ("llama3_sft_mask_history_cut80", "llama3", "llama3", "sft", "chat", {"mask_history": True, "cutoff_len": 80}),
    ("llama3_sft_packing", "llama3", "llama3", "sft", "chat", {"packing": True, "cutoff_len": 256}),
    ("llama3_sft_neat_packing", "llama3", "llama3", "sft", "alpaca", {"neat_packing": True, "cutoff_len": 160}),
    ("llama3_default", "llama3", "default", "sft", "chat", {}),
    ("llama3_alpaca", "llama3", "alpaca", "sft", "alpaca", {"cutoff_len": 128}),
    ("qwen3tok_qwen", "qwen3", "qwen", "sft", "chat", {}),
    ("qwen3tok_qwen_cut48_mask_history", "qwen3", "qwen", "sft", "chat", {"cutoff_len": 48, "mask_history": True}),
    ("qwen3tok_qwen3", "qwen3", "qwen3", "sft", "chat", {}),
    ("qwen3tok_qwen3_nothink", "qwen3", "qwen3", "sft", "chat", {"enable_thinking": False}),
    ("qwen3tok_qwen3_mask_history", "qwen3", "qwen3", "sft", "chat", {"mask_history": True}),
    ("qwen3tok_chatml", "qwen3", "chatml", "sft", "chat", {}),
    ("qwen3tok_default_alpaca", "qwen3", "default", "sft", "alpaca", {"cutoff_len": 96}),
    ("qwen3tok_alpaca", "qwen3", "alpaca", "sft", "alpaca", {"train_on_prompt": True}),
    ("llama2tok_mistral", "llama2", "mistral", "sft", "chat", {}),
    ("llama2tok_mistral_cut64", "llama2", "mistral", "sft", "chat", {"cutoff_len": 64}),
    ("gemma3tok_gemma2_efficient_eos", "gemma3", "gemma2", "sft", "chat", {}),
    ("gemma3tok_gemma2_mask_history_cut72", "gemma3", "gemma2", "sft", "chat", {"mask_history": True, "cutoff_len": 72}),
    ("llama3_rm", "llama3", "llama3", "rm", "pref", {"cutoff_len": 96}),
    ("qwen3tok_qwen3_rm", "qwen3", "qwen3", "rm", "pref", {}),
    ("gemma3tok_gemma2_rm", "gemma3", "gemma2", "rm", "pref", {"cutoff_len": 80}),
    ("llama3_kto", "llama3", "llama3", "kto", "kto", {"cutoff_len": 100}),
    ("qwen3tok_qwen_kto", "qwen3", "qwen", "kto", "kto", {}),
    ("llama3_pt_packing", "llama3", "llama3", "pt", "pt", {"cutoff_len": 32}),
    ("llama3_pt_nopacking", "llama3", "llama3", "pt", "pt", {"cutoff_len": 24, "packing": False}),
    ("qwen3tok_qwen_pt_packing", "qwen3", "qwen", "pt", "pt", {"cutoff_len": 16}),
    ("llama2tok_default_pt", "llama2", "default", "pt", "pt", {"cutoff_len": 20, "packing": False}),
]


def write_data():
    os.makedirs(DATA, exist_ok=True)
    for name, rows in (("chat.json", CHAT), ("alpaca.json", ALPACA), ("pref.json", PREF), ("kto.json", KTO)):
        with open(os.path.join(DATA, name), "w", encoding="utf-8") as f:
            json.dump(rows, f, ensure_ascii=False, indent=1)
    with open(os.path.join(DATA, "pt.jsonl"), "w", encoding="utf-8") as f:
        for r in PT:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(DATA, "dataset_info.json"), "w") as f:
        json.dump(INFO, f, indent=1)


def pack_labels(ids, labels):
    mask, other = [], {}
    for i, (a, b) in enumerate(zip(ids, labels)):
        if b == -100:
            mask.append("0")
        elif b == a:
            mask.append("1")
        else:
            mask.append("x")
            other[str(i)] = b
    assert len(ids) == len(labels), "input_ids and labels differ in length"
    return "".join(mask), other


def load_tokenizer(tokdir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = os.path.join(TOKS, tokdir)
    if tokdir == "llama2":
        # transformers 5's LlamaTokenizer rebuilds the SentencePiece-style
        # pipeline (Metaspace pre-tokenizer instead of the file's Prepend
        # normalizer), so " I" after "[/INST]" becomes [315] instead of the
        # file's [28705, 315]. The goldens pin the tokenizer.json behaviour
        # (what the `tokenizers` library and transformers 4 produce), which is
        # what lfl.tokenizer implements.
        return PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"), bos_token="<s>",
                                       eos_token="</s>", unk_token="<unk>")
    return AutoTokenizer.from_pretrained(path)


def run_case(name, tokdir, template, stage, dataset, extra, workdir):
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments

    tok = load_tokenizer(tokdir)
    dargs = dict(template=template, dataset=dataset, dataset_dir=DATA, cutoff_len=1024, overwrite_cache=True,
                 preprocessing_num_workers=None)
    dargs.update(extra)
    if stage == "pt" and "packing" not in dargs:
        dargs["packing"] = True  # what LlamaFactory's argument parser sets for pt
    user_cutoff = dargs["cutoff_len"]  # DataArguments lowers it by one when packing
    data_args = DataArguments(**dargs)
    model_args = ModelArguments(model_name_or_path=os.path.join(TOKS, tokdir))
    training_args = Seq2SeqTrainingArguments(output_dir=os.path.join(workdir, name), report_to=[], seed=42)
    tpl = get_template_and_fix_tokenizer(tok, data_args)
    mod = get_dataset(tpl, model_args, data_args, training_args, stage, tok)
    ds = mod["train_dataset"]
    rows = []
    for ex in ds:
        row = {}
        for prefix in ("", "chosen_", "rejected_", "kl_"):
            if prefix + "input_ids" in ex:
                ids = list(ex[prefix + "input_ids"])
                row[prefix + "input_ids"] = ids
                if prefix + "labels" in ex:
                    m, o = pack_labels(ids, list(ex[prefix + "labels"]))
                    row[prefix + "labels_mask"] = m
                    if o:
                        row[prefix + "labels_other"] = o
        if "position_ids" in ex:
            row["position_ids"] = list(ex["position_ids"])
        if "attention_mask" in ex and extra.get("neat_packing"):
            row["attention_mask"] = list(ex["attention_mask"])
        if "kto_tags" in ex:
            row["kto_tag"] = bool(ex["kto_tags"])
        rows.append(row)
    args = {"cutoff_len": user_cutoff, "packing": bool(data_args.packing)}
    for k in ("train_on_prompt", "mask_history", "neat_packing", "enable_thinking"):
        if k in extra:
            args[k] = extra[k]
    return {"name": name, "tokenizer": tokdir, "template": template, "stage": stage, "dataset": dataset,
            "args": args, "eos_id": tok.eos_token_id, "pad_id": tok.pad_token_id, "rows": rows}


def fix_date():
    # the llama3 tool prompt carries today's date; the Lua test pins the same one
    import datetime as _dt
    from llamafactory.data import tool_utils

    class FixedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2024, 7, 26, 12, 0, 0)

    tool_utils.datetime = FixedDatetime


def main():
    fix_date()
    write_data()
    work = tempfile.mkdtemp(prefix="lfl-pp-")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(work, "hf")
    cases = []
    only = set(sys.argv[1:])
    try:
        for c in CASES:
            if only and c[0] not in only:
                continue
            cases.append(run_case(*c, workdir=work))
            print(c[0], len(cases[-1]["rows"]), "rows", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import llamafactory
    path = os.path.join(OUT, "goldens.json")
    if only and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)["cases"]
        new = {c["name"]: c for c in cases}
        cases = [new.pop(c["name"], c) for c in old] + list(new.values())
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"llamafactory": llamafactory.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
