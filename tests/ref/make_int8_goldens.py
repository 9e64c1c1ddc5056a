"""bitsandbytes' 8-bit linear (LLM.int8, load_in_8bit) as transformers loads it
on the CPU -> tests/golden/quant/bnb8.safetensors and a LoRA run on the tiny
llama with an 8-bit base -> tests/golden/peft/llama_qlora_int8.safetensors.

What bitsandbytes 0.50 does (read from its source, checked below):
  Int8Params._quantize: W -> f16, SCB = max|W16| per row (f32), CB =
    round_half_even(f32(W16) * (127 / SCB)) as int8 (int8_vectorwise_quant with
    threshold 0: no outliers in the weight).
  Linear8bitLt.forward in training mode (module.training) on the CPU takes
    MatMul8bitFp: y = x @ (f32(CB) * (SCB * f32(1/127)))^T + bias, and
    dx = g @ that same matrix (dequantize, then an f32 GEMM).
  In eval mode it takes MatMul8bitLt with llm_int8_threshold (6.0): x -> f16,
    columns with any |x| >= 6 are outliers (taken out of the int8 product),
    SCA = max|x16| per row without them, CA = round(x16 * (127 / SCA)),
    y = (CA @ CB^T as int32) * (SCA SCB^T) * 6.200124e-05 + bias, plus
    x[:, outliers] @ (CB[:, outliers] * SCB * 7.874015718698502e-3)^T.

Keys of bnb8.safetensors, per matrix M (rand f32 with a zero row and outliers,
real = rows 0..31 of SmolLM2-135M's layer-0 q_proj in bf16):
  M.input, M.CB (u8: the int8 bytes), M.SCB (f32), rand.dequant (f32, MatMul8bitFp's matrix)
and for rand: lin.x, lin.bias, lin.g, lin.y_train, lin.dx_train (training mode),
lin.y_eval (eval mode, threshold 6.0, x has outlier columns), lin.y_eval0
(eval mode, threshold 0: no decomposition), lin.x1 / lin.y_eval1 (one row with an
outlier); odd.input, odd.CB, odd.SCB, odd.x, odd.y_eval: a 24 x 200 weight in eval mode.

The LoRA run is make_qlora_goldens.py's with BitsAndBytesConfig(load_in_8bit=True)
and dtype float32 (transformers otherwise loads an 8-bit model in f16), plus
eval_logits0 / eval_loss0: the initial model in eval mode (LLM.int8's matmul).

Run from the repo root with `$(bash tests/ref/venv.sh peft bitsandbytes)`."""
import os
import pathlib
import numpy as np
import torch
import bitsandbytes as bnb
import transformers as tf
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file

REPO = pathlib.Path(__file__).resolve().parents[2]
torch.manual_seed(0)
out = {}

rand = torch.randn(48, 128) * 0.02
rand[3, 5] = 0.5
rand[40, 100] = -0.7
rand[7] = 0                     # an all-zero row: SCB 0
rand[9, :] = rand[9, :] * 1e-4  # a tiny row (f16 subnormals)

cache = os.environ.get("LFL_CACHE", os.path.expanduser("~/.cache/lfl"))
from gguf import GGUFReader, quants
r = GGUFReader(os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
t = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
q = quants.dequantize(t.data, t.tensor_type).reshape(576, 576)
real = torch.from_numpy(np.ascontiguousarray(q[:32])).to(torch.bfloat16)


def quantize(A):
    """as transformers' Bnb8bitQuantize does it: Int8Params(value.to('cpu')).to(device)"""
    p = bnb.nn.Int8Params(A.clone(), requires_grad=False, has_fp16_weights=False).to("cpu")
    assert p.data.dtype == torch.int8
    return p


for name, A in (("rand", rand), ("real", real)):
    p = quantize(A)
    out[name + ".input"] = A.contiguous()
    out[name + ".CB"] = p.CB.view(torch.uint8).reshape(-1).contiguous()
    out[name + ".SCB"] = p.SCB.float().contiguous()
    if name == "rand":  # MatMul8bitFp's weight
        out[name + ".dequant"] = p.CB.data.to(torch.float32).mul_(p.SCB.unsqueeze(1).mul(1.0 / 127.0)).contiguous()

# the module, as replace_with_bnb_linear makes it (has_fp16_weights False, threshold 6.0)
lin = bnb.nn.Linear8bitLt(128, 48, bias=True, has_fp16_weights=False, threshold=6.0)
lin.weight = quantize(rand)
with torch.no_grad():
    lin.bias.copy_(torch.randn(48) * 0.1)
x = torch.randn(5, 128)
x[1, 3] = 7.5     # outlier columns 3 and 77 (|x| >= 6)
x[4, 77] = -6.0
g = torch.randn(5, 48)
lin.train()
xg = x.clone().requires_grad_(True)
y = lin(xg)
y.backward(g)
out["lin.x"], out["lin.bias"], out["lin.g"] = x, lin.bias.detach().clone(), g
out["lin.y_train"], out["lin.dx_train"] = y.detach().float(), xg.grad.float()
lin.eval()
with torch.no_grad():
    out["lin.y_eval"] = lin(x).float()
    lin.state.threshold = 0.0
    out["lin.y_eval0"] = lin(x).float()
    lin.state.threshold = 6.0
    x1 = torch.randn(1, 128)
    x1[0, 20] = 9.0   # one row: bitsandbytes leaves the (zeroed) outlier out without zeroing columns
    out["lin.x1"], out["lin.y_eval1"] = x1, lin(x1).float()

# an input width that is no multiple of 64 (the int8 dot's vector tail), 3 rows, outliers
odd = bnb.nn.Linear8bitLt(200, 24, bias=False, has_fp16_weights=False, threshold=6.0)
W_odd = torch.randn(24, 200) * 0.05
odd.weight = quantize(W_odd)
odd.eval()
xo = torch.randn(3, 200) * 2
xo[2, 199] = 11.0
with torch.no_grad():
    out["odd.input"] = W_odd
    out["odd.CB"] = odd.weight.CB.view(torch.uint8).reshape(-1).contiguous()
    out["odd.SCB"] = odd.weight.SCB.float().contiguous()
    out["odd.x"], out["odd.y_eval"] = xo, odd(xo).float()

# the checks behind the docstring: training mode is dequantize-then-GEMM
W = out["rand.dequant"]
assert torch.allclose(out["lin.y_train"], x @ W.t() + out["lin.bias"], rtol=0, atol=1e-5)
assert torch.equal(out["rand.CB"].view(torch.int8).reshape(48, 128)[7], torch.zeros(128, dtype=torch.int8))

dst = REPO / "tests" / "golden" / "quant" / "bnb8.safetensors"
save_file(out, dst, metadata={"bitsandbytes": bnb.__version__, "torch": torch.__version__})
print("wrote", dst, dst.stat().st_size, "bytes")

# ---- LoRA on an 8-bit base against PEFT (make_qlora_goldens.py's run) ----
import sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_qlora_goldens import MODEL, OUT, TARGETS, LR, BETAS, EPS, WD, STEPS, batch, set_adapter_values


def run(case):
    torch.manual_seed(0)
    q = tf.BitsAndBytesConfig(load_in_8bit=True)
    model = tf.AutoModelForCausalLM.from_pretrained(MODEL, quantization_config=q, device_map="cpu",
                                                    dtype=torch.float32, attn_implementation="eager")
    n8 = sum(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    assert n8 == 7, n8
    assert model.lm_head.weight.dtype == torch.float32
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    set_adapter_values(model, 200 + len(case))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    ids, labels = batch()
    gold = {"input_ids": ids, "labels": labels}
    with torch.no_grad():
        gold["logits0"] = model(input_ids=ids).logits.float()
        model.eval()  # Linear8bitLt in eval mode: LLM.int8 (MatMul8bitLt, threshold 6.0)
        gold["eval_logits0"] = model(input_ids=ids).logits.float()
        gold["eval_loss0"] = model(input_ids=ids, labels=labels).loss.reshape(1).double()
        model.train()
    state = lambda: {k: v.detach().clone().float() for k, v in get_peft_model_state_dict(model).items()}
    for k, v in state().items():
        gold["init." + k] = v
    losses = []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if step in (1, STEPS):
            for k, v in state().items():
                gold[f"step{step}.{k}"] = v
    with torch.no_grad():
        losses.append(float(model(input_ids=ids, labels=labels).loss))
    gold["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file({k: v.contiguous() for k, v in gold.items()}, OUT / f"llama_qlora_{case}.safetensors")
    print(case, " ".join(f"{x:.6f}" for x in losses))


run("int8")
