"""Sliding-window perplexity (transformers' "Perplexity of fixed-length models"
guide) of SmolLM2-135M-Instruct loaded by transformers from the Q4_1 GGUF that
lfl's tests use, on tests/golden/eval/ppl_paragraph.txt, for a few
(cutoff_len, stride) pairs -> tests/golden/eval/perplexity.json. The NLL is the
exact sum over scored tokens (each window's mean loss times its number of
shifted labels); the guide's own weighting (label count minus one per window)
is stored as ppl_guide for reference. Run with the venv python from
tests/ref/venv.sh."""
import json, math, os, pathlib
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
gguf = pathlib.Path(os.environ.get("LFL_CACHE", pathlib.Path.home() / ".cache/lfl")) / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, torch_dtype=torch.float32).eval()
text = (ROOT / "golden" / "eval" / "ppl_paragraph.txt").read_text()
CONFIGS = [(1024, 512), (64, 32), (48, 16), (40, 40), (2, 1)]


def sliding(ids, max_length, stride):
    seq_len = ids.size(1)
    total, scored, guide_sum, guide_n, windows, prev_end = 0.0, 0, 0.0, 0, 0, 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss.item()
        count = int((target_ids[:, 1:] != -100).sum())  # labels left after the shift
        total += loss * count
        scored += count
        n_guide = int((target_ids != -100).sum()) - target_ids.size(0)
        guide_sum += loss * n_guide
        guide_n += n_guide
        windows += 1
        prev_end = end
        if end == seq_len:
            break
    return {"cutoff_len": max_length, "stride": stride, "tokens": seq_len, "scored": scored, "windows": windows,
            "nll": total / scored, "ppl": math.exp(total / scored), "ppl_guide": math.exp(guide_sum / guide_n)}


ids = tok(text, return_tensors="pt").input_ids
out = {"text_file": "ppl_paragraph.txt", "ids": ids[0].tolist(), "cases": [sliding(ids, m, s) for m, s in CONFIGS]}
dst = ROOT / "golden" / "eval" / "perplexity.json"
dst.write_text(json.dumps(out, indent=1) + "\n")
for c in out["cases"]:
    print(c)
