-- GLM-4-0414 / GLM-Z1 (Zhipu, THUDM): model_type glm4 (Glm4ForCausalLM; the
-- older glm-4-9b-chat is remote-code ChatGLM, model_type chatglm, not this).
-- Norms after attention and after the MLP besides the pre-norms
-- (post_self_attn_layernorm, post_mlp_layernorm; post_attention_layernorm is
-- the MLP's pre-norm), fused gate_up_proj, q/k/v biases without an o_proj
-- bias, and half of each head rotated (partial_rotary_factor, 0.5 when
-- absent) with interleaved pairs.

return {
  family = "glm4",
  title = "GLM-4-0414 / GLM-Z1",
  model_type = "glm4",
  arch = {
    model_type = "glm4",
    traits = {post_norms = true, fused_gate_up = true, rope_interleave = true,
              norm_names = {post_attn = "post_self_attn_layernorm", pre_ffn = "post_attention_layernorm",
                            post_ffn = "post_mlp_layernorm"}},
    resolve = function(cfg, a)
      local rp = cfg.rope_parameters
      local nested = type(rp) == "table" and rp.partial_rotary_factor
      local top = cfg.partial_rotary_factor
      if (nested == nil or nested == lfl.json.null) and (top == nil or top == lfl.json.null) then
        a.ropes = {main = setmetatable({partial_rotary_factor = 0.5}, {__index = cfg})} -- Glm4Config's default
      end
      if cfg.attention_bias == nil then a.qkv_bias = true end -- Glm4Config's default
      a.o_bias = false
    end,
    -- llama.cpp's glm4 (convert_hf_to_gguf's Glm4Model, conversion/glm.py):
    -- the HF tensors renamed (q/k rows untouched without M-RoPE), the four
    -- norms as attn_norm / post_attention_norm / ffn_norm / post_ffw_norm,
    -- gate_up_proj as ffn_up, the rotated part as rope.dimension_count
    gguf = {
      arch = "glm4", hf_class = "Glm4ForCausalLM",
      names = {post_attention_norm = "post_self_attn_layernorm", post_ffw_norm = "post_mlp_layernorm",
               ffn_up = "mlp.gate_up_proj"},
      config = function(cfg, meta, key, k, tensors)
        local rd = meta[key("rope.dimension_count")]
        if rd then cfg.partial_rotary_factor = rd / cfg.head_dim end
        cfg.attention_bias = tensors["blk.0.attn_q.bias"] ~= nil
      end,
    },
  },
  template = "glm4",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"},
  checkpoints = {
    {name = "GLM-4-9B-Chat-0414", hub = "THUDM/GLM-4-9B-0414", size = "9B"},
    {name = "GLM-4-32B-Base-0414", hub = "THUDM/GLM-4-32B-Base-0414", size = "32B"},
    {name = "GLM-4-32B-Chat-0414", hub = "THUDM/GLM-4-32B-0414", size = "32B"},
    {name = "GLM-Z1-9B-Chat-0414", hub = "THUDM/GLM-Z1-9B-0414", size = "9B", template = "glmz1"},
    {name = "GLM-Z1-32B-Chat-0414", hub = "THUDM/GLM-Z1-32B-0414", size = "32B", template = "glmz1"},
  },
}
