"""Rows quantized by ggml itself (ggml_quantize_chunk of libggml-base, the
library llama.cpp's quantize uses, without an importance matrix) ->
tests/golden/io/ggml_quant.safetensors: the f32 rows and the Q8_0 / Q5_0 / Q4_K
bytes, which lfl.gguf.quantize must reproduce. Run with the reference venv's
python and LFL_GGML_LIB=/path/to/libggml-base.so (llama-cpp-python's build
ships one)."""
import ctypes
import os
import pathlib
import numpy as np
import torch
from safetensors.torch import save_file

lib = ctypes.CDLL(os.environ["LFL_GGML_LIB"])
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_void_p]
TYPES = {"q8_0": (8, 32, 34), "q5_0": (6, 32, 22), "q4_k": (12, 256, 144)}

rng = np.random.default_rng(17)
g = rng.standard_normal((4, 512)).astype(np.float32)
rows = np.concatenate([
    g,
    g * 0.5 + 3,              # shifted: Q4_K's min clamps to 0
    g ** 3,                   # heavy tails
    g * 1e-4,                 # subnormal f16 scales
    np.zeros((1, 512), np.float32),
    np.full((1, 512), 0.25, np.float32),
    np.round(g[:2] * 4) / 4,  # ties for the rounding rules
]).astype(np.float32)
rows = np.ascontiguousarray(rows)
out = {"x": torch.from_numpy(rows.copy())}
for name, (tid, blk, nb) in TYPES.items():
    n_rows, n_per_row = rows.shape
    dst = np.zeros(n_rows * n_per_row // blk * nb, np.uint8)
    got = lib.ggml_quantize_chunk(tid, rows.ctypes.data, dst.ctypes.data, 0, n_rows, n_per_row, None)
    assert got == dst.size, (name, got, dst.size)
    out[name] = torch.from_numpy(dst.copy())
path = pathlib.Path(__file__).resolve().parents[1] / "golden" / "io" / "ggml_quant.safetensors"
save_file(out, str(path))
print(path)
