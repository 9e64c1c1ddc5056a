"""KTO goldens from LlamaFactory's own trainer: the loss, logged metrics and
LoRA adapter gradients of stage kto (TRL's kto_loss with the KL estimate from
the mismatched (prompt, previous answer) pairs, kto_chosen_weight,
kto_rejected_weight, pref_ftx) on fixed unpaired examples, on the tiny llama
checkpoint of tests/golden/models with the seeded PEFT LoRA adapter of
make_pref_goldens.py (r 4, every linear).

The numbers come from llamafactory 0.9.5's CustomKTOTrainer.get_batch_loss_metrics
(its forward / concatenated_forward / compute_reference_log_probs with the
adapter disabled, and TRL 0.24's KTOTrainer.kto_loss) called on a trainer
object built without its __init__, on right-padded target rows and KL rows as
KTODataCollatorWithPadding makes them. The KL rows pair each prompt with the
previous example's answer (the last example's for the first), as
FeedbackDatasetProcessor does. logits/* are LlamaFactory's (sums over the padded
[n, L, V] logits, layout-dependent): lfl logs TRL's masked means instead, also
written here (trl_logits).

Writes tests/golden/kto/kto.json (examples, per case: arguments, loss, metrics
as LlamaFactory's log() turns them into rewards/chosen ... kl) and
kto.safetensors (init.<peft key>, <case>.grad.<peft key>).

Run from the repo root with the python printed by `bash tests/ref/lf_venv.sh`."""
import json, pathlib, sys, types
import torch
from safetensors.torch import save_file
from accelerate import Accelerator
from peft import get_peft_model_state_dict
from llamafactory.train.kto.trainer import CustomKTOTrainer
from trl import KTOTrainer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_pref_goldens import policy, seq_logps, grads_of, PAD, MODEL, TARGETS  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "kto"

CASES = [
    ("kto", dict(pref_beta=0.1, kto_chosen_weight=1.0, kto_rejected_weight=1.0, pref_ftx=0.0)),
    ("kto_weights", dict(pref_beta=0.5, kto_chosen_weight=1.3, kto_rejected_weight=0.7, pref_ftx=0.0)),
    ("kto_ftx", dict(pref_beta=0.3, kto_chosen_weight=1.0, kto_rejected_weight=1.0, pref_ftx=0.6)),
]


def examples():
    """Five unpaired examples: prompt, answer, tag; the KL row of i is prompt i
    with answer i-1 (rotated by one, as FeedbackDatasetProcessor)."""
    g = torch.Generator().manual_seed(11)
    shapes = [(4, 5, True), (3, 2, False), (6, 4, False), (2, 6, True), (5, 3, True)]
    ex = []
    for plen, alen, tag in shapes:
        ex.append({"prompt": torch.randint(3, 64, (plen,), generator=g).tolist(),
                   "answer": torch.randint(3, 64, (alen,), generator=g).tolist(), "tag": tag})
    rows = []
    for i, e in enumerate(ex):
        kl = ex[i - 1]["answer"]
        rows.append({"input_ids": e["prompt"] + e["answer"], "labels": [-100] * len(e["prompt"]) + e["answer"],
                     "kl_input_ids": e["prompt"] + kl, "kl_labels": [-100] * len(e["prompt"]) + kl,
                     "kto_tag": e["tag"]})
    return rows


def pad(seqs, fill):
    L = max(len(s) for s in seqs)
    out = torch.full((len(seqs), L), fill, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s)
    return out


def collate(rows):
    b = {}
    for pre in ("", "kl_"):
        ids = [r[pre + "input_ids"] for r in rows]
        b[pre + "input_ids"] = pad(ids, PAD)
        b[pre + "attention_mask"] = pad([[1] * len(s) for s in ids], 0)
        b[pre + "labels"] = pad([r[pre + "labels"] for r in rows], -100)
    b["kto_tags"] = torch.tensor([r["kto_tag"] for r in rows])
    return b


def lf_kto_trainer(args):
    t = object.__new__(CustomKTOTrainer)
    t.beta, t.desirable_weight, t.undesirable_weight = args["pref_beta"], args["kto_chosen_weight"], args["kto_rejected_weight"]
    t.ftx_gamma, t.calculate_KL, t.loss_type = args["pref_ftx"], True, "kto"
    t.ref_model, t.is_encoder_decoder, t.label_pad_token_id = None, False, -100
    t.accelerator = Accelerator(cpu=True)
    t.kto_loss = types.MethodType(KTOTrainer.kto_loss, t)
    return t


def lf_log(metrics):
    """CustomKTOTrainer.log on one step's stored metrics: sums / counts, margins."""
    out, m = {}, dict(metrics)
    for split in ("chosen", "rejected"):
        if f"count/{split}" in m:
            for key in ("rewards", "logps", "logits"):
                out[f"{key}/{split}"] = m.pop(f"{key}/{split}_sum") / m[f"count/{split}"]
            m.pop(f"count/{split}")
    if "rewards/chosen" in out and "rewards/rejected" in out:
        out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
    out.update(m)
    return out


def masked_logits(model, batch):
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    mean_v = logits[:, :-1, :].mean(-1)
    mask = batch["labels"][:, 1:] != -100
    tags = batch["kto_tags"]
    return {"chosen": float(mean_v[tags][mask[tags]].mean()), "rejected": float(mean_v[~tags][mask[~tags]].mean())}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rows = examples()
    batch = collate(rows)
    model = policy()
    tensors = {"init." + k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    pol, counts = seq_logps(model, batch)
    klb = {"input_ids": batch["kl_input_ids"], "attention_mask": batch["kl_attention_mask"], "labels": batch["kl_labels"]}
    pol_kl, kl_counts = seq_logps(model, klb)
    with model.disable_adapter():
        ref, _ = seq_logps(model, batch)
        ref_kl, _ = seq_logps(model, klb)
    trl_logits = masked_logits(model, batch)
    cases = []
    for name, args in CASES:
        model.zero_grad(set_to_none=True)
        model.train()
        t = lf_kto_trainer(args)
        loss, metrics = CustomKTOTrainer.get_batch_loss_metrics(t, model, {k: v.clone() for k, v in batch.items()})
        loss.backward()
        logged = lf_log({k: float(v) for k, v in metrics.items()})
        cases.append({"name": name, "args": args, "loss": float(loss), "metrics": logged})
        tensors.update(grads_of(model, name))
        print(name, f"{float(loss):.6f}", {k: round(v, 5) for k, v in logged.items()})
    doc = {"source": "llamafactory 0.9.5 CustomKTOTrainer, trl 0.24 KTOTrainer.kto_loss, peft; tests/ref/make_kto_goldens.py",
           "model": "tests/golden/models/llama", "lora": {"r": 4, "alpha": 8, "target": TARGETS},
           "rows": rows, "policy_logps": pol, "reference_logps": ref, "policy_kl_logps": pol_kl,
           "reference_kl_logps": ref_kl, "counts": counts, "kl_counts": kl_counts, "trl_logits": trl_logits,
           "cases": cases}
    (OUT / "kto.json").write_text(json.dumps(doc, indent=1))
    save_file(tensors, OUT / "kto.safetensors")


if __name__ == "__main__":
    main()
