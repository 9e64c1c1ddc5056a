"""PEFT conformance goldens: LoRA, rsLoRA, DoRA, LoRA+, full and freeze training
steps with torch.optim.AdamW on the tiny llama / qwen2 checkpoints of
tests/golden/models, plus adapters saved by PEFT (loaded by lfl) and adapters
saved by lfl (loaded here) with PEFT's logits.

Initial adapter values are set here from a seeded generator and saved to the
golden, so lfl starts from exactly the same adapter without RNG parity.

Writes tests/golden/peft/:
  <model>_<method>.safetensors   input_ids, labels, losses [6] (the loss before
      steps 1..5 and after step 5), init.<key> (LoRA methods), step1.<key>,
      step5.<key> (the trainable weights after steps 1 and 5; PEFT key names for
      LoRA methods, HF names for full/freeze)
  py_adapter_<model>_<method>/   an adapter written by PEFT's save_pretrained
  py_adapters.safetensors        <dir>.logits: logits with that adapter applied
  lfl_adapters.safetensors       <dir>.logits: PEFT's logits for the adapters
      in lfl_adapter_*/ (written by ./build/lfl tests/ref/lfl_save_adapter.lua)

Run with the venv python from `bash tests/ref/venv.sh peft`, from the repo root,
after building ./build/lfl."""
import json, pathlib, re, shutil, subprocess
import torch
import transformers as tf
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from peft.optimizers import create_loraplus_optimizer
from safetensors.torch import save_file

REPO = pathlib.Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "golden" / "models"
OUT = REPO / "tests" / "golden" / "peft"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.01
STEPS = 5
LORAPLUS_RATIO = 16.0
METHODS = {
    "lora": dict(),
    "rslora": dict(use_rslora=True),
    "dora": dict(use_dora=True),
    "loraplus": dict(),
    "full": None,
    "freeze": None,
}
# adapters written with save_pretrained after the 5 steps (lfl must load them)
PY_ADAPTERS = [("llama", "lora"), ("qwen2", "dora"), ("llama", "rslora")]


def base(name):
    m = tf.AutoModelForCausalLM.from_pretrained(MODELS / name, torch_dtype=torch.float32,
                                                attn_implementation="eager")
    return m.float()


def batch():
    g = torch.Generator().manual_seed(11)
    B, T = 2, 10
    ids = torch.randint(3, 64, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    labels[1, -3:] = -100
    return ids, labels


def set_adapter_values(model, seed):
    """A ~ U(+-1/sqrt(in)), B ~ N(0, 0.05): B non-zero so step 1 moves A too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".lora_A." in name:
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            elif ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def trainable_state(model, method):
    if METHODS[method] is None:
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def run(model_name, method):
    torch.manual_seed(0)
    model = base(model_name)
    kw = METHODS[method]
    if kw is not None:
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM", **kw)
        model = get_peft_model(model, cfg)
        set_adapter_values(model, 100 + len(method))
    elif method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:  # freeze: the last layer trains (LlamaFactory freeze_trainable_layers=1, modules all)
        last = model.config.num_hidden_layers - 1
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith(f"model.layers.{last}."))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if method == "loraplus":
        opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=LORAPLUS_RATIO,
                                        loraplus_weight_decay=WD, betas=BETAS, eps=EPS)
    elif kw is None:
        # the HF Trainer's groups: no decay on biases and norm weights
        nodecay = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": [p for n, p in named if not nodecay.search(n)], "weight_decay": WD},
                                 {"params": [p for n, p in named if nodecay.search(n)], "weight_decay": 0.0}],
                                lr=LR, betas=BETAS, eps=EPS)
    else:
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    ids, labels = batch()
    gold = {"input_ids": ids, "labels": labels}
    if kw is not None:
        for k, v in trainable_state(model, method).items():
            gold["init." + k] = v
    losses = []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if step in (1, STEPS):
            for k, v in trainable_state(model, method).items():
                gold[f"step{step}.{k}"] = v
    with torch.no_grad():
        losses.append(float(model(input_ids=ids, labels=labels).loss))
    gold["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file({k: v.contiguous() for k, v in gold.items()}, OUT / f"{model_name}_{method}.safetensors")
    print(model_name, method, " ".join(f"{x:.6f}" for x in losses))
    return model


def logits_with_adapter(model_name, adapter_dir, ids):
    model = PeftModel.from_pretrained(base(model_name), adapter_dir).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.detach().contiguous()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ids, _ = batch()
    py = {}
    for model_name in ("llama", "qwen2"):
        for method in METHODS:
            model = run(model_name, method)
            if (model_name, method) in PY_ADAPTERS:
                d = OUT / f"py_adapter_{model_name}_{method}"
                if d.exists():
                    shutil.rmtree(d)
                model.save_pretrained(d)
                (d / "README.md").unlink(missing_ok=True)
                cfg = json.loads((d / "adapter_config.json").read_text())
                cfg["base_model_name_or_path"] = f"tests/golden/models/{model_name}"  # not this machine's path
                (d / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
                py[d.name + ".logits"] = logits_with_adapter(model_name, d, ids)
    save_file(py, OUT / "py_adapters.safetensors")

    # the other direction: adapters written by lfl, applied by PEFT
    subprocess.run([str(REPO / "build" / "lfl"), str(REPO / "tests" / "ref" / "lfl_save_adapter.lua")],
                   check=True, cwd=REPO)
    lf = {}
    for d in sorted(OUT.glob("lfl_adapter_*")):
        model_name = d.name.split("_")[2]
        lf[d.name + ".logits"] = logits_with_adapter(model_name, d, ids)
        print("peft logits for", d.name)
    save_file(lf, OUT / "lfl_adapters.safetensors")


if __name__ == "__main__":
    main()
