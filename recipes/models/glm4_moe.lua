-- GLM-4.5 / GLM-4.5-Air (Zhipu AI): model_type glm4_moe. Grouped-query
-- attention with q/k/v biases (attention_bias, no o_proj bias), optional
-- per-head q/k RMSNorm (use_qk_norm), rotary on the first
-- partial_rotary_factor of each head's dims in halves; after the first
-- first_k_dense_replace dense layers a mixture of experts with DeepSeek-V3's
-- router (sigmoid scores, e_score_correction_bias for the choice,
-- group-limited top-k, norm_topk_prob, routed_scaling_factor) and
-- n_shared_experts always-on experts. The checkpoint keeps the Hub's
-- per-expert tensors (mlp.experts.<e>.gate_proj ..., as transformers 5 saves
-- them). Auxiliary-loss-free: transformers adds no load-balancing loss
-- (moe_aux_loss_coef is refused). The multi-token prediction layer past
-- num_hidden_layers is dropped at load, as transformers drops it.
-- lora_target all adapts every expert's, the shared experts' and the dense
-- layers' linears and the router, as for DeepSeek-V3; PEFT 0.21 on
-- transformers 5 instead turns gate/up/down_proj into LoRA on the fused
-- experts' parameters (and then adapts neither the dense MLP nor the shared
-- experts), which lfl does not reproduce: the goldens check LoRA on attention.
local moe = require("lfl.model.moe")
return {
  family = "glm4_moe",
  title = "GLM-4.5 / GLM-4.5-Air",
  model_type = "glm4_moe",
  arch = {
    model_type = "glm4_moe",
    traits = {moe = true, partial_halves = true},
    resolve = function(cfg, a) moe.resolve_glm4_moe(cfg, a) end,
  },
  template = "glm4_moe",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "GLM-4.5-Air-Base", hub = "zai-org/GLM-4.5-Air-Base", size = "106B"},
    {name = "GLM-4.5-Base", hub = "zai-org/GLM-4.5-Base", size = "355B"},
    {name = "GLM-4.5-Air-Thinking", hub = "zai-org/GLM-4.5-Air", size = "106B"},
    {name = "GLM-4.5-Thinking", hub = "zai-org/GLM-4.5", size = "355B"},
  },
}
