-- Qwen1.5-MoE and Qwen2-MoE (Alibaba): model_type qwen2_moe, Qwen2's attention
-- (biases on q/k/v) with a sparse mixture of experts: a router (mlp.gate)
-- picks each token's num_experts_per_tok of num_experts experts
-- (mlp.experts.<e>.gate_proj / up_proj / down_proj), plus a shared expert on
-- every token scaled by sigmoid(mlp.shared_expert_gate); mlp_only_layers and
-- decoder_sparse_step keep some layers dense. Training adds the
-- load-balancing loss as LlamaFactory does (moe_aux_loss_coef).
local moe = require("lfl.model.moe")
return {
  family = "qwen2_moe",
  title = "Qwen1.5-MoE / Qwen2-MoE",
  model_type = "qwen2_moe",
  arch = {
    model_type = "qwen2_moe",
    traits = {moe = true},
    resolve = function(cfg, a)
      -- Qwen2MoeConfig.qkv_bias (true unless a config says otherwise)
      local qb = cfg.qkv_bias
      a.qkv_bias = qb == nil or qb == lfl.json.null or qb == true
      moe.resolve_qwen(cfg, a, true)
    end,
    gguf = moe.gguf_qwen("qwen2moe", "Qwen2MoeForCausalLM", true, false),
  },
  template = "qwen",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate", "gate_proj", "up_proj", "down_proj",
                 "shared_expert_gate"},
  checkpoints = {
    {name = "Qwen1.5-MoE-A2.7B", hub = "Qwen/Qwen1.5-MoE-A2.7B", size = "A2.7B"},
    {name = "Qwen1.5-MoE-A2.7B-Chat", hub = "Qwen/Qwen1.5-MoE-A2.7B-Chat", size = "A2.7B"},
    {name = "Qwen2-57B-A14B", hub = "Qwen/Qwen2-57B-A14B", size = "A14B"},
    {name = "Qwen2-57B-A14B-Instruct", hub = "Qwen/Qwen2-57B-A14B-Instruct", size = "A14B"},
  },
}
