"""Goldens for `use_apollo: true` -> tests/golden/methods/apollo.safetensors:
apollo_torch.APOLLOAdamW 1.0.3 (the optimizer LlamaFactory 0.9.5 builds for
use_apollo) with an APOLLO group (rank 3, projection refreshed every 2 steps,
scale 4, random projection, "std") over a tall and a wide weight and a plain
AdamW group over a vector, weight decay 0.1, 5 steps on fixed gradients; once with
channel and once with tensor scaling. The random projection matrices the
reference drew (torch's generator) are stored per refresh, so lfl's test can use
the same ones. Run: $(bash tests/ref/lf_venv.sh | tail -1) tests/ref/make_apollo_goldens.py"""
import pathlib
import torch
from safetensors.torch import save_file
from apollo_torch import APOLLOAdamW

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "methods"
out.mkdir(parents=True, exist_ok=True)
gold = {}
for scale_type in ("channel", "tensor"):
    g = torch.Generator().manual_seed(1)
    shapes = {"tall": (12, 8), "wide": (6, 10), "vec": (8,)}
    ps = {n: torch.nn.Parameter(torch.randn(*s, generator=g)) for n, s in shapes.items()}
    groups = [dict(params=[ps["vec"]], weight_decay=0.0),
              dict(params=[ps["tall"], ps["wide"]], weight_decay=0.1, rank=3, proj="random", proj_type="std",
                   update_proj_gap=2, scale=4.0, scale_type=scale_type)]
    opt = APOLLOAdamW(groups, lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    pre = f"apollo.{scale_type}."
    for n, p in ps.items():
        gold[pre + n + ".p0"] = p.detach().clone()
    refresh = {"tall": 0, "wide": 0}
    last = {"tall": None, "wide": None}
    for step in range(1, 6):
        for n, p in ps.items():
            p.grad = torch.randn(*shapes[n], generator=g)
            gold[pre + n + f".grad{step}"] = p.grad.clone()
        opt.step()
        for n, p in ps.items():
            gold[pre + n + f".p{step}"] = p.detach().clone()
        for n in ("tall", "wide"):
            m = opt.state[ps[n]]["projector"].ortho_matrix
            if last[n] is None or not torch.equal(m, last[n]):
                refresh[n] += 1
                gold[pre + n + f".proj{refresh[n]}"] = m.clone()
                last[n] = m.clone()
save_file({k: v.contiguous() for k, v in gold.items()}, out / "apollo.safetensors")
print("wrote", out / "apollo.safetensors", sum(v.numel() * v.element_size() for v in gold.values()), "bytes")
