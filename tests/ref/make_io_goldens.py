"""Writes tests/golden/io/torch_written.safetensors with the reference
`safetensors` + torch packages, and the expected values as JSON beside it."""
import json, pathlib
import torch
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "io"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)
tensors = {
    "f32": torch.randn(3, 5, generator=g),
    "bf16": torch.randn(4, 2, generator=g).to(torch.bfloat16),
    "f16": torch.randn(7, generator=g).to(torch.float16),
    "i64": torch.arange(-3, 9, dtype=torch.int64).reshape(3, 4),
    "scalar": torch.tensor(2.5, dtype=torch.float64),
    "empty": torch.zeros(0, 3),
    "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
}
save_file(tensors, out / "torch_written.safetensors", metadata={"format": "pt", "note": "golden"})
expect = {k: {"shape": list(v.shape), "values": v.double().flatten().tolist()} for k, v in tensors.items()}
(out / "torch_written.json").write_text(json.dumps(expect, indent=1))
print("wrote", out)
