-- Mixtral (Mistral AI): model_type mixtral, Mistral's attention with a sparse
-- mixture of experts in place of the MLP: a router (block_sparse_moe.gate)
-- picks each token's num_experts_per_tok of num_local_experts experts
-- (experts.<e>.w1 / w3 / w2, a gated MLP each). With output_router_logits
-- the loss adds router_aux_loss_coef times the load-balancing loss; training
-- runs turn it on as LlamaFactory does (moe_aux_loss_coef overrides the coef).
local fmt = string.format

local function int(cfg, key, default, min)
  local v = cfg[key]
  if v == nil or v == lfl.json.null then v = default end
  if type(v) ~= "number" or v ~= math.floor(v) or v < min then
    error(fmt("config.json: %s is %s, expected an integer >= %d", key, tostring(v), min), 0)
  end
  return v
end

return {
  family = "mixtral",
  title = "Mixtral",
  model_type = "mixtral",
  arch = {
    model_type = "mixtral",
    traits = {window_all = true, moe = true},
    resolve = function(cfg, a)
      a.experts = int(cfg, "num_local_experts", 8, 1)
      a.top_k = int(cfg, "num_experts_per_tok", 2, 1)
      if a.top_k > a.experts then
        error(fmt("config.json: num_experts_per_tok %d is more than num_local_experts %d", a.top_k, a.experts), 0)
      end
      local jn = cfg.router_jitter_noise
      if jn ~= nil and jn ~= lfl.json.null and jn ~= 0 then
        error(fmt("config.json: router_jitter_noise %s is not supported (only 0: no noise on the router input)",
          tostring(jn)), 0)
      end
      local coef = cfg.router_aux_loss_coef
      if coef == nil or coef == lfl.json.null then coef = 0.001 end -- MixtralConfig's default
      if type(coef) ~= "number" then
        error(fmt("config.json: router_aux_loss_coef is %s, expected a number", tostring(coef)), 0)
      end
      a.router_aux_coef = coef
      a.router_aux = cfg.output_router_logits == true
    end,
  },
  template = "mistral",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate", "w1", "w2", "w3"},
  checkpoints = {
    {name = "Mixtral-8x7B-v0.1", hub = "mistralai/Mixtral-8x7B-v0.1", size = "8x7B"},
    {name = "Mixtral-8x7B-v0.1-Instruct", hub = "mistralai/Mixtral-8x7B-Instruct-v0.1", size = "8x7B"},
    {name = "Mixtral-8x22B-v0.1", hub = "mistralai/Mixtral-8x22B-v0.1", size = "8x22B"},
    {name = "Mixtral-8x22B-v0.1-Instruct", hub = "mistralai/Mixtral-8x22B-Instruct-v0.1", size = "8x22B"},
  },
}
