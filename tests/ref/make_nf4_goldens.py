"""bitsandbytes' 4-bit blockwise quantization (NF4 and FP4, blocksize 64, with
and without double quantization of the absmaxes) of a random matrix and of a
real one (rows of SmolLM2-135M's layer-0 q_proj, in bf16 as LlamaFactory
loads it) -> tests/golden/quant/bnb4.safetensors. Run with the reference
venv: `$(bash tests/ref/venv.sh bitsandbytes) tests/ref/make_nf4_goldens.py`.
Keys, per matrix M (rand, real) and case C (nf4, nf4_dq, fp4, fp4_dq):
  M.input                 the matrix (f32 for rand, bf16 for real)
  M.C.packed              u8 codes, two per byte, first element in the high nibble
  M.C.absmax              f32 per 64-block (no dq) or u8 quantized absmax (dq)
  M.C.absmax2, .code2, .offset   dq: f32 per 256 absmaxes, the 8-bit map, the mean
  M.C.dequant             f32, bitsandbytes' dequantize_4bit (all rand cases, real.nf4_dq)
  rand.nf4_dq.x / .y      an input and bnb.matmul_4bit(x, W^T) in f32
and code.nf4, code.fp4 (the 16 code values as bitsandbytes indexes them)."""
import os
import pathlib
import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
out = {}
out["code.nf4"] = F.get_4bit_type("nf4", device="cpu").float().clone()
out["code.fp4"] = F.get_4bit_type("fp4", device="cpu").float().clone()

rand = torch.randn(48, 128) * 0.02
rand[3, 5] = 0.5          # outliers: blocks whose absmax is far above the rest
rand[40, 100] = -0.7
rand[7, 64:128] = 0       # an all-zero block

cache = os.environ.get("LFL_CACHE", os.path.expanduser("~/.cache/lfl"))
from gguf import GGUFReader, quants
r = GGUFReader(os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
t = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
q = quants.dequantize(t.data, t.tensor_type).reshape(576, 576)
# rows 0..31 (18432 values = 288 blocks of 64: two 256-blocks of absmaxes, the second short)
real = torch.from_numpy(np.ascontiguousarray(q[:32])).to(torch.bfloat16)

for name, A in (("rand", rand), ("real", real)):
    out[name + ".input"] = A.contiguous()
    for qt in ("nf4", "fp4"):
        for dq in (False, True):
            key = f"{name}.{qt}{'_dq' if dq else ''}"
            packed, st = F.quantize_4bit(A, blocksize=64, compress_statistics=dq, quant_type=qt)
            out[key + ".packed"] = packed.reshape(-1).contiguous()
            out[key + ".absmax"] = st.absmax.reshape(-1).contiguous()
            if dq:
                out[key + ".absmax2"] = st.state2.absmax.reshape(-1).float().contiguous()
                out[key + ".code2"] = st.state2.code.float().contiguous()
                out[key + ".offset"] = st.offset.reshape(1).float().contiguous()
            if name == "rand" or key == "real.nf4_dq":  # (the others' would only add size)
                out[key + ".dequant"] = F.dequantize_4bit(packed, st).float().reshape(A.shape).contiguous()
            if name == "rand" and qt == "nf4" and dq:
                x = torch.randn(5, 128)
                out[key + ".x"] = x
                out[key + ".y"] = bnb.matmul_4bit(x, packed.t(), quant_state=st).float().contiguous()

dst = pathlib.Path(__file__).resolve().parents[1] / "golden" / "quant" / "bnb4.safetensors"
save_file(out, dst, metadata={"bitsandbytes": bnb.__version__, "torch": torch.__version__})
print("wrote", dst, dst.stat().st_size, "bytes")
