"""OFT conformance goldens: PEFT's OFT (OFTConfig as LlamaFactory 0.9.5 builds it:
r = oft_rank, oft_block_size, module_dropout, the Cayley-Neumann
parametrisation with 5 terms, PEFT's defaults for the rest) on the tiny llama
of tests/golden/models, from a seeded non-zero initialisation of oft_R.

Writes tests/golden/peft/:
  llama_oft_<case>.safetensors   input_ids, labels, init.<key> (oft_R weights,
      PEFT key names), logits, loss, grad.<key> (d loss / d oft_R weight)
  py_adapter_llama_oft_b8/       the b8 case's adapter by PEFT's save_pretrained
  llama_qoft_nf4_dq.safetensors  the same keys for QOFT: OFT (oft_block_size 16) on
      tests/golden/peft/qlora_llama64 loaded by transformers with bitsandbytes
      4-bit weights (nf4 + double quantization, LlamaFactory's defaults; compute
      dtype float32, on the CPU; see make_qlora_goldens.py for why that model)
  lfl_oft_adapter.safetensors    logits: PEFT's logits for the adapter lfl wrote
      to tests/golden/peft/lfl_adapter_llama_oft/ (only when that folder
      exists: write it with ./build/lfl tests/ref/lfl_save_oft_adapter.lua, then rerun)

Run from the repo root with the python of `bash tests/ref/lf_venv.sh` (the
peft LlamaFactory 0.9.5 resolves; 0.18.1 when these were made)."""
import pathlib, shutil
import torch
import transformers as tf
import peft
from peft import OFTConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file

REPO = pathlib.Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "golden" / "models"
OUT = REPO / "tests" / "golden" / "peft"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# hidden 32, intermediate 48: b8 divides both; b32 is adjusted to 24 for down_proj
# (in 48); r2 gives blocks of 16 and 24
CASES = {"b8": dict(r=0, oft_block_size=8), "b32": dict(r=0, oft_block_size=32), "r2": dict(r=2, oft_block_size=0)}


def base():
    return tf.AutoModelForCausalLM.from_pretrained(MODELS / "llama", dtype=torch.float32,
                                                   attn_implementation="eager").float()


def batch():
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(3, 64, (2, 10), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    labels[1, -3:] = -100
    return ids, labels


def oft_model(kw, seed):
    torch.manual_seed(0)
    cfg = OFTConfig(target_modules=TARGETS, module_dropout=0.0, task_type="CAUSAL_LM", **kw)
    model = get_peft_model(base(), cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".oft_R." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def record(model, ids, labels):
    model.train()
    gold = {"input_ids": ids, "labels": labels}
    state = get_peft_model_state_dict(model)
    for k, v in state.items():
        gold["init." + k] = v.detach().clone()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold["logits"] = out.logits.detach().float().clone()
    gold["loss"] = out.loss.detach().float().reshape(1)
    named = dict(model.named_parameters())
    for k in state:
        # state dict keys drop the adapter name: ...oft_R.weight <- ...oft_R.default.weight
        gold["grad." + k] = named[k.replace(".oft_R.weight", ".oft_R.default.weight")].grad.detach().clone()
    return gold, out.loss.item(), len(state)


def qoft(ids, labels):
    torch.manual_seed(0)
    q = tf.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32)
    model = tf.AutoModelForCausalLM.from_pretrained(OUT / "qlora_llama64", quantization_config=q, device_map="cpu",
                                                    attn_implementation="eager")
    model = get_peft_model(model, OFTConfig(r=0, oft_block_size=16, target_modules=TARGETS, task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(400)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".oft_R." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    gold, loss, n = record(model, ids, labels)
    save_file({k: v.contiguous() for k, v in gold.items()}, OUT / "llama_qoft_nf4_dq.safetensors")
    print("qoft nf4_dq loss", loss, n, "tensors")


def main():
    print("peft", peft.__version__)
    OUT.mkdir(parents=True, exist_ok=True)
    ids, labels = batch()
    for i, (case, kw) in enumerate(CASES.items()):
        model = oft_model(kw, 300 + i)
        gold, loss, n = record(model, ids, labels)
        save_file({k: v.contiguous() for k, v in gold.items()}, OUT / f"llama_oft_{case}.safetensors")
        print(case, "loss", loss, n, "tensors")
        if case == "b8":
            d = OUT / "py_adapter_llama_oft_b8"
            shutil.rmtree(d, ignore_errors=True)
            model.peft_config["default"].base_model_name_or_path = "tests/golden/models/llama"
            model.save_pretrained(d)
            (d / "README.md").unlink(missing_ok=True)
    qoft(ids, labels)
    lfl_dir = OUT / "lfl_adapter_llama_oft"
    if lfl_dir.exists():
        model = PeftModel.from_pretrained(base(), lfl_dir)
        n = sum(p.numel() for k, p in model.named_parameters() if ".oft_R." in k)
        assert n > 0, "PEFT found no oft_R weights in lfl's adapter"
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        save_file({"logits": logits.contiguous()}, OUT / "lfl_oft_adapter.safetensors")
        print("lfl adapter logits saved")


if __name__ == "__main__":
    main()
