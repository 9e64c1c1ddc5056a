-- DeepSeek-V3 / V3.1 / R1 (DeepSeek): model_type deepseek_v3. Multi-head latent
-- attention (q through a low-rank q_a_proj -> RMSNorm -> q_b_proj, keys and
-- values expanded from one RMSNormed latent by kv_b_proj, one rotary key shared
-- by the heads, interleaved rotary pairs, YaRN's mscale_all_dim folded into the
-- softmax scale) and a mixture of experts after the first
-- first_k_dense_replace dense layers: sigmoid router with
-- e_score_correction_bias, group-limited top-k, weights renormalised and
-- scaled by routed_scaling_factor, plus n_shared_experts always-on experts.
-- The routing is auxiliary-loss-free: transformers adds no load-balancing
-- loss for it, so training adds none (moe_aux_loss_coef is refused).
local moe = require("lfl.model.moe")
return {
  family = "deepseek_v3",
  title = "DeepSeek-V3 / V3.1 / R1",
  model_type = "deepseek_v3",
  arch = {
    model_type = "deepseek_v3",
    traits = {moe = true},
    resolve = function(cfg, a) moe.resolve_deepseek(cfg, a, true) end,
  },
  template = "deepseek3",
  lora_target = {"q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "gate_proj",
                 "up_proj", "down_proj"},
  checkpoints = {
    {name = "DeepSeek-V3-671B-Base", hub = "deepseek-ai/DeepSeek-V3-Base", size = "671B"},
    {name = "DeepSeek-V3-671B-Chat", hub = "deepseek-ai/DeepSeek-V3", size = "671B"},
    {name = "DeepSeek-V3-0324-671B-Chat", hub = "deepseek-ai/DeepSeek-V3-0324", size = "671B"},
    {name = "DeepSeek-R1-671B-Chat-Zero", hub = "deepseek-ai/DeepSeek-R1-Zero", size = "671B", template = "deepseekr1"},
    {name = "DeepSeek-R1-671B-Chat", hub = "deepseek-ai/DeepSeek-R1", size = "671B", template = "deepseekr1"},
  },
}
