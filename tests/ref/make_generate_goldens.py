"""Greedy continuations with transformers' generate (KV cache on) for the tiny
random checkpoints in tests/golden/models/*, one LoRA adapter (PEFT, fixed
random weights) on the llama one, and SmolLM2-135M-Instruct read from its GGUF
(gguf_file=, dequantized to f32) -> tests/golden/generate/{generate.json, lora_llama/}.
Run with the venv python from tests/ref/venv.sh (peft added: venv.sh peft)."""
import json, os, pathlib
import torch
import transformers as tf

ROOT = pathlib.Path(__file__).resolve().parents[1] / "golden"
OUT = ROOT / "generate"
MODELS = ["llama", "llama_tied_llama3rope", "llama_linear_rope", "llama_yarn_rope", "llama_bias",
          "mistral_window", "qwen2", "qwen3", "gemma", "gemma2", "phi3"]
PROMPTS = [[1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45], [1, 60, 7], [1, 30, 31, 32, 3, 4, 50, 51]]
NEW = 20
EOS = 2


def greedy(model, ids, n, eos):
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=n, eos_token_id=eos,
                             pad_token_id=0, attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    new = out[0, len(ids):].tolist()
    if eos is not None and eos in new:
        new = new[:new.index(eos)]
    return new


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    res = {"new_tokens": NEW, "eos": EOS, "prompts": PROMPTS, "models": {}}
    for name in MODELS:
        m = tf.AutoModelForCausalLM.from_pretrained(ROOT / "models" / name, dtype=torch.float32).eval()
        res["models"][name] = [greedy(m, p, NEW, EOS) for p in PROMPTS]
    # LoRA on llama: deterministic weights, saved with PEFT
    from peft import LoraConfig, get_peft_model
    base = tf.AutoModelForCausalLM.from_pretrained(ROOT / "models" / "llama", dtype=torch.float32).eval()
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                         lora_dropout=0.0, task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    pm.eval()
    pm.save_pretrained(OUT / "lora_llama")
    res["lora_llama"] = [greedy(pm, p, NEW, EOS) for p in PROMPTS]
    with pm.disable_adapter():
        res["lora_llama_disabled"] = [greedy(pm, p, NEW, EOS) for p in PROMPTS]
    # SmolLM2 from the GGUF
    gguf = pathlib.Path.home() / ".cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    if gguf.exists():
        tok = tf.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        m = tf.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
        texts = ["<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
                 "<|im_start|>user\nList three colors.<|im_end|>\n<|im_start|>assistant\n"]
        sm = []
        for t in texts:
            ids = tok(t, add_special_tokens=False)["input_ids"]
            new = greedy(m, ids, NEW, tok.convert_tokens_to_ids("<|im_end|>"))
            sm.append({"text": t, "ids": ids, "new": new, "decoded": tok.decode(new)})
        res["smollm2"] = sm
    (OUT / "generate.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
