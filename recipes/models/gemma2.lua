-- Gemma 2 (Google): model_type gemma2 (gemma plus post-norms, soft-capping
-- and alternating sliding-window layers).
local ck = {}
for _, s in ipairs({"2B", "9B", "27B"}) do
  local l = s:lower()
  ck[#ck + 1] = {name = "Gemma-2-" .. s, hub = "google/gemma-2-" .. l, size = s}
  ck[#ck + 1] = {name = "Gemma-2-" .. s .. "-Instruct", hub = "google/gemma-2-" .. l .. "-it", size = s}
end
return {
  family = "gemma2",
  title = "Gemma 2",
  model_type = "gemma2",
  arch = {
    model_type = "gemma2",
    traits = {norm_plus_one = true, embed_scale = true, act = "gelu_tanh", post_norms = true, tied = true},
    -- even layers (0-based) use the sliding window
    window = function(cfg, l, sw)
      if sw and (l - 1) % 2 == 0 then return sw end
      return nil
    end,
    resolve = function(cfg, a)
      if cfg.query_pre_attn_scalar then a.scale = cfg.query_pre_attn_scalar ^ -0.5 end
    end,
    gguf = {
      arch = "gemma2", hf_class = "Gemma2ForCausalLM", norm_offset = 1,
      names = {ffn_norm = "pre_feedforward_layernorm"},
      config = function(cfg, meta, key)
        cfg.attn_logit_softcapping = meta[key("attn_logit_softcapping")]
        cfg.final_logit_softcapping = meta[key("final_logit_softcapping")]
        cfg.query_pre_attn_scalar = cfg.head_dim
      end,
    },
  },
  template = "gemma2",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
