"""Mixture-of-depths goldens: the PyPI package mixture-of-depth 1.2.0 (module
MoD), which LlamaFactory 0.9.5 calls for `mixture_of_depths: convert`
(apply_mod_to_hf) and `load` (AutoMoDModelForCausalLM.from_pretrained), on a
tiny random llama (4 layers, so layers 1 and 3 are routed).

Writes tests/golden/mod/:
  llama_plain/        the llama before conversion (save_pretrained)
  llama_mod/          the converted model as MoD saves it (config.json with
                      architectures LlamaMoDForCausalLM; block. / router names)
  mod_cases.safetensors
    eval.input_ids [1, 24], eval.logits, eval.sel.<layer>: the eval-mode
        forward (capacity 0.125: k = 3, two tokens above the 3rd score)
        and each routed layer's selection mask
    batch.input_ids [2, 16], batch.logits: eval mode, two rows (position_ids
        given: MoD indexes them per row and fails on the [1, s] default;
        use_cache False: with a cache MoD's per-row block calls append row 2's
        keys to row 1's in the one DynamicCache, so row 2 attends to row 1's
        tokens; LlamaFactory trains without the cache)
  Every forward gets an attention_mask of ones, as LlamaFactory's collator
  gives one: without it transformers 4.41's eager mask is [T, T + 1] wide,
  which MoD's per-row slicing of the mask fails on.
    train1.logits, train1.loss, train1.grad.<param>: the first train-mode
        forward (training_step 1: capacity 1.0, k = s, all but the lowest
        score routed) and the loss's gradient
    train2.*: the second train-mode forward on the same weights
        (training_step 2: capacity 0.5625, k = 13) and its gradient
    lfl_saved.logits: the eval-mode logits (eval.input_ids) of the model lfl
        wrote to tests/golden/mod/lfl_saved/ as AutoMoDModelForCausalLM
        reads it (only when that folder exists: write it with
        ./build/lfl tests/ref/lfl_save_mod.lua, then rerun)
    min_gap: the smallest distance of a router score to its threshold over
        all cases (a selection that lfl's float sums could flip would be
        closer than lfl's logit tolerance could hide)

Run from the repo root with the python of `bash tests/ref/mod_venv.sh`
(transformers 4.41.2, which MoD 1.2.0 needs; eager attention, float32, CPU)."""
import pathlib
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.torch import save_file
import MoD
from MoD import apply_mod_to_hf, AutoMoDModelForCausalLM

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "mod"
OUT.mkdir(parents=True, exist_ok=True)

torch.manual_seed(1234)
cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  architectures=["LlamaForCausalLM"], attn_implementation="eager")
cfg._attn_implementation = "eager"
plain = LlamaForCausalLM(cfg).float()
# larger weights than initializer_range 0.02 so the layers change the logits visibly
with torch.no_grad():
    for n, p in plain.named_parameters():
        if p.dim() == 2:
            p.normal_(0, 0.15)
plain.save_pretrained(OUT / "llama_plain", safe_serialization=True)

model = apply_mod_to_hf(plain)
# the routers as nn.Linear initialised them (torch's default), then scaled so
# the scores spread (their products with the block output stay O(1))
with torch.no_grad():
    for i in (1, 3):
        model.model.layers[i].router.weight_predictor.weight.mul_(8.0)
model.save_pretrained(OUT / "llama_mod", safe_serialization=True)

# `load` as LlamaFactory calls it reads back what save_pretrained wrote
back = AutoMoDModelForCausalLM.from_pretrained(str(OUT / "llama_mod"), attn_implementation="eager")
assert type(back).__name__ == "LlamaMoDForCausalLM", type(back).__name__

out = {}
gaps = []
sels = {}


def hook(i):
    def f(mod, args, kwargs, output):
        x = args[0]
        w = mod.router(x)
        s = x.shape[1]
        k = max(1, int(mod.capacity * s))
        thr = torch.topk(w, k, dim=1, sorted=True).values[:, -1:]
        sel = w > thr if k > 1 else w >= thr
        sels[i] = sel
        d = (w - thr).abs()
        d = d[d > 0]
        if d.numel():
            gaps.append(d.min().item())
    return f


for i in (1, 3):
    model.model.layers[i].register_forward_hook(hook(i), with_kwargs=True)

g = torch.Generator().manual_seed(7)
ids = torch.randint(3, 64, (1, 24), generator=g)
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=torch.arange(24).view(1, 24)).logits
out["eval.input_ids"] = ids
out["eval.logits"] = logits
for i in (1, 3):
    out[f"eval.sel.{i}"] = sels[i].to(torch.int64)
    assert sels[i].sum().item() == 2, sels[i].sum()

bids = torch.randint(3, 64, (2, 16), generator=g)
with torch.no_grad():
    out["batch.logits"] = model(input_ids=bids, attention_mask=torch.ones_like(bids),
                                position_ids=torch.arange(16).expand(2, 16), use_cache=False).logits
out["batch.input_ids"] = bids

# the logits of the eval case must differ from the plain llama's (the routing does something)
model.train()
for step in (1, 2):
    model.zero_grad()
    o = model(input_ids=ids, labels=ids, attention_mask=torch.ones_like(ids),
              position_ids=torch.arange(24).view(1, 24))
    o.loss.backward()
    cap = model.model.layers[1].capacity
    assert abs(cap - (0.125 + 0.875 / step)) < 1e-12, cap
    out[f"train{step}.logits"] = o.logits.detach()
    out[f"train{step}.loss"] = o.loss.detach().reshape(1)
    for n, p in model.named_parameters():
        out[f"train{step}.grad.{n}"] = p.grad.detach().clone()
    for i in (1, 3):
        out[f"train{step}.sel.{i}"] = sels[i].to(torch.int64)

saved = OUT / "lfl_saved"
if (saved / "config.json").exists():
    theirs = AutoMoDModelForCausalLM.from_pretrained(str(saved), attn_implementation="eager")
    assert type(theirs).__name__ == "LlamaMoDForCausalLM", type(theirs).__name__
    theirs.eval()
    for i in (1, 3):
        theirs.model.layers[i].register_forward_hook(hook(i), with_kwargs=True)
    with torch.no_grad():
        out["lfl_saved.logits"] = theirs(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         position_ids=torch.arange(24).view(1, 24)).logits
    print("read", saved, "as", type(theirs).__name__)

out["min_gap"] = torch.tensor([min(gaps)])
print("min router gap to threshold", min(gaps), "MoD", MoD.__file__)
save_file({k: v.contiguous() for k, v in out.items()}, OUT / "mod_cases.safetensors")
