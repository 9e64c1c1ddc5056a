"""transformers loading SmolLM2-135M-Instruct from the same Q4_1 GGUF that
lfl's tests use (gguf_file=): tokens, greedy next-token predictions and the
perplexity of a fixed paragraph -> tests/golden/smollm2/reference.json."""
import json, math, os, pathlib
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf = pathlib.Path(os.environ.get("LFL_CACHE", pathlib.Path.home() / ".cache/lfl")) / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, torch_dtype=torch.float32).eval()

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n",
    "Water boils at a temperature of",
    "One, two, three, four,",
]
PARAGRAPH = ("The river wound through the valley, carrying melted snow from the mountains to the sea. "
             "Farmers along its banks had learned to read its moods: in spring it rose quickly and spread "
             "across the low fields, leaving behind a layer of rich silt, while in late summer it shrank to "
             "a slow, clear stream that children could cross on stepping stones. Over the centuries, towns "
             "grew up at the places where the water was calm enough for boats, and roads followed the river "
             "because it had already found the easiest path through the hills.")

out = {"prompts": []}
with torch.no_grad():
    for p in PROMPTS:
        ids = tok(p, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0]
        top2 = torch.topk(logits, 2, dim=-1)
        out["prompts"].append({"text": p, "ids": ids, "argmax": top2.indices[:, 0].tolist(),
                               "margin": (top2.values[:, 0] - top2.values[:, 1]).tolist()})
    ids = tok(PARAGRAPH, add_special_tokens=False)["input_ids"]
    x = torch.tensor([ids])
    loss = model(x, labels=x).loss.item()
    out["paragraph"] = {"text": PARAGRAPH, "ids": ids, "loss": loss, "perplexity": math.exp(loss)}
dst = pathlib.Path(__file__).resolve().parents[1] / "golden" / "smollm2" / "reference.json"
dst.write_text(json.dumps(out, indent=1))
print("wrote", dst, "ppl", math.exp(loss))
