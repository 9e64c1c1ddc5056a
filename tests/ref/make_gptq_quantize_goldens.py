"""Goldens for lfl's GPTQ quantizer (core/quant/gptq_quantize.c, lfl.gptq_quantize) ->
tests/golden/quant/gptq_quantize.safetensors.

The reference is AutoGPTQ / GPTQModel's GPTQ.fasterquant (blocksize 128, desc_act False,
static_groups False) with its Quantizer (perchannel, sym, mse False) and the v1 packing of
AutoGPTQ's QuantLinear.pack (intweight = round((Q + zero * scale) / scale_f16), zeros stored
minus one), written out below from those sources: the libraries need compiled kernels and a
GPU to import. It runs in float64 (what lfl computes in) on fixed inputs: a weight W and
the Hessian H = 2 X^T X / nsamples (stored in f32) of correlated calibration rows X with
one dead input column, an all-zero weight row and a group with no negative weight. Each case stores W, H and the reference's qweight, qzeros, scales (f16), g_idx
(and b4g128 its dequantized weight). The same algorithm in float32 (the reference's own precision) is
run as well and the share of codes it rounds differently from float64 is printed and
stored (as case.f32_code_diff): that is the precision gap, not an lfl difference.
Run: $(bash tests/ref/venv.sh) tests/ref/make_gptq_quantize_goldens.py"""
import math, pathlib
import torch
from safetensors.torch import save_file

root = pathlib.Path(__file__).resolve().parents[1]
out = root / "golden" / "quant" / "gptq_quantize.safetensors"


class Quantizer:  # AutoGPTQ quantization/quantizer.py, perchannel weights, mse False
    def configure(self, bits, sym):
        self.maxq = torch.tensor(2 ** bits - 1)
        self.sym = sym

    def find_params(self, x):
        tmp = torch.zeros(x.shape[0], dtype=x.dtype)
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
        self.scale = self.scale.reshape(-1, 1)
        self.zero = self.zero.reshape(-1, 1)

    def quantize(self, x):
        q = torch.clamp(torch.round(x / self.scale) + self.zero, 0, self.maxq)
        return self.scale * (q - self.zero), q


def fasterquant(W, H, bits, groupsize, percdamp, blocksize=128, dtype=torch.float64):
    W = W.clone().to(dtype)
    H = H.clone().to(dtype)
    columns = W.shape[1]
    quantizer = Quantizer()
    quantizer.configure(bits, sym=True)
    quantizer.find_params(W)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    Q = torch.zeros_like(W)
    codes = torch.zeros_like(W)
    scale, zero = [], []
    now_idx = 1
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        C1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if (i1 + i) % groupsize == 0:
                quantizer.find_params(W[:, (i1 + i):(i1 + i + groupsize)])
            if ((i1 + i) // groupsize) - now_idx == -1:
                scale.append(quantizer.scale)
                zero.append(quantizer.zero)
                now_idx += 1
            q, c = quantizer.quantize(w.unsqueeze(1))
            q, c = q.flatten(), c.flatten()
            Q1[:, i] = q
            C1[:, i] = c
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        codes[:, i1:i2] = C1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    g_idx = torch.tensor([i // groupsize for i in range(columns)], dtype=torch.int32)
    scale = torch.cat(scale, dim=1)  # [out, groups]
    zero = torch.cat(zero, dim=1)
    return Q, codes.to(torch.int64), scale, zero, g_idx


def pack(Q, scale, zero, g_idx, bits):  # AutoGPTQ nn_modules/qlinear QuantLinear.pack (bits 2/4/8)
    scales = scale.t().contiguous()  # [groups, out]
    zeros = zero.t().contiguous()
    scale_zeros = zeros * scales
    scales16 = scales.clone().half()
    cols = Q.shape[1]
    intweight = torch.stack([torch.round((Q[:, i] + scale_zeros[g_idx[i]]) / scales16[g_idx[i]].to(Q.dtype))
                             for i in range(cols)], dim=1).to(torch.int64)  # [out, in]
    per = 32 // bits
    iw = intweight.t().contiguous()  # [in, out]
    qweight = torch.zeros(iw.shape[0] // per, iw.shape[1], dtype=torch.int64)
    for j in range(per):
        qweight |= iw[j::per] << (bits * j)
    z = (zeros - 1).to(torch.int64)  # v1
    qzeros = torch.zeros(z.shape[0], z.shape[1] // per, dtype=torch.int64)
    for j in range(per):
        qzeros |= z[:, j::per] << (bits * j)
    as_i32 = lambda t: (t & 0xFFFFFFFF).to(torch.int64).apply_(lambda v: v - (1 << 32) if v >= (1 << 31) else v).to(torch.int32)
    return as_i32(qweight), as_i32(qzeros), scales16, intweight


torch.manual_seed(0)
tensors, meta = {}, {}
OUT, IN, N = 32, 288, 96
Z = torch.randn(N, IN, dtype=torch.float64)
M = torch.eye(IN, dtype=torch.float64) + 0.3 * torch.randn(IN, IN, dtype=torch.float64) / math.sqrt(IN)
X = Z @ M * torch.linspace(0.2, 3.0, IN, dtype=torch.float64)  # correlated, uneven scales
X[:, 7] = 0  # a dead input
nsamples = 4  # X is 4 windows of 24 tokens: optimum's add_batch counts windows
H = (2 * X.t() @ X / nsamples).float().double()  # stored as f32: the reference takes those values
W = (torch.randn(OUT, IN, dtype=torch.float64) * 0.05).float()
W[3, :] = 0  # an all-zero row (find_params' xmin = -1, xmax = 1)
W[5, 128:256] = W[5, 128:256].abs()  # a group with no negative value (xmin stays 0)
tensors["W"] = W.contiguous()
tensors["H"] = H.float().contiguous()
for name, bits, gs, damp in (("b4g128", 4, 128, 0.1), ("b4g32", 4, 32, 0.1), ("b8g64", 8, 64, 0.1),
                             ("b2g128", 2, 128, 0.01)):
    Q, codes, scale, zero, g_idx = fasterquant(W.double(), H, bits, gs, damp)
    qweight, qzeros, scales16, intweight = pack(Q, scale, zero, g_idx, bits)
    assert torch.equal(intweight, codes), name + ": the packing's recomputed codes differ from fasterquant's"
    Q32, codes32, *_ = fasterquant(W.float(), H.float(), bits, gs, damp, dtype=torch.float32)
    diff = (codes32 != codes).double().mean().item()
    print(f"{name}: f32 reference rounds {100 * diff:.3f}% of the codes differently from f64")
    err = lambda Wq: ((X @ (Wq.double() - W.double()).t()) ** 2).sum().item()
    qr, cr, *_ = fasterquant(W.double(), torch.eye(IN, dtype=torch.float64), bits, gs, 0.0)
    print(f"{name}: output error GPTQ {err(Q):.4f}, round-to-nearest {err(qr):.4f}")
    tensors[name + ".qweight"] = qweight
    tensors[name + ".qzeros"] = qzeros
    tensors[name + ".scales"] = scales16.contiguous()
    tensors[name + ".g_idx"] = g_idx
    if name == "b4g128":
        tensors[name + ".weight"] = Q.float().contiguous()
    meta[name] = f"bits={bits} group_size={gs} damp_percent={damp} f32_code_diff={diff:.5f}"
out.parent.mkdir(parents=True, exist_ok=True)
save_file(tensors, str(out), metadata=meta)
print("wrote", out)
