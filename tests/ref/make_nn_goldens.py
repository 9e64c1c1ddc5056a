"""Writes tests/golden/nn/*.safetensors: fixed random inputs (seeded), outputs
and gradients of the NN block ops computed by torch / transformers in float32.
Gradients are those of sum(out * gout) for a fixed random gout stored beside.

    $(bash tests/ref/venv.sh) tests/ref/make_nn_goldens.py

norms.safetensors      HF LlamaRMSNorm (eps 1e-6); F.layer_norm with and without w/b (eps 1e-5)
rope.safetensors       LlamaRotaryEmbedding cos/sin from position ids (a row deep into a
                       sequence, a row of packed examples restarting at 0) + apply_rotary_pos_emb
glu.safetensors        silu(g) * u, gelu(g) * u (erf and tanh)
attention.safetensors  F.scaled_dot_product_attention with an explicit boolean mask per case
                       (GQA by repeat_interleave of k/v; causal; sliding window as transformers'
                       sliding_window_overlay, kv_idx > q_idx - window; packed segments);
                       softcap cases computed by hand (tanh before masking, as Gemma2)
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb

OUT = pathlib.Path(__file__).resolve().parents[1] / "golden" / "nn"
OUT.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(1234)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


def grads(fn, inputs, gout=None):
    """out = fn(*inputs); backward of sum(out * gout) (gout drawn when not given);
    returns out, gout, [grads]."""
    xs = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    if gout is None:
        gout = randn(*out.shape)
    out.backward(gout)
    return out.detach(), gout, [x.grad.detach() for x in xs]


def save(name, tensors, meta):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, OUT / name, metadata={"format": "pt", "cases": json.dumps(meta)})
    print(name, (OUT / name).stat().st_size, "bytes")


# ---- norms ----
t = {}
x = randn(2, 7, 48, scale=2.0) + 0.5
w = randn(48) * 0.3 + 1.0
rms = LlamaRMSNorm(48, eps=1e-6)


xs = [x.clone().requires_grad_(True)]
rms.weight = torch.nn.Parameter(w.clone())
out = rms(xs[0])
gout = randn(*out.shape)
out.backward(gout)
t.update(rms_x=x, rms_w=w, rms_out=out.detach(), rms_gout=gout, rms_gx=xs[0].grad, rms_gw=rms.weight.grad)

b = randn(48) * 0.2
out, gout, (gx, gw, gb) = grads(lambda x, w, b: F.layer_norm(x, (48,), w, b, 1e-5), [x, w, b])
t.update(ln_b=b, ln_out=out, ln_gout=gout, ln_gx=gx, ln_gw=gw, ln_gb=gb)
out, gout, (gx,) = grads(lambda x: F.layer_norm(x, (48,), None, None, 1e-5), [x])
t.update(ln0_out=out, ln0_gout=gout, ln0_gx=gx)
save("norms.safetensors", t, {"rms_eps": 1e-6, "ln_eps": 1e-5, "note": "layernorm reads rms_x and rms_w"})

# ---- rope ----
B, Hq, Hkv, T, D = 2, 4, 2, 37, 16
cfg = LlamaConfig(hidden_size=64, num_attention_heads=Hq, num_key_value_heads=Hkv, head_dim=D, rope_theta=10000.0)
rot = LlamaRotaryEmbedding(cfg)
pos = torch.stack([
    torch.arange(T) + 4000,                                                 # deep into a long sequence
    torch.cat([torch.arange(12), torch.arange(20), torch.arange(5)]),       # packed: restarts at 0
]).long()
q = randn(B, 2, T, D)
k = randn(B, 1, T, D)
cos, sin = rot(q, pos)
out, gout, (gq, gk) = grads(lambda q, k: torch.cat(apply_rotary_pos_emb(q, k, cos, sin), dim=1), [q, k])
save("rope.safetensors", {
    "pos": pos, "inv_freq": rot.inv_freq.float(), "cos": cos, "sin": sin, "q": q, "k": k,
    "q_out": out[:, :2], "k_out": out[:, 2:], "q_gout": gout[:, :2], "k_gout": gout[:, 2:], "gq": gq, "gk": gk,
}, {"note": "out = cat(q_rot, k_rot, dim=1); grads of sum(out * cat(q_gout, k_gout))"})

# ---- gated activations ----
t = {}
gate = randn(3, 5, 40, scale=2.5)
up = randn(3, 5, 40)
t.update(gate=gate, up=up)
for name, fn in [("swiglu", lambda a, u: F.silu(a) * u),
                 ("geglu", lambda a, u: F.gelu(a) * u),
                 ("geglu_tanh", lambda a, u: F.gelu(a, approximate="tanh") * u)]:
    out, gout, (gg, gu) = grads(fn, [gate, up])
    t.update({name + "_out": out, name + "_gout": gout, name + "_ggate": gg, name + "_gup": gu})
save("glu.safetensors", t, {})


# ---- attention ----
def attn_ref(q, k, v, causal=False, window=0, softcap=0.0, scale=None, seg=None):
    B, Hq, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    kk = k.repeat_interleave(Hq // Hkv, dim=1)
    vv = v.repeat_interleave(Hq // Hkv, dim=1)
    qi = torch.arange(T)[:, None] + (S - T)   # absolute query positions (KV-cache aware)
    kj = torch.arange(S)[None, :]
    mask = torch.ones(T, S, dtype=torch.bool)
    if causal:
        mask &= kj <= qi
    if window:
        mask &= kj > qi - window               # transformers' sliding_window_overlay
    mask = mask[None, None].expand(B, 1, T, S)
    if seg is not None:
        mask = mask & (seg[:, None, :, None] == seg[:, None, None, :])
    scale = scale if scale is not None else 1.0 / D ** 0.5
    if softcap:
        s = (q @ kk.transpose(-1, -2)) * scale
        s = softcap * torch.tanh(s / softcap)
        s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, dim=-1) @ vv
    return F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=scale)


t = {}
q = randn(B, Hq, T, D)
k = randn(B, Hkv, T, D)
v = randn(B, Hkv, T, D)
seg = torch.tensor([[0] * 12 + [1] * 20 + [2] * 5, [0] * 30 + [1] * 7]).long()
gout = randn(B, Hq, T, D)  # one gout for all cases of this shape
t.update(q=q, k=k, v=v, seg=seg, gout=gout)
cases = {
    "full": dict(),
    "causal": dict(causal=True),
    "window": dict(causal=True, window=8),
    "softcap": dict(causal=True, softcap=1.5, scale=0.4),
    "segments": dict(causal=True, seg=True),
    "segwin": dict(causal=True, window=6, softcap=3.0, seg=True),
}
for name, c in cases.items():
    c = dict(c)
    if c.pop("seg", False):
        c["seg"] = seg
    out, _, (gq, gk, gv) = grads(lambda q, k, v: attn_ref(q, k, v, **c), [q, k, v], gout)
    t.update({name + "_out": out, name + "_gq": gq, name + "_gk": gk, name + "_gv": gv})
# KV-cache style: 5 queries after 32 cached keys
qc = randn(B, Hq, 5, D)
out, gout, (gq, gk, gv) = grads(lambda q, k, v: attn_ref(q, k, v, causal=True, window=16), [qc, k, v])
t.update(kv_q=qc, kv_out=out, kv_gout=gout, kv_gq=gq, kv_gk=gk, kv_gv=gv)
cases["kv"] = dict(causal=True, window=16, q="kv_q", gout="kv_gout")
# longer rows (several 64-row tiles), one query head group
q2, k2, v2 = randn(1, 2, 150, 8), randn(1, 1, 150, 8), randn(1, 1, 150, 8)
seg2 = torch.tensor([[0] * 70 + [1] * 50 + [2] * 30]).long()
gout2 = randn(1, 2, 150, 8)
t.update(long_q=q2, long_k=k2, long_v=v2, long_seg=seg2, long_gout=gout2)
for name, c in {"long_causal": dict(causal=True), "long_segwin": dict(causal=True, window=50, seg=seg2)}.items():
    out, _, (gq, gk, gv) = grads(lambda q, k, v: attn_ref(q, k, v, **c), [q2, k2, v2], gout2)
    t.update({name + "_out": out, name + "_gq": gq, name + "_gk": gk, name + "_gv": gv})
long = dict(q="long_q", k="long_k", v="long_v", gout="long_gout")
cases["long_causal"] = dict(causal=True, **long)
cases["long_segwin"] = dict(causal=True, window=50, seg="long_seg", **long)
for c in cases.values():
    if c.get("seg") is True:
        c["seg"] = "seg"
save("attention.safetensors", t, cases)
