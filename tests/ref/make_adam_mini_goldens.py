"""Goldens for `use_adam_mini: true` -> tests/golden/methods/adam_mini.safetensors:
adam_mini.Adam_mini 1.1.1 (the package LlamaFactory 0.9.5 imports) built as
trainer_utils._create_adam_mini_optimizer builds it (dim = hidden_size, n_heads,
n_kv_heads from the config) over parameters named as a llama's (hidden 8, 2 query
heads, 1 key/value head): q/k by head, v/o/mlp/embedding/head by output row, norms
as one block, a bias by element; weight decay 0.1 (not on norms and biases);
4 steps on fixed gradients.
Run: $(bash tests/ref/lf_venv.sh | tail -1) tests/ref/make_adam_mini_goldens.py"""
import pathlib
import torch
from safetensors.torch import save_file
from adam_mini import Adam_mini

out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "methods"
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator().manual_seed(0)
gold = {}
shapes = {
    "model.embed_tokens.weight": (10, 8), "model.layers.0.self_attn.q_proj.weight": (8, 8),
    "model.layers.0.self_attn.q_proj.bias": (8,), "model.layers.0.self_attn.k_proj.weight": (4, 8),
    "model.layers.0.self_attn.v_proj.weight": (4, 8), "model.layers.0.self_attn.o_proj.weight": (8, 8),
    "model.layers.0.mlp.gate_proj.weight": (12, 8), "model.layers.0.mlp.down_proj.weight": (8, 12),
    "model.layers.0.input_layernorm.weight": (8,), "model.norm.weight": (8,), "lm_head.weight": (10, 8),
}
params = {n: torch.nn.Parameter(torch.randn(*s, generator=g)) for n, s in shapes.items()}
opt = Adam_mini(named_parameters=list(params.items()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1,
                model_sharding=False, dim=8, n_heads=2, n_kv_heads=1, verbose=False)
for n, p in params.items():
    gold[f"{n}.p0"] = p.detach().clone()
for step in range(1, 5):
    for n, p in params.items():
        p.grad = torch.randn(*shapes[n], generator=g)
        gold[f"{n}.grad{step}"] = p.grad.clone()
    opt.step()
    for n, p in params.items():
        gold[f"{n}.p{step}"] = p.detach().clone()
save_file({k: v.contiguous() for k, v in gold.items()}, out / "adam_mini.safetensors")
print("wrote", out / "adam_mini.safetensors", sum(v.numel() * v.element_size() for v in gold.values()), "bytes")
