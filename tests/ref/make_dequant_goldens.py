"""Raw ggml blocks and their dequantization by gguf-py (the reference Python
implementation used by llama.cpp's tooling) -> tests/golden/io/dequant.safetensors.
Simple types are quantized from random data; K types (gguf-py cannot quantize
them) are random bytes with sane f16 scales."""
import pathlib
import numpy as np
import torch
from gguf import quants, GGMLQuantizationType as T, GGML_QUANT_SIZES
from safetensors.torch import save_file

rng = np.random.default_rng(0)
out = {}
for t in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
    block, nbytes = GGML_QUANT_SIZES[t]
    rows, cols = 3, 512
    try:
        raw = quants.quantize(rng.standard_normal((rows, cols)).astype(np.float32), t)
    except Exception:
        nblk = rows * cols // block
        raw = rng.integers(0, 256, size=(nblk, nbytes), dtype=np.uint8)
        def put_f16(col, scale):
            raw[:, col:col + 2] = (rng.standard_normal(nblk) * scale).astype(np.float16).view(np.uint8).reshape(nblk, 2)
        if t in (T.Q4_K, T.Q5_K):
            put_f16(0, 0.05); put_f16(2, 0.05)      # d, dmin
        else:                                       # Q6_K: d at the end
            put_f16(nbytes - 2, 0.05)
        raw = raw.reshape(rows, cols // block * nbytes)
    deq = quants.dequantize(raw, t).astype(np.float32)
    out[t.name + ".raw"] = torch.from_numpy(np.ascontiguousarray(raw).reshape(-1).copy())
    out[t.name + ".f32"] = torch.from_numpy(deq.reshape(rows, cols).copy())
dst = pathlib.Path(__file__).resolve().parents[1] / "golden" / "io" / "dequant.safetensors"
save_file(out, dst)
print("wrote", dst, dst.stat().st_size, "bytes")
