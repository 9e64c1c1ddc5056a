"""Writes tests/golden/loss/{ce,lce,tlp}.safetensors with torch's
F.cross_entropy (ignore_index=-100) values and gradients, in f32:
  ce   cross_entropy on logits: mean/sum/none values, d/dlogits for each
       reduction (none with a fixed upstream weight `gnone`)
  lce  the same through hidden @ w^T: d/dhidden and d/dw (our fused op
       walks V in chunks; the chunk to use is in the metadata)
  tlp  log_softmax(logits).gather(label), 0 where ignored, and its gradient
       under an upstream weight `g`
Run: $(bash tests/ref/venv.sh) tests/ref/make_loss_goldens.py
"""
import pathlib
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "loss"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(1234)


def labels_for(shape, V, ignore):
    lab = torch.randint(0, V, shape, generator=g, dtype=torch.int64)
    for idx in ignore:
        lab[idx] = -100
    return lab


def grads(fn, inputs, upstream=None):
    for x in inputs:
        x.grad = None
    y = fn()
    (y if upstream is None else (y * upstream).sum()).backward()
    return [x.grad.detach().clone() for x in inputs]


def ce_case(tensors, name, logits, labels):
    x = logits.clone().requires_grad_(True)
    for red in ("mean", "sum", "none"):
        v = F.cross_entropy(x.reshape(-1, x.shape[-1]), labels.reshape(-1), ignore_index=-100,
                            reduction=red)
        if red == "none":
            v = v.reshape(labels.shape)
        tensors[f"{name}.loss_{red}"] = v.detach().clone()
    gnone = torch.randn(labels.shape, generator=g)
    for red in ("mean", "sum", "none"):
        def f():
            v = F.cross_entropy(x.reshape(-1, x.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction=red)
            return v.reshape(labels.shape) if red == "none" else v
        (gx,) = grads(f, [x], gnone if red == "none" else None)
        tensors[f"{name}.grad_{red}"] = gx
    tensors[f"{name}.logits"] = logits
    tensors[f"{name}.labels"] = labels
    tensors[f"{name}.gnone"] = gnone


def lce_case(tensors, meta, name, hidden, w, labels, chunk):
    h = hidden.clone().requires_grad_(True)
    ww = w.clone().requires_grad_(True)
    gnone = torch.randn(labels.shape, generator=g)
    for red in ("mean", "sum", "none"):
        def f():
            logits = h @ ww.T
            v = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                                reduction=red)
            return v.reshape(labels.shape) if red == "none" else v
        tensors[f"{name}.loss_{red}"] = f().detach().clone()
        gh, gw = grads(f, [h, ww], gnone if red == "none" else None)
        tensors[f"{name}.dhidden_{red}"] = gh
        tensors[f"{name}.dw_{red}"] = gw
    tensors[f"{name}.hidden"] = hidden
    tensors[f"{name}.w"] = w
    tensors[f"{name}.labels"] = labels
    tensors[f"{name}.gnone"] = gnone
    meta[f"{name}.chunk"] = str(chunk)


# cross_entropy
ce = {}
x = torch.randn(6, 10, generator=g) * 3
x[3] += 50  # a shifted row: the log-sum-exp must subtract the max
ce_case(ce, "ce_2d", x, labels_for((6,), 10, [1, 4]))
ce_case(ce, "ce_3d", torch.randn(2, 3, 17, generator=g) * 2, labels_for((2, 3), 17, [(1, 0), (1, 1), (1, 2), (0, 1)]))
ce_case(ce, "ce_allignored", torch.randn(3, 5, generator=g), torch.full((3,), -100, dtype=torch.int64))
save_file(ce, out / "ce.safetensors", metadata={"note": "F.cross_entropy ignore_index=-100, f32"})

# linear_cross_entropy (V not a multiple of the chunk; a 3-D case with an all-ignored row)
lce, meta = {}, {"note": "F.cross_entropy(hidden @ w.T) ignore_index=-100, f32"}
lce_case(lce, meta, "lce_2d", torch.randn(6, 8, generator=g), torch.randn(13, 8, generator=g),
         labels_for((6,), 13, [2]), 5)
lce_case(lce, meta, "lce_3d", torch.randn(2, 4, 16, generator=g), torch.randn(37, 16, generator=g),
         labels_for((2, 4), 37, [(1, 0), (1, 1), (1, 2), (1, 3)]), 8)
save_file(lce, out / "lce.safetensors", metadata=meta)

# token_logprobs
tlp = {}
logits = torch.randn(2, 5, 11, generator=g) * 2
labels = labels_for((2, 5), 11, [(0, 4), (1, 0)])
x = logits.clone().requires_grad_(True)
up = torch.randn(labels.shape, generator=g)


def logprobs():
    lp = F.log_softmax(x, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return lp.masked_fill(labels == -100, 0.0)


tlp["tlp.logits"], tlp["tlp.labels"], tlp["tlp.g"] = logits, labels, up
tlp["tlp.logp"] = logprobs().detach().clone()
(tlp["tlp.grad"],) = grads(logprobs, [x], up)
save_file(tlp, out / "tlp.safetensors", metadata={"note": "log_softmax.gather, 0 where label == -100, f32"})

for f in sorted(out.glob("*.safetensors")):
    print(f, f.stat().st_size, "bytes")
ai = ce["ce_allignored.loss_mean"]
print("torch: mean over zero targets =", ai.item(), "; its grad is all zeros:",
      bool((ce["ce_allignored.grad_mean"] == 0).all()))
