"""LlamaFactory's SFT preprocessing on the data bench_preprocess.lua wrote
(figures only): its get_dataset (loader + converter + SupervisedDatasetProcessor
through datasets.map, one process, no cache) and the processor's
preprocess_dataset called directly on the aligned columns, with the llama3
template and the llama3 tokenizer from ../shared/data/tokenizers.

    ./build/lfl tests/bench/bench_preprocess.lua [N] [dir]
    $(bash tests/ref/lf_venv.sh) tests/bench/bench_preprocess_ref.py [dir]
"""
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOK = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers", "llama3")


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lfl_bench_preprocess"
    work = tempfile.mkdtemp(prefix="lfl-bench-")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(work, "hf")
    from llamafactory.extras import logging as lf_logging
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.data.processor import SupervisedDatasetProcessor
    from llamafactory.hparams import DataArguments, ModelArguments
    import logging
    logging.disable(logging.WARNING)

    tok = AutoTokenizer.from_pretrained(TOK)
    data_args = DataArguments(template="llama3", dataset="alpaca_bench", dataset_dir=data_dir, cutoff_len=2048,
                              overwrite_cache=True)
    model_args = ModelArguments(model_name_or_path=TOK)
    training_args = Seq2SeqTrainingArguments(output_dir=os.path.join(work, "out"), report_to=[])
    tpl = get_template_and_fix_tokenizer(tok, data_args)
    try:
        t0 = time.perf_counter()
        mod = get_dataset(tpl, model_args, data_args, training_args, "sft", tok)
        t_all = time.perf_counter() - t0
        n = len(mod["train_dataset"])

        from llamafactory.data.loader import _get_merged_dataset
        aligned = _get_merged_dataset(data_args.dataset, model_args, data_args, training_args, "sft")
        cols = aligned[:]
        proc = SupervisedDatasetProcessor(template=tpl, tokenizer=tok, processor=None, data_args=data_args)
        t0 = time.perf_counter()
        out = proc.preprocess_dataset(cols)
        t_proc = time.perf_counter() - t0
        ntok = sum(len(x) for x in out["input_ids"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"LlamaFactory SFT preprocessing, {n} alpaca examples, llama3 template + tokenizer, 1 process")
    print(f"  get_dataset (load+align+map)  {t_all:8.3f} s  {n / t_all:10.0f} examples/s")
    print(f"  processor only                {t_proc:8.3f} s  {n / t_proc:10.0f} examples/s  "
          f"({ntok / t_proc:.0f} tokens/s, {ntok / n:.1f} tokens/example)")


if __name__ == "__main__":
    main()
