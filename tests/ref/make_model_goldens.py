"""Tiny random checkpoints of each decoder architecture lfl builds, saved as HF
folders, with transformers' logits, loss and parameter gradients on a fixed
batch -> tests/golden/models/<name>/{config.json, model.safetensors, golden.safetensors}.

InternLM2 and Baichuan are remote code (no transformers class, no Hub here):
their goldens are layout conversions. A tiny llama's weights are packed into
InternLM2's wqkv / Baichuan's W_pack layout (packing written here, independently
of lfl's unpacking in stdlib/lfl/model/convert.lua) with a config.json as those models
ship it; lfl must load them and give the llama's logits, loss and gradients.
Baichuan2's NormHead (lm_head rows L2-normalised in the forward) is reproduced by
patching the llama's lm_head forward the way the remote code computes it.

olmo, olmo2 and starcoder2 also get model.gguf: the same weights written the
way llama.cpp's convert_hf_to_gguf.py does (tensor names from the gguf package's
own name map, OLMo's q/k rows permuted as convert permutes llama's, its
hyperparameter keys), f32. StarCoder2's GGUF carries no sliding window
(convert writes none, llama.cpp attends over everything), so its reference
logits (gguf_golden.safetensors) are the HF model's without the window; they
are checked against transformers' own GGUF reader here. qwen2_moe, qwen3_moe,
gemma3, mixtral, granite, cohere(_qknorm), glm4 and deepseek_v2(_greedy) / v3
get model.gguf from llama.cpp's converter itself (convert_gguf), with their
reference parameters and logits in gguf_golden.safetensors.

Run with the venv python from tests/ref/venv.sh; names on the command line
(re)write only those cases (default: all); "gguf:<case>" rewrites only that
case's converted GGUF (CONVERTED, convert_gguf: llama.cpp's converter class
run on the checkpoint; LLAMA_CONV names its folder)."""
import json, os, pathlib, shutil, sys
import torch
import torch.nn.functional as F
import transformers as tf
from safetensors.torch import load_file, save_file

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
    # Llama 3.1's rope scaling with enough rotary dims (head_dim 32) for several smoothed frequencies
    "llama_llama31rope": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, rope_theta=500000.0, max_position_embeddings=131072,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=8192))),
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
    # InternLM3 runs on transformers' llama (llama names, head_dim 128 in the real ones)
    "internlm3": (tf.InternLM3Config, tf.LlamaForCausalLM, dict(head_dim=16, attention_bias=True, mlp_bias=True)),
    # clip_qkv = 1 clips a good part of the q/k/v entries of this init
    "olmo": (tf.OlmoConfig, tf.OlmoForCausalLM, dict(clip_qkv=1.0, rms_norm_eps=None)),
    "olmo2": (tf.Olmo2Config, tf.Olmo2ForCausalLM, dict(rms_norm_eps=1e-6)),
    # tied by default; LayerNorm eps from norm_epsilon; every linear has a bias
    "starcoder2": (tf.Starcoder2Config, tf.Starcoder2ForCausalLM, dict(
        sliding_window=4, norm_epsilon=1e-4, rms_norm_eps=None, hidden_act="gelu_pytorch_tanh")),
    # 4 layers, sliding/full alternating (pattern 2), local rope base 10k, global 1e6 with linear scaling,
    # query_pre_attn_scalar != head_dim; q/k norms are (1 + w) RMSNorms
    "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM, dict(
        head_dim=8, num_hidden_layers=4, sliding_window=4, sliding_window_pattern=2, query_pre_attn_scalar=16,
        rope_theta=1e6, rope_local_base_freq=1e4, rope_scaling=dict(rope_type="linear", factor=2.0),
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6)),
    # Ministral 3: YaRN rotary and Llama 4's query scale past original_max_position_embeddings (4 here,
    # so the golden's 12 positions get scales 1, 1 + 0.1 log 2, 1 + 0.1 log 3)
    "ministral3": (tf.Ministral3Config, tf.Ministral3ForCausalLM, dict(
        head_dim=8, rope_parameters=dict(type="yarn", rope_theta=1e6, factor=4.0, original_max_position_embeddings=4,
                                         beta_fast=32.0, beta_slow=1.0, mscale_all_dim=1.0, mscale=1.0,
                                         llama_4_scaling_beta=0.1))),
    # granite 3.x's embedding/residual multipliers (attention_multiplier replaces 1/sqrt(head_dim));
    # logits_scaling below 1 (real ones: 8, 16) keeps this init's logits O(1), so they check something
    "granite": (tf.GraniteConfig, tf.GraniteForCausalLM, dict(
        embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.2, logits_scaling=0.25,
        tie_word_embeddings=True)),
    # Command-R: bias-free LayerNorm, parallel attention + MLP, interleaved rotary, logit_scale (real:
    # 0.0625, 0.125; larger here so this init's logits are O(1))
    "cohere": (tf.CohereConfig, tf.CohereForCausalLM, dict(logit_scale=4.0, rms_norm_eps=None,
                                                           layer_norm_eps=1e-5)),
    # Command-R+: per-head LayerNorm weights on q and k
    "cohere_qknorm": (tf.CohereConfig, tf.CohereForCausalLM, dict(logit_scale=2.0, use_qk_norm=True,
                                                                  rms_norm_eps=None, layer_norm_eps=1e-5)),
    # glm-4-9b-0414 layout: extra post norms, half the head dims rotated (interleaved), fused gate_up_proj,
    # q/k/v biases without an o_proj bias
    "glm4": (tf.Glm4Config, tf.Glm4ForCausalLM, dict(head_dim=16, attention_bias=True, partial_rotary_factor=0.5)),
}

# families whose golden also holds a PEFT LoRA step: lora.safetensors with the
# adapter's initial values (PEFT key names), the loss with it and the adapter's
# gradients; targets are the family's lora_target (recipes/models/<family>.lua)
LORA_TARGETS = {
    "gemma3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "granite": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "cohere": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "cohere_qknorm": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "glm4": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"],
}


def build(name, cfg_cls, model_cls, extra, keep_none=()):
    torch.manual_seed(1234)
    kw = dict(common)
    kw.update(extra)
    kw = {k: v for k, v in kw.items() if v is not None or k in keep_none}
    cfg = cfg_cls(**kw)
    if hasattr(cfg, "_attn_implementation"):
        cfg._attn_implementation = "eager"
    model = model_cls(cfg).float().eval()
    # larger than default init so the goldens exercise every term
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def golden(model, ids, labels):
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1)}
    for pname, p in model.named_parameters():
        if p.grad is not None:
            gold["grad." + pname] = p.grad.detach().contiguous()
    return gold, out.loss.item()


def lora_golden(name, model, ids, labels):
    """PEFT LoRA (r 4, alpha 8) on the family's targets, adapter values from a
    seeded generator (B non-zero so both A and B get gradients)."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS[name], task_type="CAUSAL_LM")
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for pname, p in sorted(pm.named_parameters()):
            if ".lora_A." in pname:
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            elif ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    gold = {"init." + k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(pm).items()}
    pm.zero_grad()
    out = pm(input_ids=ids, labels=labels)
    out.loss.backward()
    n = 0
    for pname, p in pm.named_parameters():
        if "lora_" in pname and p.grad is not None:
            key = pname.replace(".default.weight", ".weight")
            assert "init." + key in gold, key
            gold["grad." + key] = p.grad.detach().contiguous()
            n += 1
    gold["loss"] = out.loss.detach().reshape(1)
    save_file(gold, OUT / name / "lora.safetensors")
    print(name, "lora loss", out.loss.item(), n, "adapter gradients")


def gemma3_hub_config(d, ids):
    """The same model with config.json as the Hub ships Gemma 3 (transformers
    4.5x spelling: rope_theta, rope_local_base_freq, rope_scaling,
    sliding_window_pattern, no layer_types): transformers must read it to the
    same logits; lfl reads both."""
    cfg = json.loads((d / "config.json").read_text())
    rp = cfg.pop("rope_parameters")
    cfg.pop("layer_types")
    cfg["rope_theta"] = rp["full_attention"]["rope_theta"]
    cfg["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
    cfg["rope_scaling"] = {"rope_type": "linear", "factor": rp["full_attention"]["factor"]}
    cfg["sliding_window_pattern"] = 2
    hub = d / "hub"
    hub.mkdir()
    (hub / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    shutil.copy(d / "model.safetensors", hub / "model.safetensors")
    ref = load_file(d / "golden.safetensors")["logits"]
    m = tf.AutoModelForCausalLM.from_pretrained(hub, attn_implementation="eager").float().eval()
    assert m.config.layer_types == ["sliding_attention", "full_attention"] * 2, m.config.layer_types
    with torch.no_grad():
        assert torch.allclose(m(input_ids=ids).logits, ref, atol=1e-6), "the Hub spelling reads differently"
    (hub / "model.safetensors").unlink()
    (d / "hub_config.json").write_text((hub / "config.json").read_text())
    shutil.rmtree(hub)


def expert_grads(model, gold, saved, inter, names=("gate_proj", "up_proj", "down_proj"), block="mlp.experts.",
                 rename=lambda n: n):
    """The parameter gradients into gold as grad.<name>, transformers 5's fused
    experts (mlp.experts.gate_up_proj [E, 2I, H], down_proj [E, H, I]) cut into
    the Hub's per-expert tensors <block><e>.<names>.weight, the other names
    through rename; every name must be one the checkpoint saved."""
    gate, up, down = names
    for pname, p in model.named_parameters():
        if p.grad is None:
            continue
        g = p.grad.detach()
        if pname.endswith("mlp.experts.gate_up_proj"):
            pre = pname[: -len("mlp.experts.gate_up_proj")] + block
            for e in range(g.shape[0]):
                gold[f"grad.{pre}{e}.{gate}.weight"] = g[e, :inter].contiguous()
                gold[f"grad.{pre}{e}.{up}.weight"] = g[e, inter:].contiguous()
        elif pname.endswith("mlp.experts.down_proj"):
            pre = pname[: -len("mlp.experts.down_proj")] + block
            for e in range(g.shape[0]):
                gold[f"grad.{pre}{e}.{down}.weight"] = g[e].contiguous()
        else:
            gold["grad." + rename(pname)] = g.contiguous()
    for k in gold:
        if k.startswith("grad."):
            assert k[5:] in saved, k


def make_mixtral(ids, labels):
    """Mixtral: 4 experts, top-2 routing, output_router_logits with a visible
    router_aux_loss_coef, so the golden loss is the LM loss plus the coef times
    the load-balancing loss (aux_loss saved apart). transformers 5 holds the
    experts fused (mlp.experts.gate_up_proj [E, 2I, H], down_proj [E, H, I],
    router mlp.gate) and saves the Hub layout (block_sparse_moe.experts.<e>.w1/
    w3/w2, block_sparse_moe.gate): the gradients are saved under the Hub names.
    lora.safetensors: PEFT LoRA on q/k/v/o_proj (PEFT does not target the
    fused experts of transformers 5)."""
    name = "mixtral"
    model = build(name, tf.MixtralConfig, tf.MixtralForCausalLM, dict(
        num_local_experts=4, num_experts_per_tok=2, output_router_logits=True, router_aux_loss_coef=0.02))
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    assert "model.layers.0.block_sparse_moe.experts.3.w1.weight" in saved, sorted(saved)[:8]
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1), "aux_loss": out.aux_loss.detach().reshape(1)}
    expert_grads(model, gold, saved, model.config.intermediate_size, ("w1", "w3", "w2"), "block_sparse_moe.experts.",
                 lambda n: n.replace(".mlp.gate.", ".block_sparse_moe.gate."))
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", out.loss.item(), "aux", out.aux_loss.item(), "params", sum(p.numel() for p in model.parameters()))
    LORA_TARGETS[name] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    lora_golden(name, model, ids, labels)


def make_qwen_moe(ids, labels, name):
    """Qwen2-MoE (4 experts, top-2 without renormalising, a shared expert with
    its sigmoid gate, 3 layers with layer 1 dense through mlp_only_layers) and
    Qwen3-MoE (q/k norms, renormalised top-2, layer 0 dense through
    decoder_sparse_step 2), both with output_router_logits and a visible
    router_aux_loss_coef. transformers 5 holds the experts fused (mlp.experts.
    gate_up_proj [E, 2I, H], down_proj [E, H, I]) and saves the Hub layout
    (mlp.experts.<e>.gate_proj / up_proj / down_proj): gradients under the Hub
    names."""
    if name == "qwen2_moe":
        model = build(name, tf.Qwen2MoeConfig, tf.Qwen2MoeForCausalLM, dict(
            num_hidden_layers=3, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
            shared_expert_intermediate_size=40, norm_topk_prob=False, mlp_only_layers=[1],
            output_router_logits=True, router_aux_loss_coef=0.02, tie_word_embeddings=False))
    else:
        model = build(name, tf.Qwen3MoeConfig, tf.Qwen3MoeForCausalLM, dict(
            head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24, norm_topk_prob=True,
            decoder_sparse_step=2, output_router_logits=True, router_aux_loss_coef=0.02, tie_word_embeddings=False))
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    sparse = 0 if name == "qwen2_moe" else 1
    assert f"model.layers.{sparse}.mlp.experts.3.gate_proj.weight" in saved, sorted(saved)[:12]
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1), "aux_loss": out.aux_loss.detach().reshape(1)}
    expert_grads(model, gold, saved, model.config.moe_intermediate_size)
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", out.loss.item(), "aux", out.aux_loss.item(), "params", sum(p.numel() for p in model.parameters()))
    LORA_TARGETS[name] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    lora_golden(name, model, ids, labels)


def make_deepseek_v3(ids, labels, name):
    """DeepSeek-V3: multi-head latent attention (q through q_a_proj -> RMSNorm
    -> q_b_proj, or q_proj; k/v from the kv_a_proj_with_mqa latent through
    RMSNorm and kv_b_proj, one rotary key shared by the heads, v_head_dim
    different from the q/k head dim), interleaved rotary on the rope dims, YaRN
    with mscale_all_dim folded into the softmax scale; sigmoid router with
    e_score_correction_bias, group-limited top-k, renormalised and scaled by
    routed_scaling_factor; a shared expert; the first first_k_dense_replace
    layers dense. deepseek_v3: all of that; deepseek_v3_qproj: q_proj, rotary
    halves, plain rope, top-2 of 4 in one group without renormalising.
    transformers 5 holds the experts fused and saves the Hub layout
    (mlp.experts.<e>.gate_proj / up_proj / down_proj): gradients under the Hub names."""
    base = dict(num_hidden_layers=3, num_key_value_heads=NH, kv_lora_rank=12, qk_rope_head_dim=4,
                qk_nope_head_dim=6, v_head_dim=5, moe_intermediate_size=12, n_shared_experts=1,
                first_k_dense_replace=1, tie_word_embeddings=False, rms_norm_eps=1e-5)
    if name.startswith("deepseek_v2"):
        # V2: softmax router, not renormalised, times routed_scaling_factor; rotary in
        # interleaved pairs (complex form); deepseek_v2: group-limited greedy over 4 groups
        # with YaRN, deepseek_v2_greedy: plain top-2 with q_proj
        if name == "deepseek_v2":
            base.update(q_lora_rank=16, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=3,
                        topk_method="group_limited_greedy", routed_scaling_factor=1.5,
                        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                             original_max_position_embeddings=16, mscale=0.707, mscale_all_dim=0.707,
                                             beta_fast=32, beta_slow=1))
        else:
            base.update(q_lora_rank=None, n_routed_experts=4, num_experts_per_tok=2, topk_method="greedy",
                        routed_scaling_factor=1.0, n_shared_experts=2)
        model = build(name, tf.DeepseekV2Config, tf.DeepseekV2ForCausalLM, base, keep_none=("q_lora_rank",))
        assert (model.config.q_lora_rank is None) == (name != "deepseek_v2")
        return deepseek_golden(ids, labels, name, model, v3=False)
    if name == "deepseek_v3":
        base.update(q_lora_rank=16, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2,
                    norm_topk_prob=True, routed_scaling_factor=2.5, rope_interleave=True,
                    rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                         original_max_position_embeddings=16, mscale=0.707, mscale_all_dim=0.707,
                                         beta_fast=32, beta_slow=1))
    else:
        base.update(q_lora_rank=None, n_routed_experts=4, n_group=1, topk_group=1, num_experts_per_tok=2,
                    norm_topk_prob=False, routed_scaling_factor=1.5, rope_interleave=False)
    model = build(name, tf.DeepseekV3Config, tf.DeepseekV3ForCausalLM, base, keep_none=("q_lora_rank",))
    assert (model.config.q_lora_rank is None) == (name != "deepseek_v3")
    deepseek_golden(ids, labels, name, model, v3=True)


def deepseek_golden(ids, labels, name, model, v3, lora=None):
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for mname, buf in model.named_buffers():
            if mname.endswith("e_score_correction_bias"):
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.3)
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    assert "model.layers.1.mlp.experts.3.gate_proj.weight" in saved, sorted(saved)[:12]
    assert not v3 or "model.layers.1.mlp.gate.e_score_correction_bias" in saved, sorted(saved)[:12]
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1)}
    expert_grads(model, gold, saved, model.config.moe_intermediate_size)
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", out.loss.item(), "params", sum(p.numel() for p in model.parameters()))
    LORA_TARGETS[name] = lora or ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"]
    lora_golden(name, model, ids, labels)


def make_glm4_moe(ids, labels, name):
    """GLM-4.5 (glm4_moe): q/k/v biases, per-head q/k RMSNorm, rotary on the
    first half of each head's dims in halves (partial_rotary_factor 0.5);
    layer 0 dense (first_k_dense_replace 1), then DeepSeek-V3's sigmoid router
    with e_score_correction_bias, 8 experts in 4 groups (best 2 kept), top-2
    renormalised, routed_scaling_factor 1.5, one shared expert. glm4_moe_air
    (GLM-4.5-Air's switches): no q/k norm, one group, top-2 of 4 not
    renormalised, rotary on a quarter of the dims. transformers 5 saves the Hub's
    per-expert tensors: gradients under those names. lora.safetensors: PEFT's
    LoRA on q/k/v/o_proj."""
    base = dict(num_hidden_layers=3, head_dim=16, moe_intermediate_size=12, n_shared_experts=1,
                first_k_dense_replace=1, tie_word_embeddings=False, attention_bias=True, intermediate_size=40)
    if name == "glm4_moe":
        base.update(n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2, norm_topk_prob=True,
                    routed_scaling_factor=1.5, use_qk_norm=True, partial_rotary_factor=0.5)
    else:
        base.update(num_hidden_layers=2, n_routed_experts=4, n_group=1, topk_group=1, num_experts_per_tok=2,
                    norm_topk_prob=False, routed_scaling_factor=1.0, use_qk_norm=False, partial_rotary_factor=0.25)
    model = build(name, tf.Glm4MoeConfig, tf.Glm4MoeForCausalLM, base)
    assert model.config.rope_parameters["partial_rotary_factor"] == base["partial_rotary_factor"]
    # attention only, as the other MoE families: peft 0.21 turns gate/up/down_proj (short names or a regex)
    # into LoRA on the fused experts' parameters of transformers 5 and then adapts neither the dense MLP
    # nor the shared experts
    deepseek_golden(ids, labels, name, model, v3=True, lora=["q_proj", "k_proj", "v_proj", "o_proj"])


def make_vlm(ids, labels, name):
    """The text part of vision-language checkpoints (lfl trains their language
    model on text; the vision tower and projector stay as they are): a tiny
    Gemma3ForConditionalGeneration (gemma3_vlm) and Mistral3ForConditionalGeneration
    (mistral3_vlm). transformers 5 saves the Hub layout (language_model.model.*,
    vision_tower.*, multi_modal_projector.*); the golden is a text-only forward
    (logits, loss, the language model's gradients under the saved names) and
    lora.safetensors PEFT's LoRA on the language model's q/v_proj (PEFT's keys:
    base_model.model.model.language_model.layers.<i>...)."""
    torch.manual_seed(1234)
    tc = dict(common, head_dim=8)
    if name == "gemma3_vlm":
        cfg = tf.Gemma3Config(text_config=dict(tc, sliding_window=4, query_pre_attn_scalar=8, rms_norm_eps=1e-6),
                              vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                 num_attention_heads=2, image_size=28, patch_size=14),
                              mm_tokens_per_image=4, image_token_index=60, boi_token_index=61, eoi_token_index=62)
        model = tf.Gemma3ForConditionalGeneration(cfg)
    else:
        cfg = tf.Mistral3Config(text_config=dict(tc, model_type="mistral", sliding_window=None),
                                vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=28, patch_size=14, head_dim=8),
                                image_token_index=60, tie_word_embeddings=False)
        model = tf.Mistral3ForConditionalGeneration(cfg)
    model.config._attn_implementation = "eager"
    model.config.text_config._attn_implementation = "eager"
    model = model.float().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    assert "language_model.model.layers.0.self_attn.q_proj.weight" in saved, sorted(saved)[:8]
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1)}
    for pname, p in model.named_parameters():
        if p.grad is None or "language_model" not in pname and not pname.startswith("lm_head"):
            continue
        hub = pname.replace("model.language_model.", "language_model.model.")
        if hub.startswith("lm_head."):
            hub = "language_model." + hub
        assert hub in saved or hub == "language_model.lm_head.weight", hub
        gold["grad." + hub] = p.grad.detach().contiguous()
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", out.loss.item(), "tied", "language_model.lm_head.weight" not in saved)
    LORA_TARGETS[name] = r".*language_model.*\.(q_proj|v_proj)"
    lora_golden(name, model, ids, labels)


def make_modules_to_save(ids, labels):
    """PEFT's modules_to_save (LlamaFactory's additional_target) on the tied tiny
    llama (llama_tied_llama3rope): LoRA r 4 on q/v_proj with seeded values plus
    embed_tokens, lm_head and every norm (PEFT matches key.endswith("norm")) trained
    whole; PEFT copies the tied embedding and head separately. ->
    <case>/mts.safetensors: init.<key> / grad.<key> under PEFT's saved keys, loss."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    name = "llama_tied_llama3rope"
    model = build(name, *CASES[name][:2], CASES[name][2])
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                     modules_to_save=["embed_tokens", "lm_head", "norm"], task_type="CAUSAL_LM")
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for pname, p in sorted(pm.named_parameters()):
            if ".lora_A." in pname:
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            elif ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    sd = get_peft_model_state_dict(pm)
    gold = {"init." + k: v.detach().clone().contiguous() for k, v in sd.items()}
    pm.zero_grad()
    out = pm(input_ids=ids, labels=labels)
    out.loss.backward()
    n = 0
    for pname, p in pm.named_parameters():
        if p.grad is None:
            continue
        key = pname.replace(".modules_to_save.default.", ".").replace(".default.weight", ".weight")
        assert "init." + key in gold, key
        gold["grad." + key] = p.grad.detach().contiguous()
        n += 1
    gold["loss"] = out.loss.detach().reshape(1)
    save_file(gold, OUT / name / "mts.safetensors")
    print(name, "modules_to_save loss", out.loss.item(), n, "gradients", sorted(k for k in sd if "lora" not in k))


def make_llama4(ids, labels):
    """Llama 4 text (Llama4ForCausalLM): 4 layers; layers 1 and 3 without rotary
    (no_rope_layer_interval 2) with attention temperature tuning (floor_scale 4,
    so the golden's 12 positions get scales > 1), L2-normed q/k after the
    interleaved rotary on the others, llama3 rope scaling; layers 1 and 3 a
    mixture of experts (interleave_moe_layer_step 2: top-1 of 4 experts on
    logits, sigmoid score scaling the expert's input, a shared expert), 0 and 2
    dense with intermediate_size_mlp. Experts are fused parameters
    (feed_forward.experts.gate_up_proj [E, H, 2I], down_proj [E, I, H]) as the Hub
    stores them; their gradients are saved under those names."""
    name = "llama4"
    model = build(name, tf.Llama4TextConfig, tf.Llama4ForCausalLM, dict(
        num_hidden_layers=4, head_dim=8, intermediate_size=24, intermediate_size_mlp=40, num_local_experts=4,
        num_experts_per_tok=1, interleave_moe_layer_step=2, no_rope_layer_interval=2, use_qk_norm=True,
        attn_temperature_tuning=True, floor_scale=4, attn_scale=0.1, attention_chunk_size=64,
        rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=16),
        tie_word_embeddings=False))
    d = OUT / name
    fresh(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    assert "model.layers.1.feed_forward.experts.gate_up_proj" in saved, sorted(saved)[:40]
    gold, loss = golden(model, ids, labels)
    for k in gold:
        if k.startswith("grad."):
            assert k[5:] in saved, k
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", loss, "params", sum(p.numel() for p in model.parameters()))
    # PEFT's LoRA on the linear modules it can adapt: not the fused experts (parameters) nor the router
    # (Llama4Router returns a tuple, which peft 0.21's LoRA layer fails on)
    LORA_TARGETS[name] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lora_golden(name, model, ids, labels)


def make_gpt_oss(ids, labels):
    """GPT-OSS: 3 layers alternating sliding (window 4) and full attention
    (layer_types), q/k/v/o biases, a sink logit per head (set to N(0, 1) so it
    weighs), YaRN rotary (factor 4 over 16 positions, truncate false); every
    layer 4 experts, top-2 of the router logits (router bias) softmaxed over
    the two, experts with biases and the clamped SwiGLU (swiglu_limit 0.3 here,
    so this init's activations hit the clamps both ways; alpha 1.702), the
    load-balancing loss with output_router_logits and router_aux_loss_coef 0.02.
    transformers 5 saves the experts fused (mlp.experts.gate_up_proj [E, H, 2I]
    with gate / up in alternating columns, gate_up_proj_bias, down_proj
    [E, I, H], down_proj_bias) and the router as mlp.router: the gradients are
    saved under those names. lora.safetensors: PEFT's LoRA on q/k/v/o_proj."""
    name = "gpt_oss"
    model = build(name, tf.GptOssConfig, tf.GptOssForCausalLM, dict(
        num_hidden_layers=3, head_dim=8, intermediate_size=24, num_local_experts=4, num_experts_per_tok=2,
        sliding_window=4, swiglu_limit=0.3, output_router_logits=True, router_aux_loss_coef=0.02,
        rope_parameters=dict(rope_type="yarn", rope_theta=150000.0, factor=4.0, original_max_position_embeddings=16,
                             beta_fast=32.0, beta_slow=1.0, truncate=False),
        tie_word_embeddings=False))
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("self_attn.sinks"):
                p.copy_(torch.randn(p.shape, generator=g))
    d = OUT / name
    fresh(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = load_file(d / "model.safetensors")
    assert "model.layers.1.mlp.experts.gate_up_proj" in saved, sorted(saved)[:40]
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    gold = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().float().contiguous(),
            "loss": out.loss.detach().reshape(1), "aux_loss": out.aux_loss.detach().reshape(1)}
    for pname, p in model.named_parameters():
        if p.grad is not None:
            assert pname in saved, pname
            gold["grad." + pname] = p.grad.detach().contiguous()
    # the clamps are exercised: some gate_up activations lie past the limit on each side
    with torch.no_grad():
        x = model.model.layers[0].post_attention_layernorm(model.model.embed_tokens(ids)).reshape(-1, H)
        gu = x @ model.model.layers[0].mlp.experts.gate_up_proj[0] + model.model.layers[0].mlp.experts.gate_up_proj_bias[0]
        assert (gu[:, ::2] > 0.3).any() and (gu[:, 1::2].abs() > 0.3).any()
    save_file(gold, d / "golden.safetensors")
    print(name, "loss", out.loss.item(), "aux", out.aux_loss.item(),
          "params", sum(p.numel() for p in model.parameters()))
    LORA_TARGETS[name] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    lora_golden(name, model, ids, labels)


def fresh(d):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


def write_remote(d, cfg, tensors):
    fresh(d)
    (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in tensors.items()}, d / "model.safetensors", metadata={"format": "pt"})


# --- InternLM2: the llama golden (GQA 4 q heads / 2 kv heads) in InternLM2's layout

def internlm2_pack(q, k, v, n_kv, head_dim):
    """wqkv rows [n_kv, q_per_kv + 2, head_dim]: each kv group's queries, its key, its value."""
    rest = q.shape[1:]
    g = q.shape[0] // (n_kv * head_dim)
    return torch.cat([q.reshape(n_kv, g, head_dim, *rest), k.reshape(n_kv, 1, head_dim, *rest),
                      v.reshape(n_kv, 1, head_dim, *rest)], dim=1).reshape(-1, *rest)


def internlm2_split_as_remote_code(qkv, n_kv, n_q, head_dim):
    """modeling_internlm2.InternLM2Attention's split of wqkv(x) [b, q, N]:
    rearrange "b q (h gs d) -> b q h gs d", queries [..., :g, :] -> "(h gs)", key -2, value -1."""
    b, t, _ = qkv.shape
    g = n_q // n_kv
    x = qkv.reshape(b, t, n_kv, g + 2, head_dim)
    return x[..., :g, :].reshape(b, t, n_kv * g, head_dim), x[..., -2, :], x[..., -1, :]


def make_internlm2(src_name="llama", out_name="internlm2"):
    """src_name's weights in InternLM2's layout. From llama_bias (q/k/v/o and MLP
    biases) it exercises the bias split; real InternLM2 has biases ("bias": true)
    on wqkv and wo only, the MLP ones just follow the renaming."""
    src = OUT / src_name
    w = load_file(src / "model.safetensors")
    lcfg = json.loads((src / "config.json").read_text())
    nh, nkv = lcfg["num_attention_heads"], lcfg["num_key_value_heads"]
    hd = lcfg["hidden_size"] // nh
    assert hd == lcfg["head_dim"]
    out = {"model.tok_embeddings.weight": w["model.embed_tokens.weight"], "output.weight": w["lm_head.weight"],
           "model.norm.weight": w["model.norm.weight"]}
    ren = {"self_attn.o_proj": "attention.wo", "mlp.gate_proj": "feed_forward.w1", "mlp.up_proj": "feed_forward.w3",
           "mlp.down_proj": "feed_forward.w2", "input_layernorm": "attention_norm",
           "post_attention_layernorm": "ffn_norm"}
    for l in range(lcfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        q, k, v = (w[p + f"self_attn.{n}_proj.weight"] for n in "qkv")
        wqkv = internlm2_pack(q, k, v, nkv, hd)
        # the packed layout must give back the llama projections through the remote code's own split
        x = torch.randn(1, 3, lcfg["hidden_size"])
        sq, sk, sv = internlm2_split_as_remote_code(x @ wqkv.T, nkv, nh, hd)
        for got, ref, n in ((sq, x @ q.T, nh), (sk, x @ k.T, nkv), (sv, x @ v.T, nkv)):
            assert torch.allclose(got, ref.reshape(1, 3, n, hd), atol=1e-6)
        out[p + "attention.wqkv.weight"] = wqkv
        if p + "self_attn.q_proj.bias" in w:
            out[p + "attention.wqkv.bias"] = internlm2_pack(*(w[p + f"self_attn.{n}_proj.bias"] for n in "qkv"),
                                                            nkv, hd)
        for a, b in ren.items():
            for suffix in (".weight", ".bias"):
                if p + a + suffix in w:
                    out[p + b + suffix] = w[p + a + suffix]
    cfg = {
        "architectures": ["InternLM2ForCausalLM"], "attn_implementation": "eager",
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                     "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
                     "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
        "bias": lcfg["attention_bias"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": lcfg["hidden_size"], "initializer_range": 0.02, "intermediate_size": lcfg["intermediate_size"],
        "max_position_embeddings": lcfg["max_position_embeddings"], "model_type": "internlm2",
        "num_attention_heads": nh, "num_hidden_layers": lcfg["num_hidden_layers"], "num_key_value_heads": nkv,
        "pad_token_id": 0, "rms_norm_eps": lcfg["rms_norm_eps"],
        # as internlm2 chat models ship it; dynamic NTK only acts past max_position_embeddings
        "rope_scaling": {"type": "dynamic", "factor": 2.0}, "rope_theta": lcfg["rope_parameters"]["rope_theta"],
        "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.41.0",
        "use_cache": True, "vocab_size": lcfg["vocab_size"],
    }
    write_remote(OUT / out_name, cfg, out)
    print(f"{out_name}: {src_name} golden packed into wqkv (golden: tests/golden/models/{src_name})")


# --- Baichuan (7B): an MHA llama (Baichuan has no GQA) with W_pack = [q; k; v]

def baichuan_cfg(arch, model):
    c = model.config
    return {
        "architectures": [arch],
        "auto_map": {"AutoConfig": "configuration_baichuan.BaichuanConfig",
                     "AutoModelForCausalLM": "modeling_baichuan." + arch},
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": c.hidden_size,
        "initializer_range": 0.02, "intermediate_size": c.intermediate_size,
        "max_position_embeddings": c.max_position_embeddings, "model_max_length": c.max_position_embeddings,
        "model_type": "baichuan", "num_attention_heads": c.num_attention_heads,
        "num_hidden_layers": c.num_hidden_layers, "pad_token_id": 0, "rms_norm_eps": c.rms_norm_eps,
        "tie_word_embeddings": False, "tokenizer_class": "BaichuanTokenizer", "torch_dtype": "float32",
        "transformers_version": "4.29.2", "use_cache": True, "vocab_size": c.vocab_size, "z_loss_weight": 0,
    }


def baichuan_tensors(model):
    w = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {}
    for k, v in w.items():
        if k.endswith("self_attn.q_proj.weight"):
            p = k[: -len("q_proj.weight")]
            out[p + "W_pack.weight"] = torch.cat([v, w[p + "k_proj.weight"], w[p + "v_proj.weight"]], dim=0)
        elif k.endswith(("self_attn.k_proj.weight", "self_attn.v_proj.weight")):
            pass
        else:
            out[k] = v
    return out


def norm_head_forward(self, hidden_states):
    """Baichuan2's NormHead as its training path computes it (eval normalises the weight once, in place)."""
    return F.linear(hidden_states, F.normalize(self.weight))


def make_baichuan(ids, labels):
    model = build("baichuan", tf.LlamaConfig, tf.LlamaForCausalLM, dict(num_key_value_heads=NH))
    tensors = baichuan_tensors(model)
    # Baichuan-7B (BaiChuanForCausalLM): a plain lm_head
    d = OUT / "baichuan"
    write_remote(d, baichuan_cfg("BaiChuanForCausalLM", model), tensors)
    gold, loss = golden(model, ids, labels)
    save_file(gold, d / "golden.safetensors")
    print("baichuan loss", loss)
    # Baichuan2-7B (BaichuanForCausalLM): lm_head rows normalised in the forward
    model.lm_head.forward = norm_head_forward.__get__(model.lm_head)
    d = OUT / "baichuan2"
    write_remote(d, baichuan_cfg("BaichuanForCausalLM", model), tensors)
    gold, loss = golden(model, ids, labels)
    save_file(gold, d / "golden.safetensors")
    print("baichuan2 loss", loss)


def llama_permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute (rows of each head interleaved for llama.cpp's rope)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def make_gguf(name, ids):
    import gguf
    d = OUT / name
    cfg = json.loads((d / "config.json").read_text())
    arch = {"olmo": gguf.MODEL_ARCH.OLMO, "olmo2": gguf.MODEL_ARCH.OLMO2, "starcoder2": gguf.MODEL_ARCH.STARCODER2,
            "llama_tied_llama3rope": gguf.MODEL_ARCH.LLAMA, "llama_llama31rope": gguf.MODEL_ARCH.LLAMA}[name]
    nmap = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])
    w = gguf.GGUFWriter(str(d / "model.gguf"), gguf.MODEL_ARCH_NAMES[arch])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_vocab_size(cfg["vocab_size"])
    if name.startswith("llama"):
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
        if cfg.get("head_dim"):
            w.add_key_length(cfg["head_dim"])
            w.add_value_length(cfg["head_dim"])
    elif name == "olmo":
        w.add_layer_norm_eps(1e-5)
        w.add_clamp_kqv(cfg["clip_qkv"])
    elif name == "olmo2":
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    else:
        w.add_layer_norm_eps(cfg["norm_epsilon"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tensors = load_file(d / "model.safetensors")
    if name.startswith("llama"):
        # convert_hf_to_gguf's LlamaModel.generate_extra_tensors (conversion/llama.py): llama3 rope
        # scaling as per-frequency factors
        import math
        rp = cfg["rope_parameters"]
        dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        freqs = 1.0 / (rp["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        factor, lo, hi = rp.get("factor", 8.0), rp.get("low_freq_factor", 1.0), rp.get("high_freq_factor", 4.0)
        old = rp.get("original_max_position_embeddings", 8192)
        rf = []
        for freq in freqs:
            wavelen = 2 * math.pi / freq
            if wavelen < old / hi:
                rf.append(1)
            elif wavelen > old / lo:
                rf.append(factor)
            else:
                smooth = (old / wavelen - lo) / (hi - lo)
                rf.append(1 / ((1 - smooth) / factor + smooth))
        w.add_tensor("rope_freqs.weight", torch.tensor(rf, dtype=torch.float32).numpy())
    for hf, t in sorted(tensors.items()):
        if (name == "olmo" or name.startswith("llama")) and hf.endswith("q_proj.weight"):
            t = llama_permute(t, cfg["num_attention_heads"])
        elif (name == "olmo" or name.startswith("llama")) and hf.endswith("k_proj.weight"):
            t = llama_permute(t, cfg["num_key_value_heads"])
        gname = nmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert gname, hf
        w.add_tensor(gname, t.float().numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if name == "starcoder2":
        c = tf.AutoConfig.from_pretrained(d)
        c.sliding_window = None
        c._attn_implementation = "eager"
        m = tf.Starcoder2ForCausalLM.from_pretrained(d, config=c).eval()
        with torch.no_grad():
            logits = m(input_ids=ids).logits.float().contiguous()
        g = tf.AutoModelForCausalLM.from_pretrained(d, gguf_file="model.gguf", dtype=torch.float32,
                                                 vocab_size=cfg["vocab_size"]).eval()  # no tokenizer in it
        with torch.no_grad():
            assert torch.allclose(g(input_ids=ids).logits, logits, atol=1e-5), "transformers reads the GGUF differently"
        save_file({"input_ids": ids, "logits": logits}, d / "gguf_golden.safetensors")
    print(name, "model.gguf", (d / "model.gguf").stat().st_size, "bytes")


# llama.cpp's converter (convert_hf_to_gguf.py + conversion/*.py); its gguf-py is the same 0.19 as the venv's
LLAMA_CONV = pathlib.Path(os.environ.get("LLAMA_CONV", "/work/venvs/llama-conv"))

# GGUF cases written by the converter itself. llama.cpp has no dense layers in
# qwen2moe / qwen3moe (the converter cannot map mlp_only_layers' mlp.gate_proj),
# so these convert an all-sparse sibling of the golden checkpoint (same
# config otherwise, same seed): the transformers class, the config changes,
# and the config keys transformers' GGUF reader does not take from the file
# (expert_feed_forward_length, gemma3's scale and rope scaling) for the cross-check, None where that reader is
# wrong: it reads qwen2moe's ffn_gate_inp_shexp [1, H] as [1, 1, H].
CONVERTED = {
    "qwen2_moe": (tf.Qwen2MoeConfig, tf.Qwen2MoeForCausalLM, dict(
        num_hidden_layers=3, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
        shared_expert_intermediate_size=40, norm_topk_prob=False, mlp_only_layers=[], tie_word_embeddings=False),
        None),
    "qwen3_moe": (tf.Qwen3MoeConfig, tf.Qwen3MoeForCausalLM, dict(
        head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24, norm_topk_prob=True,
        decoder_sparse_step=1, tie_word_embeddings=False), dict(moe_intermediate_size=24)),
    # Mixtral: the golden checkpoint itself (llama.cpp writes it as arch llama); transformers reads such a
    # file as a Llama, so no cross-check
    "mixtral": (tf.MixtralConfig, tf.MixtralForCausalLM, dict(num_local_experts=4, num_experts_per_tok=2), None),
    # the golden checkpoints themselves; transformers has no GGUF reader for these archs
    "granite": CASES["granite"] + (None,),
    "cohere": CASES["cohere"] + (None,),
    "cohere_qknorm": CASES["cohere_qknorm"] + (None,),
    "glm4": CASES["glm4"] + (None,),
    # DeepSeek V2 / V3 (llama.cpp arch deepseek2 for both): the golden folders as saved (None: convert
    # <case>/config.json + model.safetensors, logits from golden.safetensors)
    "deepseek_v2": None,
    "deepseek_v3": None,
    "deepseek_v2_greedy": None,  # q_proj (no q_lora_rank), plain top-k, two shared experts, no YaRN
    # llama.cpp's gemma3 has every 6th layer global and scales by 1/sqrt(head_dim): 6 layers, pattern 6,
    # query_pre_attn_scalar = head_dim; the rope bases and linear scaling of the golden case
    "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM, dict(
        head_dim=8, num_hidden_layers=6, sliding_window=4, sliding_window_pattern=6, query_pre_attn_scalar=8,
        rope_theta=1e6, rope_local_base_freq=1e4, rope_scaling=dict(rope_type="linear", factor=2.0),
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6),
        dict(query_pre_attn_scalar=8, rope_parameters=dict(
            full_attention=dict(rope_type="linear", factor=2.0, rope_theta=1e6),
            sliding_attention=dict(rope_type="default", rope_theta=1e4)))),
}


def convert_gguf(name, ids):
    """Runs llama.cpp's own converter class for the checkpoint's architecture
    (its set_gguf_parameters and modify_tensors: names, fused experts,
    permutations, metadata) on a tiny HF folder -> <case>/model.gguf, f32, and
    <case>/gguf_golden.safetensors: input_ids, the HF model's logits and its
    parameters as "param.<HF name>" (the sibling's, when CONVERTED builds one).
    The folders have no tokenizer: the converter's set_vocab is replaced by
    the vocabulary size alone. transformers' GGUF reader must give the same
    logits where it reads the file right (CONVERTED's last entry)."""
    import tempfile
    sys.path[:0] = [str(LLAMA_CONV / "gguf-py"), str(LLAMA_CONV)]
    import gguf
    from conversion import get_model_class
    d = OUT / name
    model, xcheck = None, None
    if CONVERTED[name] is not None:
        cfg_cls, model_cls, extra, xcheck = CONVERTED[name]
        model = build(name, cfg_cls, model_cls, extra)
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / name  # general.name comes from the folder's name
        src.mkdir()
        if model is not None:
            model.save_pretrained(src, safe_serialization=True)
        else:
            for f in ("config.json", "model.safetensors"):
                shutil.copy(d / f, src / f)
        hf_cfg = json.loads((src / "config.json").read_text())
        # Gemma3Model.modify_tensors cuts token_embd to the tokenizer's vocabulary
        (src / "tokenizer.json").write_text(json.dumps(
            {"model": {"vocab": {f"t{i}": i for i in range(hf_cfg["vocab_size"])}}, "added_tokens": []}))
        params = load_file(src / "model.safetensors")
        cls = get_model_class(hf_cfg["architectures"][0])

        class Conv(cls):
            model_arch = cls.model_arch

            def set_vocab(self):
                self.gguf_writer.add_vocab_size(self.hparams["vocab_size"])

        Conv(src, gguf.LlamaFileType.ALL_F32, d / "model.gguf", eager=True).write()
    with torch.no_grad():
        if model is None:
            gold = load_file(d / "golden.safetensors")
            assert torch.equal(gold["input_ids"], ids)
            logits = gold["logits"]
        else:
            logits = model(input_ids=ids).logits.float().contiguous()
        if xcheck is not None:
            g = tf.AutoModelForCausalLM.from_pretrained(d, gguf_file="model.gguf", dtype=torch.float32,
                                                     vocab_size=hf_cfg["vocab_size"], **xcheck).eval()
            assert torch.allclose(g(input_ids=ids).logits, logits, atol=1e-5), "transformers reads the GGUF differently"
    out = {"input_ids": ids, "logits": logits}
    out.update({"param." + k: v.contiguous() for k, v in params.items()})
    save_file(out, d / "gguf_golden.safetensors")
    print(name, "model.gguf (convert_hf_to_gguf)", (d / "model.gguf").stat().st_size, "bytes")
    if name == "qwen3_moe":
        q8_0_copy(d / "model.gguf", d / "model_q8_0.gguf")
    if name == "deepseek_v2":
        deepseek_kv_b_copy(d / "model.gguf", d / "model_kv_b.gguf", params, hf_cfg)


def deepseek_kv_b_copy(src, dst, params, cfg):
    """A DeepSeek-V2 file as llama.cpp's converter wrote it before MLA
    absorption (PR 12801): kv_b_proj whole as attn_kv_b, no attn_k_b /
    attn_v_b, head_count_kv the real one, key_length qk_nope + qk_rope,
    value_length v_head_dim, no *_mla lengths. Written from the current file,
    with only those changes."""
    import gguf
    import numpy as np
    r = gguf.GGUFReader(str(src))
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch)
    redo = {f"{arch}.attention.head_count_kv": cfg["num_key_value_heads"],
            f"{arch}.attention.key_length": cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"],
            f"{arch}.attention.value_length": cfg["v_head_dim"]}
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture" or k.endswith("_mla"):
            continue
        w.add_key_value(k, redo.get(k, f.contents()), f.types[0])
    for t in r.tensors:
        if ".attn_k_b." in t.name:
            bid = int(t.name.split(".")[1])
            w.add_tensor(f"blk.{bid}.attn_kv_b.weight", params[f"model.layers.{bid}.self_attn.kv_b_proj.weight"].numpy())
        elif ".attn_v_b." not in t.name:
            w.add_tensor(t.name, np.asarray(t.data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(dst.name, dst.stat().st_size, "bytes")


def q8_0_copy(src, dst):
    """The same file with every matrix whose rows split into 32-value blocks
    (the fused 3-D expert tensors among them, token_embd aside) quantized to
    Q8_0 by gguf-py's own quantizer, the metadata copied."""
    import gguf
    import numpy as np
    from gguf import quants
    r = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(dst), r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    for t in r.tensors:
        a = np.asarray(t.data)
        if a.ndim >= 2 and a.shape[-1] % 32 == 0 and t.name != "token_embd.weight":
            q = quants.quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(t.name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(dst.name, dst.stat().st_size, "bytes")


def main():
    g = torch.Generator().manual_seed(7)
    B, T = 2, 12
    ids = torch.randint(3, V, (B, T), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100            # a masked prompt
    labels[1, -2:] = -100
    only = set(sys.argv[1:])
    for name, (cfg_cls, model_cls, extra) in CASES.items():
        if only and name not in only:
            continue
        model = build(name, cfg_cls, model_cls, extra)
        d = OUT / name
        if d.exists():
            shutil.rmtree(d)
        model.save_pretrained(d, safe_serialization=True)
        for junk in ("generation_config.json",):
            (d / junk).unlink(missing_ok=True)
        gold, loss = golden(model, ids, labels)
        save_file(gold, d / "golden.safetensors")
        print(name, "loss", loss, "params", sum(p.numel() for p in model.parameters()))
        if name in ("olmo", "olmo2", "starcoder2", "llama_tied_llama3rope", "llama_llama31rope"):
            make_gguf(name, ids)
        if name == "gemma3":
            gemma3_hub_config(d, ids)
        if name in LORA_TARGETS:
            lora_golden(name, model, ids, labels)
    if not only or "internlm2" in only:
        make_internlm2()
    if not only or "internlm2_bias" in only:
        make_internlm2("llama_bias", "internlm2_bias")
    if not only or only & {"baichuan", "baichuan2"}:
        make_baichuan(ids, labels)
    if not only or "mixtral" in only:
        make_mixtral(ids, labels)
    for name in ("qwen2_moe", "qwen3_moe"):
        if not only or name in only:
            make_qwen_moe(ids, labels, name)
    if not only or "llama4" in only:
        make_llama4(ids, labels)
    if not only or "gpt_oss" in only:
        make_gpt_oss(ids, labels)
    if not only or "mts" in only:
        make_modules_to_save(ids, labels)
    for name in ("gemma3_vlm", "mistral3_vlm"):
        if not only or name in only:
            make_vlm(ids, labels, name)
    for name in ("deepseek_v3", "deepseek_v3_qproj", "deepseek_v2", "deepseek_v2_greedy"):
        if not only or name in only:
            make_deepseek_v3(ids, labels, name)
    for name in ("glm4_moe", "glm4_moe_air"):
        if not only or name in only:
            make_glm4_moe(ids, labels, name)
    # after the goldens: some convert the case's folder as saved ("gguf:<case>" converts alone)
    for name in CONVERTED:
        if not only or name in only or "gguf:" + name in only:
            convert_gguf(name, ids)


if __name__ == "__main__":
    main()
