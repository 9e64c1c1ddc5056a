"""Preference-training goldens from LlamaFactory's own trainers: the losses,
logged metrics and adapter (and value head) gradients of stages dpo (pref_loss
sigmoid, with dpo_label_smoothing, with pref_ftx, hinge, ipo, kto_pair, orpo,
simpo) and rm on fixed pairs, on the tiny llama checkpoint of
tests/golden/models with a PEFT LoRA adapter (r 4, every linear, seeded values).

The numbers come from llamafactory 0.9.5's CustomDPOTrainer.get_batch_loss_metrics
and PairwiseTrainer.compute_loss (with TRL 0.24 and PEFT under them) called on a
trainer object built without its __init__ (no dataset, no accelerate launch):
LlamaFactory's concatenated forward over [chosen; rejected] right-padded rows,
its get_batch_logps, its reference pass with the adapter disabled, its
odds_ratio_loss / simpo_loss and metrics. Two deviations, both named:
  - hinge and ipo: LlamaFactory 0.9.5 calls TRL 0.24's dpo_loss without its
    loss_type argument, which then computes sigmoid for every pref_loss; the
    goldens pass loss_type so TRL's hinge / ipo formulas run (what
    LlamaFactory's documentation and older TRL do).
  - kto_pair: dropped from TRL; its TRL 0.8 formula is written out below in
    torch and plugged in as dpo_loss.
logits/chosen, logits/rejected are written twice: LlamaFactory's (the mean of
the padded [n, L, V] logits, padding included, so it depends on the layout) and
TRL's (the mean over the answer tokens only), which lfl logs.

Writes tests/golden/pref/:
  pref.json            the pairs (token ids, labels), per case: the arguments,
                       loss, LlamaFactory's metrics, TRL's masked logits means,
                       policy and reference log-probs per sequence, rm scores
  pref.safetensors     init.<peft key> (the adapter's values), v_head.init.*,
                       <case>.grad.<peft key> (and <case>.grad.v_head.* for rm)

Run from the repo root with the python printed by `bash tests/ref/lf_venv.sh`."""
import functools, json, pathlib, types
import torch
import torch.nn.functional as F
import transformers as tf
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file
from accelerate import Accelerator
# llamafactory first: importing trl's trainers before it fails on trl 0.24's
# mergekit check under transformers 5 (a tuple where a bool is expected)
from llamafactory.train.dpo.trainer import CustomDPOTrainer
from llamafactory.train.rm.trainer import PairwiseTrainer
from trl import DPOTrainer, AutoModelForCausalLMWithValueHead

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "golden" / "models" / "llama"
OUT = REPO / "tests" / "golden" / "pref"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PAD = 0

# (name, stage, arguments): betas chosen so no loss sits in a flat region
CASES = [
    ("sigmoid", "dpo", dict(pref_loss="sigmoid", pref_beta=0.1)),
    ("sigmoid_smooth", "dpo", dict(pref_loss="sigmoid", pref_beta=0.5, dpo_label_smoothing=0.2)),
    ("sigmoid_ftx", "dpo", dict(pref_loss="sigmoid", pref_beta=0.3, pref_ftx=0.7)),
    ("hinge", "dpo", dict(pref_loss="hinge", pref_beta=0.5)),
    ("ipo", "dpo", dict(pref_loss="ipo", pref_beta=0.5)),
    ("kto_pair", "dpo", dict(pref_loss="kto_pair", pref_beta=0.4)),
    ("orpo", "dpo", dict(pref_loss="orpo", pref_beta=0.2)),
    ("orpo_ftx", "dpo", dict(pref_loss="orpo", pref_beta=0.1, pref_ftx=0.5)),
    ("simpo", "dpo", dict(pref_loss="simpo", pref_beta=2.0, simpo_gamma=0.5)),
    ("rm", "rm", dict()),
]


def pairs():
    """Three pairs: a shared prompt, chosen / rejected answers of other lengths;
    labels -100 on the prompt (as LlamaFactory's PairwiseDatasetProcessor)."""
    g = torch.Generator().manual_seed(5)
    out = []
    for plen, clen, rlen in [(4, 5, 3), (3, 2, 6), (6, 4, 4)]:
        p = torch.randint(3, 64, (plen,), generator=g).tolist()
        c = torch.randint(3, 64, (clen,), generator=g).tolist()
        r = torch.randint(3, 64, (rlen,), generator=g).tolist()
        out.append({"chosen_input_ids": p + c, "chosen_labels": [-100] * plen + c,
                    "rejected_input_ids": p + r, "rejected_labels": [-100] * plen + r})
    return out


def padded(rows):
    """LlamaFactory's PairwiseDataCollatorWithPadding: [chosen; rejected], right padding."""
    seqs = [(r["chosen_input_ids"], r["chosen_labels"]) for r in rows] + \
           [(r["rejected_input_ids"], r["rejected_labels"]) for r in rows]
    L = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), L), PAD, dtype=torch.long)
    lab = torch.full((len(seqs), L), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, (s, l) in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        lab[i, :len(l)] = torch.tensor(l)
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def policy(seed=7):
    torch.manual_seed(0)
    base = tf.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").float()
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".lora_A." in name:
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            elif ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)  # far enough from the base for real rewards
    return model


def kto_pair_loss(self, pc, pr, rc, rr):
    """TRL 0.8 DPOTrainer.dpo_loss, loss_type kto_pair (eqn 7 of the HALOs paper)."""
    chosen_kl = (pc - rc).mean().clamp(min=0)
    rejected_kl = (pr - rr).mean().clamp(min=0)
    chosen_logratios, rejected_logratios = pc - rc, pr - rr
    losses = torch.cat((1 - F.sigmoid(self.beta * (chosen_logratios - rejected_kl)),
                        1 - F.sigmoid(self.beta * (chosen_kl - rejected_logratios))), 0)
    return losses, self.beta * (pc - rc).detach(), self.beta * (pr - rr).detach()


def lf_dpo_trainer(args):
    """A CustomDPOTrainer with the attributes its __init__ would set from these arguments."""
    kind = args["pref_loss"]
    t = object.__new__(CustomDPOTrainer)
    t.finetuning_args = types.SimpleNamespace(use_ref_model=kind not in ("orpo", "simpo"))
    t.beta, t.loss_type = args["pref_beta"], kind
    t.ftx_gamma, t.bco_gemma = args.get("pref_ftx", 0.0), 0.0
    t.label_smoothing, t.simpo_gamma, t.ld_alpha = args.get("dpo_label_smoothing", 0.0), args.get("simpo_gamma", 0.5), None
    t.ref_model, t.reference_free, t.precompute_ref_log_probs = None, False, False
    t.f_divergence_type, t.f_divergence_params = "reverse_kl", None
    t.use_weighting, t.rpo_alpha, t.aux_loss_enabled = False, None, False
    t.is_encoder_decoder, t.label_pad_token_id, t.padding_value = False, -100, PAD
    t.accelerator = Accelerator(cpu=True)
    if kind == "kto_pair":
        t.dpo_loss = functools.partial(kto_pair_loss, t)
    else:
        t.dpo_loss = functools.partial(DPOTrainer.dpo_loss, t, loss_type=kind)
    return t


def masked_logits_means(model, batch, n):
    """TRL's logits/chosen, logits/rejected: the mean logit over the answer tokens (shifted labels)."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    mean_v = logits[:, :-1, :].mean(-1)
    mask = batch["labels"][:, 1:] != -100
    c = mean_v[:n][mask[:n]]
    r = mean_v[n:][mask[n:]]
    return float(c.mean()), float(r.mean())


def seq_logps(model, batch):
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    lab = batch["labels"][:, 1:].clone()
    mask = lab != -100
    lab[~mask] = 0
    lp = torch.gather(logits[:, :-1].log_softmax(-1), 2, lab.unsqueeze(2)).squeeze(2)
    return (lp * mask).sum(-1).tolist(), mask.sum(-1).tolist()


def grads_of(model, prefix):
    out = {}
    for name, p in model.named_parameters():
        if p.grad is not None and ".lora_" in name:
            key = name.replace(".default", "")
            out[f"{prefix}.grad.{key}"] = p.grad.detach().clone().contiguous()
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rows = pairs()
    n = len(rows)
    batch = padded(rows)
    tensors, cases = {}, []
    model = policy()
    for k, v in get_peft_model_state_dict(model).items():
        tensors["init." + k] = v.detach().clone().contiguous()
    pol_logps, counts = seq_logps(model, batch)
    with model.disable_adapter():
        ref_logps, _ = seq_logps(model, batch)
    base = tf.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").float()
    base_logps, _ = seq_logps(base, batch)
    assert max(abs(a - b) for a, b in zip(ref_logps, base_logps)) < 1e-5, "adapter-off != base"
    logits_c, logits_r = masked_logits_means(model, batch, n)

    for name, stage, args in CASES:
        model.zero_grad(set_to_none=True)
        model.train()
        case = {"name": name, "stage": stage, "args": args}
        if stage == "dpo":
            t = lf_dpo_trainer(args)
            loss, metrics = CustomDPOTrainer.get_batch_loss_metrics(t, model, {k: v.clone() for k, v in batch.items()})
            loss.backward()
            case["metrics"] = {k: float(v) for k, v in metrics.items()}
            case["trl_logits"] = {"chosen": logits_c, "rejected": logits_r}
            tensors.update(grads_of(model, name))
        else:
            vmodel = AutoModelForCausalLMWithValueHead.from_pretrained(model)
            vmodel.eval()  # no dropout: the goldens are deterministic (lfl's head drops only while training)
            g = torch.Generator().manual_seed(9)
            with torch.no_grad():
                vmodel.v_head.summary.weight.copy_(torch.randn(vmodel.v_head.summary.weight.shape, generator=g) * 0.5)
                vmodel.v_head.summary.bias.copy_(torch.randn(1, generator=g) * 0.5)
            tensors["v_head.init.weight"] = vmodel.v_head.summary.weight.detach().clone()
            tensors["v_head.init.bias"] = vmodel.v_head.summary.bias.detach().clone()
            t = object.__new__(PairwiseTrainer)
            loss, (_, chosen, rejected) = PairwiseTrainer.compute_loss(
                t, vmodel, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
                return_outputs=True)
            loss.backward()
            case["scores"] = chosen.tolist() + rejected.tolist()
            case["metrics"] = {"accuracy": float((chosen > rejected).float().mean())}
            tensors.update(grads_of(model, name))
            tensors[f"{name}.grad.v_head.summary.weight"] = vmodel.v_head.summary.weight.grad.detach().clone()
            tensors[f"{name}.grad.v_head.summary.bias"] = vmodel.v_head.summary.bias.grad.detach().clone()
        case["loss"] = float(loss)
        cases.append(case)
        print(name, f"{float(loss):.6f}", {k: round(v, 5) for k, v in case["metrics"].items()})
    doc = {"source": "llamafactory 0.9.5 CustomDPOTrainer / PairwiseTrainer, trl 0.24, peft; tests/ref/make_pref_goldens.py",
           "model": "tests/golden/models/llama", "lora": {"r": 4, "alpha": 8, "target": TARGETS},
           "pairs": rows, "policy_logps": pol_logps, "reference_logps": ref_logps, "counts": counts, "cases": cases}
    (OUT / "pref.json").write_text(json.dumps(doc, indent=1))
    save_file(tensors, OUT / "pref.safetensors")


if __name__ == "__main__":
    main()
