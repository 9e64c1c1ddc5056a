"""Writes tests/golden/loss/sftloss.safetensors with LlamaFactory 0.9.5's own
SFT loss variants (llamafactory.train.trainer_utils.dft_loss_func and
eaft_loss_func, asft_loss_func: what use_dft_loss / use_eaft_loss + eaft_alpha /
use_asft_loss + asft_alpha select), in f32:
  fixed  logits = hidden @ w.T on fixed hidden [2, 7, 16], w [37, 16] and
         unshifted labels [2, 7] (the functions pad and shift them; one row
         has no label): the loss with num_items_in_batch = None (mean over the
         labelled tokens) and = their count, and d/dhidden, d/dw; the plain
         cross-entropy (transformers' ForCausalLMLoss) for contrast; ASFT
         (alpha 0.1 and 0.5) against reference logits ref_hidden [2, 7, 12] @
         ref_w [37, 12]
  model  the tiny golden llama (tests/golden/models/llama) on fixed ids
         [2, 12] with the first 4 labels of each row masked: each variant's
         loss of the model's logits and the gradient of lm_head.weight and
         model.layers.0.self_attn.q_proj.weight; ASFT (alpha 0.1) with the
         reference = the same llama with lm_head.weight and layer 0's q_proj
         weight scaled by 1.5
Keys: <case>.<variant>.{loss,dhidden,dw} / model.<variant>.{loss,d_lm_head,d_q_proj},
variants ce, dft, eaft1 (eaft_alpha 1.0), eaft05 (eaft_alpha 0.5), asft01 and
asft05 (asft_alpha 0.1, 0.5; fixed), asft01 (model).
Run: $(bash tests/ref/lf_venv.sh) tests/ref/make_sftloss_goldens.py
"""
import pathlib
import torch
import torch.nn.functional as F
import transformers as tf
from safetensors.torch import save_file
from llamafactory.train.trainer_utils import asft_loss_func, dft_loss_func, eaft_loss_func

root = pathlib.Path(__file__).resolve().parents[1]
out = root / "golden" / "loss"
MODEL = root / "golden" / "models" / "llama"
g = torch.Generator().manual_seed(4321)


def ce_func(outputs, labels, num_items_in_batch=None):
    logits = outputs["logits"].float()
    lab = F.pad(labels, (0, 1), value=-100)[..., 1:].reshape(-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab, ignore_index=-100)


VARIANTS = {
    "ce": ce_func,
    "dft": dft_loss_func,
    "eaft1": lambda o, l, n=None: eaft_loss_func(o, l, n, 1.0),
    "eaft05": lambda o, l, n=None: eaft_loss_func(o, l, n, 0.5),
}

tensors, meta = {}, {"note": "LlamaFactory 0.9.5 dft_loss_func / eaft_loss_func, f32", "chunk": "8"}

# fixed logits through hidden @ w.T (V = 37 >= EAFT's top-20, not a multiple of the chunk 8)
hidden = torch.randn(2, 7, 16, generator=g)
hidden[1, 2] *= 3  # a peaked row: low entropy, probability near 1
w = torch.randn(37, 16, generator=g) * 0.7
labels = torch.randint(0, 37, (2, 7), generator=g)
labels[0, :3] = -100  # a prompt
labels[1, 4] = -100
tensors["fixed.hidden"], tensors["fixed.w"], tensors["fixed.labels"] = hidden, w, labels
n_items = int((F.pad(labels, (0, 1), value=-100)[..., 1:] != -100).sum())
for name, fn in VARIANTS.items():
    for nib in (None, n_items):
        h = hidden.clone().requires_grad_(True)
        ww = w.clone().requires_grad_(True)
        loss = fn({"logits": h @ ww.T}, labels, nib)
        loss.backward()
        suffix = "" if nib is None else "_nib"
        tensors[f"fixed.{name}.loss{suffix}"] = loss.detach().reshape(1).clone()
        if nib is None:
            tensors[f"fixed.{name}.dhidden"] = h.grad.clone()
            tensors[f"fixed.{name}.dw"] = ww.grad.clone()

# ASFT against fixed reference logits (no num_items_in_batch: LlamaFactory's ASFT passes none)
ref_hidden = torch.randn(2, 7, 12, generator=g)
ref_w = torch.randn(37, 12, generator=g) * 0.7
tensors["fixed.ref_hidden"], tensors["fixed.ref_w"] = ref_hidden, ref_w
for name, alpha in (("asft01", 0.1), ("asft05", 0.5)):
    h = hidden.clone().requires_grad_(True)
    ww = w.clone().requires_grad_(True)
    loss = asft_loss_func({"logits": h @ ww.T}, labels, ref_hidden @ ref_w.T, asft_alpha=alpha)
    loss.backward()
    tensors[f"fixed.{name}.loss"] = loss.detach().reshape(1).clone()
    tensors[f"fixed.{name}.dhidden"] = h.grad.clone()
    tensors[f"fixed.{name}.dw"] = ww.grad.clone()

# the tiny llama
model = tf.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").float()
V = model.config.vocab_size
ids = torch.randint(3, V, (2, 12), generator=g)
mlab = ids.clone()
mlab[:, :4] = -100
tensors["model.ids"], tensors["model.labels"] = ids, mlab
for name, fn in VARIANTS.items():
    model.zero_grad()
    outputs = model(input_ids=ids)
    loss = fn(outputs, mlab, None)
    loss.backward()
    tensors[f"model.{name}.loss"] = loss.detach().reshape(1).clone()
    tensors[f"model.{name}.d_lm_head"] = model.lm_head.weight.grad.clone()
    tensors[f"model.{name}.d_q_proj"] = model.model.layers[0].self_attn.q_proj.weight.grad.clone()

ref = tf.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").float()
with torch.no_grad():
    ref.lm_head.weight.mul_(1.5)
    ref.model.layers[0].self_attn.q_proj.weight.mul_(1.5)
    ref_logits = ref(input_ids=ids).logits
model.zero_grad()
loss = asft_loss_func(model(input_ids=ids), mlab, ref_logits, asft_alpha=0.1)
loss.backward()
tensors["model.asft01.loss"] = loss.detach().reshape(1).clone()
tensors["model.asft01.d_lm_head"] = model.lm_head.weight.grad.clone()
tensors["model.asft01.d_q_proj"] = model.model.layers[0].self_attn.q_proj.weight.grad.clone()

out.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in tensors.items()}, out / "sftloss.safetensors", metadata=meta)
for k in sorted(tensors):
    if k.endswith(".loss") or k.endswith(".loss_nib"):
        print(k, tensors[k].item())
print(out / "sftloss.safetensors", (out / "sftloss.safetensors").stat().st_size, "bytes")
