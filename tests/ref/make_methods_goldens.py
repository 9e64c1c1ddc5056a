"""Goldens for the efficient fine-tuning methods -> tests/golden/methods/methods.safetensors:
- bitsandbytes (CPU): the dynamic 8-bit maps, quantize_blockwise (block 256) and an
  AdamW8bit trajectory (min_8bit_size=0 so the small test tensor takes 8-bit states);
- GaLore: galore_torch's GaLoreProjector / GaLoreAdamW update written out below from
  its source (torch.linalg.svd, with the sign convention lfl's SVD uses: the largest
  |entry| of each U column positive, so bases agree across refreshes);
- PiSSA: PEFT's pissa init formula (exact SVD) on one matrix.
Run: $(bash tests/ref/venv.sh bitsandbytes) tests/ref/make_methods_goldens.py"""
import math, pathlib
import torch
import bitsandbytes as bnb
from bitsandbytes import functional as F
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "methods"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)
gold = {}

# ---- bitsandbytes maps and blockwise quantization
cs, cu = F.create_dynamic_map(signed=True), F.create_dynamic_map(signed=False)
gold["bnb.code_signed"], gold["bnb.code_unsigned"] = cs, cu
x = torch.randn(1000, generator=g) * 3
q, st = F.quantize_blockwise(x, code=cs, blocksize=256)
gold["bnb.x"], gold["bnb.x_q"], gold["bnb.x_absmax"] = x, q, st.absmax
gold["bnb.x_deq"] = F.dequantize_blockwise(q, st)
y = torch.rand(1000, generator=g) ** 4
q, st = F.quantize_blockwise(y, code=cu, blocksize=256)
gold["bnb.y"], gold["bnb.y_q"], gold["bnb.y_absmax"] = y, q, st.absmax

# bitsandbytes' CPU kernel finds codes with an approximate grid search that
# misses the nearest code for some values in the crowded small end of the
# unsigned map; its own "default" backend (and lfl) take the exact nearest code
# (bucketize against the midpoints). The goldens use that formula.
def quant_nearest(A, code, blocksize):
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    blocks = -(n // -blocksize)
    pad = torch.zeros(blocks * blocksize)
    pad[:n] = A_flat
    absmax = pad.reshape(blocks, blocksize).abs().max(dim=-1)[0]
    scaled = torch.clamp(pad.reshape(blocks, blocksize) * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1)
    q = torch.bucketize(scaled.reshape(-1)[:n], (code[:-1] + code[1:]) / 2, out_int32=True).to(torch.uint8)
    return q.reshape(A.shape), absmax


gold["bnb.y_q_nearest"] = quant_nearest(y, cu, 256)[0]
import bitsandbytes.backends.cpu.ops as cpu_ops


def _quant_direct(A_fp32, code, absmax_out, out_uint8, blocksize):
    q, am = quant_nearest(A_fp32, code, blocksize)
    out_uint8.copy_(q)
    absmax_out.copy_(am)


cpu_ops._quant_blockwise_fp32_direct = _quant_direct

# ---- AdamW8bit trajectory (30 x 20 = 600 elements: two full blocks and a short one)
p0 = torch.randn(30, 20, generator=g)
grads = [torch.randn(30, 20, generator=g) for _ in range(5)]
p = torch.nn.Parameter(p0.clone())
opt = bnb.optim.AdamW8bit([p], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, min_8bit_size=0)
gold["a8.p0"] = p0
for i, gr in enumerate(grads):
    p.grad = gr.clone()
    opt.step()
    gold[f"a8.grad{i + 1}"] = gr
    gold[f"a8.p{i + 1}"] = p.detach().clone()
s = opt.state[p]
gold["a8.state1"], gold["a8.absmax1"] = s["state1"].clone(), s["absmax1"].clone()
gold["a8.state2"], gold["a8.absmax2"] = s["state2"].clone(), s["absmax2"].clone()


# ---- GaLore (galore_torch 1.0: galore_projector.py + adamw.py)
def svd_signed(m):
    U, S, Vh = torch.linalg.svd(m.double(), full_matrices=False)
    idx = U.abs().argmax(dim=0)
    sign = torch.sign(U[idx, torch.arange(U.shape[1])])
    return (U * sign).float(), S.float(), (Vh * sign.unsqueeze(1)).float()


class Projector:
    def __init__(self, rank, gap, scale, proj_type):
        self.rank, self.gap, self.scale, self.proj_type, self.ortho = rank, gap, scale, proj_type, None

    def ortho_of(self, m, kind):
        U, S, Vh = svd_signed(m)
        r = self.rank
        return {"right": Vh[:r, :], "left": U[:, :r], "full": [U[:, :r], Vh[:r, :]]}[kind]

    def project(self, grad, it):
        m, n = grad.shape
        t = self.proj_type
        kind = {"std": "right" if m >= n else "left", "reverse_std": "left" if m >= n else "right"}.get(t, t)
        if self.ortho is None or it % self.gap == 0:
            self.ortho = self.ortho_of(grad, kind)
        self.kind = kind
        if kind == "right":
            return grad @ self.ortho.t()
        if kind == "left":
            return self.ortho.t() @ grad
        return self.ortho[0].t() @ grad @ self.ortho[1].t()

    def project_back(self, low):
        if self.kind == "right":
            full = low @ self.ortho
        elif self.kind == "left":
            full = self.ortho @ low
        else:
            full = self.ortho[0] @ low @ self.ortho[1]
        return full * self.scale


def galore_run(p0, grads, rank, gap, scale, proj_type, lr, wd, b1, b2, eps):
    p = p0.clone()
    proj = Projector(rank, gap, scale, proj_type) if proj_type else None
    step, m, v, traj = 0, None, None, []
    for gr in grads:
        low = proj.project(gr, step) if proj else gr
        if m is None:
            m, v = torch.zeros_like(low), torch.zeros_like(low)
        step += 1
        m.mul_(b1).add_(low, alpha=1 - b1)
        v.mul_(b2).addcmul_(low, low, value=1 - b2)
        denom = v.sqrt().add_(eps)
        step_size = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
        ng = m / denom
        if proj:
            ng = proj.project_back(ng)
        p.add_(ng, alpha=-step_size)
        if wd > 0:
            p.add_(p, alpha=-lr * wd)
        traj.append(p.clone())
    return traj


cases = {"std_tall": ((12, 8), "std"), "std_wide": ((6, 10), "std"), "reverse_std": ((9, 7), "reverse_std"),
         "right": ((7, 9), "right"), "left": ((10, 6), "left"), "full": ((9, 7), "full"), "plain": ((5, 4), None)}
for name, (shape, pt) in cases.items():
    p0 = torch.randn(*shape, generator=g)
    grads = [torch.randn(*shape, generator=g) for _ in range(5)]
    traj = galore_run(p0, grads, rank=3, gap=2, scale=0.5, proj_type=pt, lr=1e-2, wd=0.1, b1=0.9, b2=0.999, eps=1e-6)
    gold[f"galore.{name}.p0"] = p0
    for i in range(5):
        gold[f"galore.{name}.grad{i + 1}"] = grads[i]
        gold[f"galore.{name}.p{i + 1}"] = traj[i]

# ---- PiSSA (peft tuners/lora/layer.py pissa_init, exact SVD), r=4, alpha=8 -> scaling 2
W = torch.randn(16, 12, generator=g)
r, scaling = 4, 2.0
U, S, Vh = svd_signed(W)
Sr = S[:r] / scaling
A = torch.diag(torch.sqrt(Sr)) @ Vh[:r]
B = U[:, :r] @ torch.diag(torch.sqrt(Sr))
gold["pissa.W"], gold["pissa.A"], gold["pissa.B"], gold["pissa.W_res"] = W, A, B, W - scaling * B @ A

save_file({k: v.contiguous() for k, v in gold.items()}, out / "methods.safetensors")
print("wrote", out / "methods.safetensors", sum(v.numel() * v.element_size() for v in gold.values()), "bytes")
