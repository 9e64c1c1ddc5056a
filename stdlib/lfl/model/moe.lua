-- The config.json keys of the sparse mixture-of-experts families that share
-- Qwen-MoE's layout (mlp.gate router, mlp.experts.<e>.gate_proj / up_proj /
-- down_proj, and for Qwen2-MoE a shared expert): which layers are sparse
-- (mlp_only_layers, decoder_sparse_step), the experts' sizes, top-k
-- renormalisation and the load-balancing coefficient, set on the decoder's
-- arch (see lfl.model.decoder's moe trait). Errors name config.json and the key.
local fmt = string.format
local M = {}

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

local function bool(cfg, key, default)
  local v = get(cfg, key, default)
  if type(v) ~= "boolean" then error(fmt("config.json: %s is %s, expected true or false", key, tostring(v)), 0) end
  return v
end

-- cfg: config.json; a: the decoder's arch; shared: whether the family has
-- Qwen2-MoE's shared expert
function M.resolve_qwen(cfg, a, shared)
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  -- the Hub's configs say num_experts; transformers 5 writes Qwen3-MoE's as
  -- num_local_experts (an attribute_map alias)
  local ek = get(cfg, "num_experts", nil) == nil and get(cfg, "num_local_experts", nil) ~= nil and
    "num_local_experts" or "num_experts"
  a.experts = int(cfg, ek, 60, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 4, 1)
  if a.top_k > a.experts then
    error(fmt("config.json: num_experts_per_tok %d is more than %s %d", a.top_k, ek, a.experts), 0)
  end
  a.moe_F = int(cfg, "moe_intermediate_size", 1408, 1)
  -- transformers' Qwen2Moe/Qwen3MoeConfig default is false; the released
  -- Qwen3-MoE checkpoints say true
  a.norm_topk = bool(cfg, "norm_topk_prob", false)
  if shared then
    local sf = int(cfg, "shared_expert_intermediate_size", 5632, 0)
    a.shared_F = sf > 0 and sf or nil
  end
  -- a layer is sparse unless listed in mlp_only_layers (0-based) or off the
  -- decoder_sparse_step grid ((l + 1) % step == 0, l 0-based)
  local step = int(cfg, "decoder_sparse_step", 1, 1)
  local only = get(cfg, "mlp_only_layers", {})
  if type(only) ~= "table" then
    error(fmt("config.json: mlp_only_layers is %s, expected a list of layer numbers", tostring(only)), 0)
  end
  local dense = {}
  for i, l in ipairs(only) do
    if type(l) ~= "number" or l ~= math.floor(l) or l < 0 or l >= a.layers then
      error(fmt("config.json: mlp_only_layers[%d] is %s, expected a layer number in [0, %d)", i, tostring(l),
        a.layers), 0)
    end
    dense[l + 1] = true
  end
  a.moe_layer = {}
  for l = 1, a.layers do a.moe_layer[l] = not dense[l] and l % step == 0 or nil end
  local coef = get(cfg, "router_aux_loss_coef", 0.001)
  if type(coef) ~= "number" then
    error(fmt("config.json: router_aux_loss_coef is %s, expected a number", tostring(coef)), 0)
  end
  a.router_aux_coef = coef
  a.router_aux = cfg.output_router_logits == true
  if get(cfg, "use_sliding_window", false) == true then
    error("config.json: use_sliding_window true is not supported for the Qwen MoE models (their released " ..
      "checkpoints attend over the whole context)", 0)
  end
end

return M
