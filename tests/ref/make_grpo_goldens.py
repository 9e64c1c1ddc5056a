"""GRPO goldens from TRL 0.24's own GRPOTrainer: the loss, its logged kl and
clip_ratio/region_mean, and the LoRA adapter gradients of _compute_loss (the
clipped per-token objective, beta * k3 KL to the adapter-disabled model, the
loss_type aggregations) on fixed prompts and completions through the tiny
llama of tests/golden/models with the seeded PEFT LoRA adapter of
make_pref_goldens.py; per-token log-probs from TRL's
_get_per_token_logps_and_entropies (logits / temperature). The advantages
follow _generate_and_score_completions' formula, written out below in torch:
(r - group mean) / (group std + 1e-4), the std unbiased. The trainer object is
built without its __init__ (no generation, no dataset).

Cases: old_per_token_logps absent (TRL's num_iterations 1: the policy's own,
detached) and given (perturbed, so some ratios leave [1 - eps, 1 + eps] and
clipping acts), for loss_type dapo (TRL 0.24's default), grpo, bnpo, dr_grpo.

Writes tests/golden/grpo/grpo.json and grpo.safetensors (init.<peft key>,
<case>.grad.<peft key>). Run from the repo root with the python printed by
`bash tests/ref/lf_venv.sh`."""
import json, pathlib, sys, types
from collections import defaultdict
import torch
from safetensors.torch import save_file
from accelerate import Accelerator
from peft import get_peft_model_state_dict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
# first: it imports llamafactory's trainers before trl's (see its note on trl's mergekit check)
from make_pref_goldens import policy, grads_of, TARGETS  # noqa: E402
from trl import GRPOTrainer  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "grpo"
G, P, TEMP, MAXC = 3, 5, 0.9, 6
CASES = [
    ("dapo", dict(loss_type="dapo", beta=0.04, epsilon=0.2, old=False)),
    ("dapo_clip", dict(loss_type="dapo", beta=0.1, epsilon=0.2, old=True)),
    ("grpo_clip", dict(loss_type="grpo", beta=0.1, epsilon=0.2, old=True)),
    ("bnpo_clip", dict(loss_type="bnpo", beta=0.0, epsilon=0.3, old=True)),
    ("dr_grpo_clip", dict(loss_type="dr_grpo", beta=0.05, epsilon=0.2, old=True)),
]


def data():
    g = torch.Generator().manual_seed(13)
    prompts = [torch.randint(3, 64, (P,), generator=g).tolist() for _ in range(2)]
    lens = [4, 2, 6, 3, 5, 1]
    comps = [torch.randint(3, 64, (n,), generator=g).tolist() for n in lens]
    rewards = [1.0, 0.0, 0.5, 0.25, 1.5, 1.0]
    return prompts, comps, rewards


def advantages(rewards):
    r = torch.tensor(rewards, dtype=torch.float32)
    mean = r.view(-1, G).mean(dim=1).repeat_interleave(G)
    std = r.view(-1, G).std(dim=1).repeat_interleave(G)
    return (r - mean) / (std + 1e-4)


def trainer(model, c):
    t = object.__new__(GRPOTrainer)
    t.temperature, t.model_kwarg_keys, t.top_entropy_quantile = TEMP, set(), 1.0
    t.beta, t.epsilon_low, t.epsilon_high = c["beta"], c["epsilon"], c["epsilon"]
    t.importance_sampling_level, t.args, t.use_vllm = "token", types.SimpleNamespace(delta=None, report_to=[]), False
    t.loss_type, t.current_gradient_accumulation_steps, t.max_completion_length = c["loss_type"], 1, MAXC
    t.accelerator, t.model = Accelerator(cpu=True), model
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    return t


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    prompts, comps, rewards = data()
    model = policy()
    tensors = {"init." + k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    B = len(comps)
    prompt_ids = torch.tensor([prompts[b // G] for b in range(B)])
    C = max(len(c) for c in comps)
    completion_ids = torch.zeros((B, C), dtype=torch.long)
    completion_mask = torch.zeros((B, C), dtype=torch.long)
    for b, c in enumerate(comps):
        completion_ids[b, :len(c)] = torch.tensor(c)
        completion_mask[b, :len(c)] = 1
    adv = advantages(rewards)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": adv, "num_items_in_batch": completion_mask.sum()}
    ids, mask = torch.cat([prompt_ids, completion_ids], 1), torch.cat([torch.ones_like(prompt_ids), completion_mask], 1)
    t0 = trainer(model, CASES[0][1])
    with torch.no_grad():
        logps, _ = t0._get_per_token_logps_and_entropies(model, ids, mask, C)
        with model.disable_adapter():
            ref, _ = t0._get_per_token_logps_and_entropies(model, ids, mask, C)
    g = torch.Generator().manual_seed(21)
    old = logps + torch.randn(logps.shape, generator=g) * 0.3  # ratios exp(logp - old) spread around 1
    cases = []
    for name, c in CASES:
        model.zero_grad(set_to_none=True)
        model.train()
        t = trainer(model, c)
        inp = dict(inputs)
        if c["beta"] != 0:
            inp["ref_per_token_logps"] = ref
        if c["old"]:
            inp["old_per_token_logps"] = old
        loss = GRPOTrainer._compute_loss(t, model, inp)
        loss.backward()
        m = {k: v[0] for k, v in t._metrics["train"].items() if k in ("kl", "clip_ratio/region_mean")}
        cases.append({"name": name, "args": {k: v for k, v in c.items()}, "loss": float(loss), "metrics": m})
        tensors.update(grads_of(model, name))
        print(name, f"{float(loss):.6f}", m)
    doc = {"source": "trl 0.24 GRPOTrainer._compute_loss / _get_per_token_logps_and_entropies, peft; "
                     "tests/ref/make_grpo_goldens.py",
           "model": "tests/golden/models/llama", "lora": {"r": 4, "alpha": 8, "target": TARGETS},
           "num_generations": G, "temperature": TEMP, "max_completion_length": MAXC,
           "prompts": prompts, "completions": comps, "rewards": rewards, "advantages": adv.tolist(),
           "policy_logps": [logps[b, :len(c)].tolist() for b, c in enumerate(comps)],
           "reference_logps": [ref[b, :len(c)].tolist() for b, c in enumerate(comps)],
           "old_logps": [old[b, :len(c)].tolist() for b, c in enumerate(comps)], "cases": cases}
    (OUT / "grpo.json").write_text(json.dumps(doc, indent=1))
    save_file(tensors, OUT / "grpo.safetensors")


if __name__ == "__main__":
    main()
