"""Goldens for `use_muon: true` -> tests/golden/methods/muon.safetensors: LlamaFactory's
own Muon (llamafactory.third_party.muon.Muon, 0.9.5) stepped on fixed gradients, with
the parameter split of trainer_utils._create_muon_optimizer (2-D weights without
"embed"/"lm_head" in the name: Muon; the rest: its AdamW), 4 steps at lr 2e-2 and
weight decay 0.1, and one Newton-Schulz orthogonalization alone.
Run: $(bash tests/ref/lf_venv.sh | tail -1) tests/ref/make_muon_goldens.py"""
import pathlib
import torch
from safetensors.torch import save_file
from llamafactory.third_party.muon import Muon
from llamafactory.third_party.muon.muon import zeropower_via_newtonschulz5

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "methods"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)
gold = {}

# name -> shape; the names decide the split as LlamaFactory's does
shapes = {"layers.0.q_proj.weight": (12, 8), "layers.0.down_proj.weight": (6, 10), "layers.0.o_proj.weight": (9, 9),
          "embed_tokens.weight": (7, 5), "lm_head.weight": (7, 5), "layers.0.input_layernorm.weight": (8,)}
params = {n: torch.nn.Parameter(torch.randn(*s, generator=g)) for n, s in shapes.items()}
muon = [p for n, p in params.items() if p.ndim == 2 and "embed" not in n and "lm_head" not in n]
adamw = [p for n, p in params.items() if not (p.ndim == 2 and "embed" not in n and "lm_head" not in n)]
opt = Muon(lr=2e-2, wd=0.1, muon_params=muon, adamw_params=adamw, adamw_betas=(0.9, 0.999), adamw_eps=1e-8)
for n, p in params.items():
    gold[f"muon.{n}.p0"] = p.detach().clone()
for step in range(1, 5):
    for n, p in params.items():
        p.grad = torch.randn(*shapes[n], generator=g)
        gold[f"muon.{n}.grad{step}"] = p.grad.clone()
    opt.step()
    for n, p in params.items():
        gold[f"muon.{n}.p{step}"] = p.detach().clone()

G = torch.randn(24, 16, generator=g)
gold["ns.G"], gold["ns.X"] = G, zeropower_via_newtonschulz5(G, 5).float()

save_file({k: v.contiguous() for k, v in gold.items()}, out / "muon.safetensors")
print("wrote", out / "muon.safetensors", sum(v.numel() * v.element_size() for v in gold.values()), "bytes")
