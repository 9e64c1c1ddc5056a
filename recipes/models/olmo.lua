-- OLMo (AI2): model_type olmo (layer norms without weights, so its linears
-- are the llama ones). LlamaFactory's "olmo" template is not bundled yet:
-- "default" stands in (lf_template says which one LlamaFactory uses).
return {
  family = "olmo",
  title = "OLMo",
  model_type = "olmo",
  arch = {
    model_type = "olmo",
    traits = {norm = "layer_np"},
    -- q/k/v projections clamped to [-clip_qkv, clip_qkv]
    resolve = function(cfg, a)
      if type(cfg.clip_qkv) == "number" then a.clip_qkv = cfg.clip_qkv end
    end,
    -- llama.cpp's OlmoModel copies LlamaModel's q/k permutation
    gguf = {
      arch = "olmo", hf_class = "OlmoForCausalLM", permuted = true,
      config = function(cfg, meta, key) cfg.clip_qkv = meta[key("attention.clamp_kqv")] end,
    },
  },
  template = "default",
  lf_template = "olmo",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "OLMo-1B", hub = "allenai/OLMo-1B-hf", size = "1B"},
    {name = "OLMo-7B", hub = "allenai/OLMo-7B-hf", size = "7B"},
    {name = "OLMo-7B-0424", hub = "allenai/OLMo-7B-0424-hf", size = "7B"},
    {name = "OLMo-7B-0724", hub = "allenai/OLMo-7B-0724-hf", size = "7B"},
    {name = "OLMo-7B-Instruct", hub = "allenai/OLMo-7B-Instruct-hf", size = "7B"},
  },
}
