"""Tiny random checkpoints of each decoder architecture lfl builds, saved as HF
folders, with transformers' logits, loss and parameter gradients on a fixed
batch -> tests/golden/models/<name>/{config.json, model.safetensors, golden.safetensors}.
Run with the venv python from tests/ref/venv.sh."""
import json, pathlib, shutil
import torch
import transformers as tf
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "golden" / "models"
V, H, I, L, NH, NKV = 64, 32, 48, 2, 4, 2
common = dict(vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L,
              num_attention_heads=NH, num_key_value_heads=NKV, max_position_embeddings=64,
              rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)

CASES = {
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(rope_theta=10000.0)),
    "llama_tied_llama3rope": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(
        tie_word_embeddings=True, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=16))),
    "llama_linear_rope": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(rope_scaling=dict(rope_type="linear", factor=2.0))),
    "llama_yarn_rope": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(
        rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=16))),
    "llama_bias": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(attention_bias=True, mlp_bias=True)),
    "mistral_window": (tf.MistralConfig, tf.MistralForCausalLM, dict(sliding_window=4, head_dim=8)),
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, dict(tie_word_embeddings=False)),
    "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM, dict(head_dim=8, tie_word_embeddings=True)),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, dict(head_dim=8, hidden_activation="gelu_pytorch_tanh")),
    "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM, dict(
        head_dim=8, sliding_window=4, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
        query_pre_attn_scalar=8, hidden_activation="gelu_pytorch_tanh")),
    "phi3": (tf.Phi3Config, tf.Phi3ForCausalLM, dict(pad_token_id=0)),
}


def build(name, cfg_cls, model_cls, extra):
    torch.manual_seed(1234)
    kw = dict(common)
    kw.update(extra)
    cfg = cfg_cls(**kw)
    if hasattr(cfg, "_attn_implementation"):
        cfg._attn_implementation = "eager"
    model = model_cls(cfg).float().eval()
    # larger than default init so the goldens exercise every term
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def main():
    g = torch.Generator().manual_seed(7)
    B, T = 2, 12
    ids = torch.randint(3, V, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100            # a masked prompt
    labels[1, -2:] = -100
    for name, (cfg_cls, model_cls, extra) in CASES.items():
        model = build(name, cfg_cls, model_cls, extra)
        d = OUT / name
        if d.exists():
            shutil.rmtree(d)
        model.save_pretrained(d, safe_serialization=True)
        for junk in ("generation_config.json",):
            (d / junk).unlink(missing_ok=True)
        model.zero_grad()
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
                "loss": out.loss.detach().reshape(1)}
        for pname, p in model.named_parameters():
            if p.grad is not None:
                gold["grad." + pname] = p.grad.detach().contiguous()
        save_file(gold, d / "golden.safetensors")
        print(name, "loss", float(out.loss), "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
