-- Command-R / Aya (Cohere): model_type cohere. LayerNorm without bias,
-- attention and MLP in parallel on the same normed input (one norm per
-- layer), rotary pairs interleaved (dims 2i, 2i+1), logits times logit_scale,
-- tied embeddings; use_qk_norm (Command-R+) adds bias-free LayerNorms on q and
-- k with one weight row per head.
local fmt = string.format

return {
  family = "cohere",
  title = "Command-R / Aya",
  model_type = "cohere",
  arch = {
    model_type = "cohere",
    traits = {norm = "layer", parallel = true, rope_interleave = true, tied = true},
    resolve = function(cfg, a)
      local ls = cfg.logit_scale
      if ls == nil then ls = 0.0625 end -- CohereConfig's default
      if type(ls) ~= "number" then
        error(fmt("config.json: logit_scale is %s, expected a number", tostring(ls)), 0)
      end
      a.logit_scale = ls
      if cfg.use_qk_norm == true then a.qk_norm = "layer_heads"
      elseif cfg.use_qk_norm ~= nil and cfg.use_qk_norm ~= false and cfg.use_qk_norm ~= lfl.json.null then
        error(fmt("config.json: use_qk_norm is %s, expected true or false", tostring(cfg.use_qk_norm)), 0)
      end
      a.eps = cfg.layer_norm_eps or 1e-5
    end,
    -- llama.cpp's command-r (convert_hf_to_gguf's CommandR2Model,
    -- conversion/command_r.py): the HF tensors renamed, nothing permuted,
    -- logit_scale and the LayerNorm eps as metadata; Command-R+'s q/k norms
    -- ([heads, head_dim]) as attn_q_norm / attn_k_norm, whose presence is
    -- use_qk_norm
    gguf = {
      arch = "command-r", hf_class = "CohereForCausalLM",
      config = function(cfg, meta, key, k, tensors)
        cfg.logit_scale = meta[key("logit_scale")]
        cfg.layer_norm_eps = k("attention.layer_norm_epsilon", 1e-5)
        cfg.rms_norm_eps = nil
        cfg.use_qk_norm = tensors["blk.0.attn_q_norm.weight"] ~= nil
      end,
    },
  },
  template = "cohere",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "CommandR-35B-Chat", hub = "CohereForAI/c4ai-command-r-v01", size = "35B"},
    {name = "CommandR-Plus-104B-Chat", hub = "CohereForAI/c4ai-command-r-plus", size = "104B"},
    {name = "CommandR-35B-08-2024-Chat", hub = "CohereForAI/c4ai-command-r-08-2024", size = "35B"},
    {name = "Aya-23-8B-Chat", hub = "CohereForAI/aya-23-8B", size = "8B"},
    {name = "Aya-23-35B-Chat", hub = "CohereForAI/aya-23-35B", size = "35B"},
  },
}
