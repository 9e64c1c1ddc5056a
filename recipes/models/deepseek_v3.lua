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
local fmt = string.format

local function get(cfg, key, default)
  local v = cfg[key]
  if v == nil or v == lfl.json.null then return default end
  return v
end

local function int(cfg, key, default, min)
  local v = get(cfg, key, default)
  if type(v) ~= "number" or v ~= math.floor(v) or v < min then
    error(fmt("config.json: %s is %s, expected an integer >= %d", key, tostring(v), min), 0)
  end
  return v
end

local function num(cfg, key, default)
  local v = get(cfg, key, default)
  if type(v) ~= "number" then error(fmt("config.json: %s is %s, expected a number", key, tostring(v)), 0) end
  return v
end

local function resolve(cfg, a)
  -- attention
  a.mla = true
  a.q_rank = get(cfg, "q_lora_rank", nil) and int(cfg, "q_lora_rank", nil, 1) or nil
  a.kv_rank = int(cfg, "kv_lora_rank", 512, 1)
  a.nope_dim = int(cfg, "qk_nope_head_dim", 128, 1)
  a.rope_dim = int(cfg, "qk_rope_head_dim", 64, 2)
  a.v_dim = int(cfg, "v_head_dim", 128, 1)
  a.head_dim = a.nope_dim + a.rope_dim
  if a.v_dim > a.head_dim then
    error(fmt("config.json: v_head_dim %d is more than qk_nope_head_dim + qk_rope_head_dim %d (not supported)",
      a.v_dim, a.head_dim), 0)
  end
  if a.kv_heads ~= a.heads then
    error(fmt("config.json: num_key_value_heads %d differs from num_attention_heads %d; latent attention expands " ..
      "keys and values for every head", a.kv_heads, a.heads), 0)
  end
  a.rope_interleave = get(cfg, "rope_interleave", true) == true
  a.scale = 1 / math.sqrt(a.head_dim)
  local rp = get(cfg, "rope_parameters", nil) or get(cfg, "rope_scaling", nil)
  if type(rp) == "table" and (rp.rope_type or rp.type or "default") ~= "default" and rp.mscale_all_dim
     and rp.mscale_all_dim ~= 0 and (rp.factor or 1) > 1 then
    -- transformers' yarn_apply_mscale: scaling * mscale^2 (the non-rotary dims too)
    local ms = 0.1 * rp.mscale_all_dim * math.log(rp.factor) + 1.0
    a.scale = a.scale * ms * ms
  end
  -- multi-token prediction layers past num_hidden_layers: transformers does not load them
  a.extra_layers = int(cfg, "num_nextn_predict_layers", 0, 0)
  -- experts
  local ek = get(cfg, "n_routed_experts", nil) == nil and get(cfg, "num_local_experts", nil) ~= nil and
    "num_local_experts" or "n_routed_experts"
  a.experts = int(cfg, ek, 256, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 8, 1)
  a.n_group = int(cfg, "n_group", 8, 1)
  a.topk_group = int(cfg, "topk_group", 4, 1)
  if a.experts % a.n_group ~= 0 or a.experts / a.n_group < 2 then
    error(fmt("config.json: %s %d must be a multiple of n_group %d with at least 2 experts a group", ek, a.experts,
      a.n_group), 0)
  end
  if a.topk_group > a.n_group then
    error(fmt("config.json: topk_group %d is more than n_group %d", a.topk_group, a.n_group), 0)
  end
  if a.top_k > a.topk_group * a.experts / a.n_group then
    error(fmt("config.json: num_experts_per_tok %d is more than the %d experts of topk_group %d groups", a.top_k,
      a.topk_group * a.experts / a.n_group, a.topk_group), 0)
  end
  for key, want in pairs({topk_method = "noaux_tc", scoring_func = "sigmoid"}) do
    local v = get(cfg, key, want)
    if v ~= want then
      error(fmt("config.json: %s %s is not supported for deepseek_v3 (only %s)", key, tostring(v), want), 0)
    end
  end
  a.router = "sigmoid_group"
  a.routed_scale = num(cfg, "routed_scaling_factor", 2.5)
  a.norm_topk = get(cfg, "norm_topk_prob", true) == true
  a.moe_F = int(cfg, "moe_intermediate_size", 2048, 1)
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  local shared = int(cfg, "n_shared_experts", 1, 0)
  a.shared_F = shared > 0 and shared * a.moe_F or nil
  a.shared_name = "shared_experts."
  local dense = int(cfg, "first_k_dense_replace", 3, 0)
  a.moe_layer = {}
  for l = dense + 1, a.layers do a.moe_layer[l] = true end
  a.aux_free = true
end

return {
  family = "deepseek_v3",
  title = "DeepSeek-V3 / V3.1 / R1",
  model_type = "deepseek_v3",
  arch = {
    model_type = "deepseek_v3",
    traits = {moe = true},
    resolve = resolve,
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
