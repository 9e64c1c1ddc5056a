-- Qwen3-MoE (Alibaba): model_type qwen3_moe, Qwen3's attention (q/k RMSNorm,
-- no biases) with a sparse mixture of experts: a router (mlp.gate) picks each
-- token's num_experts_per_tok of num_experts experts (mlp.experts.<e>.gate_proj
-- / up_proj / down_proj), their probabilities renormalised when
-- norm_topk_prob; no shared expert. Training adds the load-balancing loss as
-- LlamaFactory does (moe_aux_loss_coef).
local moe = require("lfl.model.moe")
return {
  family = "qwen3_moe",
  title = "Qwen3-MoE",
  model_type = "qwen3_moe",
  arch = {
    model_type = "qwen3_moe",
    traits = {moe = true, qk_norm = true},
    resolve = function(cfg, a) moe.resolve_qwen(cfg, a, false) end,
    gguf = moe.gguf_qwen("qwen3moe", "Qwen3MoeForCausalLM", false, true),
  },
  template = "qwen3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Qwen3-30B-A3B-Base", hub = "Qwen/Qwen3-30B-A3B-Base", size = "A3B"},
    {name = "Qwen3-30B-A3B-Instruct", hub = "Qwen/Qwen3-30B-A3B", size = "A3B"},
    {name = "Qwen3-30B-A3B-Instruct-2507", hub = "Qwen/Qwen3-30B-A3B-Instruct-2507", size = "A3B",
     template = "qwen3_nothink"},
    {name = "Qwen3-30B-A3B-Thinking-2507", hub = "Qwen/Qwen3-30B-A3B-Thinking-2507", size = "A3B"},
    {name = "Qwen3-235B-A22B-Instruct", hub = "Qwen/Qwen3-235B-A22B", size = "A22B"},
  },
}
