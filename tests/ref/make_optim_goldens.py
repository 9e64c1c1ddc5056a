"""torch.optim.AdamW / SGD trajectories and transformers' LR schedules ->
tests/golden/optim/{optim.safetensors, schedules.json}."""
import json, pathlib
import torch
from safetensors.torch import save_file
from transformers import get_scheduler

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "optim"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)
p0 = torch.randn(7, 5, generator=g)
grads = [torch.randn(7, 5, generator=g) for _ in range(5)]
gold = {"p0": p0}
for name, ctor in [("adamw", lambda p: torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1)),
                   ("sgd", lambda p: torch.optim.SGD([p], lr=1e-1, momentum=0.9, weight_decay=0.01))]:
    p = torch.nn.Parameter(p0.clone())
    opt = ctor(p)
    for i, gr in enumerate(grads):
        p.grad = gr.clone()
        opt.step()
        gold[f"{name}.p{i + 1}"] = p.detach().clone()
for i, gr in enumerate(grads):
    gold[f"grad{i + 1}"] = gr
save_file(gold, out / "optim.safetensors")

sched = {}
dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
cases = {"linear": {}, "cosine": {}, "cosine_with_restarts": {"num_cycles": 2}, "polynomial": {"power": 2.0, "lr_end": 0.1},
         "constant": {}, "constant_with_warmup": {}, "inverse_sqrt": {},
         "warmup_stable_decay": {"num_decay_steps": 10, "min_lr_ratio": 0.1}}
for name, kw in cases.items():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = get_scheduler(name, opt, num_warmup_steps=5, num_training_steps=40, scheduler_specific_kwargs=kw)
    lrs = []
    for step in range(45):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    sched[name] = {"kwargs": kw, "lrs": lrs}
(out / "schedules.json").write_text(json.dumps(sched))
print("wrote", out)
