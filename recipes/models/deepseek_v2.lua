-- DeepSeek-V2 / V2-Lite / V2.5 / Coder-V2 (DeepSeek): model_type deepseek_v2.
-- Multi-head latent attention as in V3 (low-rank q or q_proj, keys and values
-- from one RMSNormed latent, a shared rotary key rotated in interleaved pairs,
-- YaRN's mscale_all_dim in the softmax scale) and a mixture of experts after
-- the first first_k_dense_replace dense layers: softmax router, greedy or
-- group-limited top-k, weights times routed_scaling_factor (transformers'
-- router does not renormalise them), plus n_shared_experts always-on experts.
-- transformers adds no load-balancing loss for it, so training adds none
-- (moe_aux_loss_coef is refused).
local moe = require("lfl.model.moe")
return {
  family = "deepseek_v2",
  title = "DeepSeek-V2 / V2-Lite / V2.5 / Coder-V2",
  model_type = "deepseek_v2",
  arch = {
    model_type = "deepseek_v2",
    traits = {moe = true},
    resolve = function(cfg, a) moe.resolve_deepseek(cfg, a, false) end,
    -- llama.cpp's deepseek2 files, V2 and V3 alike (V3 loads as deepseek_v3)
    gguf = moe.gguf_deepseek(),
  },
  template = "deepseek",
  lora_target = {"q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "gate_proj",
                 "up_proj", "down_proj"},
  checkpoints = {
    {name = "DeepSeek-V2-Lite-16B-Base", hub = "deepseek-ai/DeepSeek-V2-Lite", size = "16B"},
    {name = "DeepSeek-V2-Lite-16B-Chat", hub = "deepseek-ai/DeepSeek-V2-Lite-Chat", size = "16B"},
    {name = "DeepSeek-V2-236B-Base", hub = "deepseek-ai/DeepSeek-V2", size = "236B"},
    {name = "DeepSeek-V2-236B-Chat", hub = "deepseek-ai/DeepSeek-V2-Chat", size = "236B"},
    {name = "DeepSeek-V2.5-236B-Chat", hub = "deepseek-ai/DeepSeek-V2.5", size = "236B", template = "deepseek3"},
    {name = "DeepSeek-Coder-V2-16B-Instruct", hub = "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", size = "16B",
     template = "deepseekcoder"},
  },
}
