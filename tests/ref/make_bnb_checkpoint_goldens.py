"""Goldens for pre-quantized bitsandbytes checkpoints (what `save_pretrained` writes for a
model loaded with load_in_4bit / load_in_8bit, e.g. the Hub's "-bnb-4bit" models) ->
tests/golden/quant/{bnb_nf4dq_llama,bnb_fp4_llama,bnb_int8_llama}/ and
tests/golden/quant/bnb_checkpoint.safetensors.
A tiny random llama (f32, hidden 64, intermediate 128, 2 layers: bitsandbytes 0.50's CPU
dequantize_4bit is wrong for rows shorter than its block of 64 (it gives the next rows
the first block's absmax), so the test model's linears take at least 64 inputs, as any
real model's do) is loaded by transformers 5.25 with bitsandbytes 0.50 on the CPU:
- bnb_nf4dq_llama: NF4, double quantization (the absmaxes as u8 with nested_absmax /
  nested_quant_map), compute dtype f32;
- bnb_fp4_llama: FP4 without double quantization (f32 absmax), compute dtype f32;
- bnb_int8_llama: LLM.int8 (int8 weight + SCB per row).
Each folder is transformers' save_pretrained of that model, as it is (config.json with
quantization_config, model.safetensors with the weight.absmax / quant_map /
quant_state.bitsandbytes__* tensors). The golden file holds, for each kind K, K.logits:
the quantized model's logits on fixed ids (for int8 in train mode, where bitsandbytes
dequantizes as MatMul8bitFp; eval mode takes the LLM.int8 matmul) and K.loss.
Run: $(bash tests/ref/venv.sh) tests/ref/make_bnb_checkpoint_goldens.py"""
import pathlib, shutil, tempfile
import torch
from safetensors.torch import save_file
from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

root = pathlib.Path(__file__).resolve().parents[1]
src = pathlib.Path(tempfile.mkdtemp()) / "llama"
torch.manual_seed(0)
LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                             bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
                             initializer_range=0.2)).save_pretrained(src)
out = root / "golden" / "quant"
KINDS = {
    "bnb_nf4dq_llama": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32),
    "bnb_fp4_llama": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4",
                                        bnb_4bit_use_double_quant=False, bnb_4bit_compute_dtype=torch.float32),
    "bnb_int8_llama": BitsAndBytesConfig(load_in_8bit=True),
}
ids = torch.randint(3, 64, (2, 11))
gold = {"ids": ids.to(torch.int64)}
for name, qc in KINDS.items():
    model = LlamaForCausalLM.from_pretrained(src, quantization_config=qc, dtype=torch.float32, device_map="cpu")
    d = out / name
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d)
    for extra in d.glob("generation_config.json"):
        extra.unlink()
    # the saved folder loads back to the same model (what lfl reads is what transformers reads)
    back = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, device_map="cpu")
    back.train()  # int8: MatMul8bitFp (dequantize, f32 matmul), as lfl trains on it; no dropout in this model
    with torch.no_grad():
        r = back(ids, labels=ids)
    gold[f"{name}.logits"] = r.logits.float()
    gold[f"{name}.loss"] = r.loss.float().reshape(1)
    print(name, sorted(p.name for p in d.iterdir()), float(r.loss))
save_file({k: v.contiguous() for k, v in gold.items()}, out / "bnb_checkpoint.safetensors")
