"""LlamaFactory's UnsupervisedDatasetProcessor (what do_predict with
predict_with_generate feeds to generation) on the dataset files of
tests/golden/preprocess/data with the real tokenizers of
../shared/data/tokenizers: input_ids and labels per row of the eval set
-> tests/golden/eval/unsupervised.json (tests/lua/test_predict.lua).
Run by hand:  $(bash tests/ref/lf_venv.sh) tests/ref/make_unsupervised_goldens.py"""
import json, os, sys, shutil, tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_preprocess_goldens as pp  # noqa: E402  (tokenizer loading, the data folder, the fixed date)

OUT = os.path.join(pp.REPO, "tests", "golden", "eval", "unsupervised.json")
# (name, tokenizer folder, template, eval dataset, data args)
CASES = [
    ("llama3_chat", "llama3", "llama3", "chat", {}),
    ("llama3_alpaca_cut64", "llama3", "llama3", "alpaca", {"cutoff_len": 64}),
    ("qwen3tok_qwen3_chat", "qwen3", "qwen3", "chat", {}),
    ("qwen3tok_qwen3_nothink", "qwen3", "qwen3", "chat", {"enable_thinking": False}),
    ("llama2tok_mistral_cut48", "llama2", "mistral", "chat", {"cutoff_len": 48}),
    ("gemma3tok_gemma2_efficient_eos", "gemma3", "gemma2", "chat", {}),
]


def run_case(name, tokdir, template, dataset, extra, workdir):
    from transformers import Seq2SeqTrainingArguments
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments

    tok = pp.load_tokenizer(tokdir)
    dargs = dict(template=template, eval_dataset=dataset, dataset_dir=pp.DATA, cutoff_len=1024, overwrite_cache=True)
    dargs.update(extra)
    data_args = DataArguments(**dargs)
    model_args = ModelArguments(model_name_or_path=os.path.join(pp.TOKS, tokdir))
    training_args = Seq2SeqTrainingArguments(output_dir=os.path.join(workdir, name), report_to=[], seed=42,
                                             do_predict=True, predict_with_generate=True)
    tpl = get_template_and_fix_tokenizer(tok, data_args)
    ds = get_dataset(tpl, model_args, data_args, training_args, "sft", tok)["eval_dataset"]
    rows = [{"input_ids": list(ex["input_ids"]), "labels": list(ex["labels"])} for ex in ds]
    args = {"cutoff_len": dargs["cutoff_len"]}
    args.update(extra)
    return {"name": name, "tokenizer": tokdir, "template": template, "dataset": dataset, "args": args, "rows": rows}


def main():
    pp.fix_date()
    work = tempfile.mkdtemp(prefix="lfl-unsup-")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(work, "hf")
    try:
        cases = [run_case(*c, workdir=work) for c in CASES]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import llamafactory
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"llamafactory": llamafactory.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    for c in cases:
        print(c["name"], len(c["rows"]), "rows")


if __name__ == "__main__":
    main()
