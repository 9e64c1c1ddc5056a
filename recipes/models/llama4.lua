-- Llama 4 (Meta): model_type llama4_text (Llama4ForCausalLM; of the Hub's
-- image-text Llama4ForConditionalGeneration checkpoints, model_type llama4, lfl
-- loads the language model: lfl.model.wrapper). Layers without rotary every
-- no_rope_layer_interval-th (no_rope_layers), where attention temperature tuning
-- scales the queries by log1p(floor((pos + 1) / floor_scale)) * attn_scale + 1;
-- the others rotate interleaved pairs (llama3 scaling) and L2-normalise q and k
-- (use_qk_norm). moe_layers (every interleave_moe_layer_step-th) hold a mixture
-- of experts: top-k of the router's logits, the expert's INPUT scaled by the
-- sigmoid of its logit, plus a shared expert; the others a dense MLP of
-- intermediate_size_mlp. transformers has no load-balancing loss for it
-- (moe_aux_loss_coef is refused). The checkpoint keeps the experts fused
-- (feed_forward.experts.gate_up_proj [E, H, 2I], down_proj [E, I, H]) and the
-- MLPs under feed_forward.*: they are split into the decoder's per-expert
-- linears (mlp.experts.<e>.gate_proj ...) at load and fused back on save;
-- LoRA leaves them and the router out (PEFT cannot adapt them) and names the
-- other modules as the checkpoint does (feed_forward.*).
-- Chunked attention (attention_chunk_size) equals causal attention up to the
-- chunk size; longer sequences are refused.
local fmt = string.format

local moe = require("lfl.model.moe")
local get, int = moe.get, moe.int

local function int_list(cfg, key, n)
  local v = get(cfg, key, nil)
  if v == nil then return nil end
  if type(v) ~= "table" then error(fmt("config.json: %s is %s, expected a list", key, tostring(v)), 0) end
  for i, x in ipairs(v) do
    if type(x) ~= "number" or x ~= math.floor(x) then
      error(fmt("config.json: %s[%d] is %s, expected an integer", key, i, tostring(x)), 0)
    end
  end
  if n and #v ~= n then error(fmt("config.json: %s has %d entries, expected one per layer (%d)", key, #v, n), 0) end
  return v
end

local function resolve(cfg, a)
  local L = a.layers
  -- rotary per layer: no_rope_layers[l] == 1 uses rope (transformers' naming)
  local use = int_list(cfg, "no_rope_layers", L)
  if not use then
    local every = int(cfg, "no_rope_layer_interval", 4, 1)
    use = {}
    for l = 1, L do use[l] = l % every ~= 0 and 1 or 0 end
  end
  a.nope = {}
  for l = 1, L do a.nope[l] = use[l] == 0 or nil end
  a.qk_l2 = get(cfg, "use_qk_norm", true) == true
  if get(cfg, "attn_temperature_tuning", true) == true then
    a.temp_tune = {floor = int(cfg, "floor_scale", 8192, 1), scale = get(cfg, "attn_scale", 0.1)}
  end
  a.rope_interleave = true
  local chunk = get(cfg, "attention_chunk_size", 8192)
  if chunk ~= nil then a.chunk = int(cfg, "attention_chunk_size", 8192, 1) end
  -- experts
  a.experts = int(cfg, "num_local_experts", 16, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 1, 1)
  if a.top_k > a.experts then
    error(fmt("config.json: num_experts_per_tok %d is more than num_local_experts %d", a.top_k, a.experts), 0)
  end
  local jn = get(cfg, "router_jitter_noise", 0)
  if jn ~= 0 then error(fmt("config.json: router_jitter_noise %s is not supported (only 0)", tostring(jn)), 0) end
  local layers = int_list(cfg, "moe_layers", nil)
  if not layers then
    local step = int(cfg, "interleave_moe_layer_step", 1, 1)
    layers = {}
    for l = step - 1, L - 1, step do layers[#layers + 1] = l end
  end
  a.moe_layer = {}
  for i, l in ipairs(layers) do
    if l < 0 or l >= L then error(fmt("config.json: moe_layers[%d] is %d, expected a layer in [0, %d)", i, l, L), 0) end
    a.moe_layer[l + 1] = true
  end
  a.router = "llama4"
  a.moe_F = int(cfg, "intermediate_size", 8192, 1)
  a.dense_F = int(cfg, "intermediate_size_mlp", 16384, 1)
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  a.shared_F, a.shared_name = a.moe_F, "shared_expert."
  a.aux_free = true
  -- no LoRA where PEFT cannot put one: the experts (one fused parameter in the
  -- checkpoint) and the router (its forward returns a tuple, which PEFT's LoRA
  -- layer fails on in peft 0.21)
  a.lora_skip = {"%.mlp%.experts%.%d+%.", "%.mlp%.gate$"}
end

-- the fused experts of one layer -> per-expert [I, H] gate/up and [H, I] down
local function split_experts(put, p, gate_up, down, name)
  local s = gate_up:size()
  if #s ~= 3 or s[3] % 2 ~= 0 then
    error(fmt("model: %s has shape [%s], expected [experts, hidden, 2 x intermediate]", name, table.concat(s, ",")), 0)
  end
  local E, I = s[1], s[3] / 2
  for e = 0, E - 1 do
    local gu = gate_up:select(1, e + 1)
    local q = p .. "mlp.experts." .. e .. "."
    put(q .. "gate_proj.weight", gu:narrow(2, 1, I):transpose(1, 2):contiguous(), name)
    put(q .. "up_proj.weight", gu:narrow(2, I + 1, I):transpose(1, 2):contiguous(), name)
    put(q .. "down_proj.weight", down:select(1, e + 1):transpose(1, 2):contiguous(), name)
  end
end

local function to_decoder(cfg, params)
  local fused = {}
  local out = require("lfl.model.convert").remap(params, function(name, t, put)
    local p, rest = name:match("^(model%.layers%.%d+%.)feed_forward%.(.+)$")
    if not p then put(name, t, name)
    elseif rest == "experts.gate_up_proj" or rest == "experts.down_proj" then
      fused[p] = fused[p] or {}
      fused[p][rest] = {t, name}
    elseif rest == "router.weight" then put(p .. "mlp.gate.weight", t, name)
    else put(p .. "mlp." .. rest, t, name) end -- gate/up/down_proj (dense) and shared_expert.*
  end)
  local function put(n, t, from)
    if out[n] then error(fmt("model: tensors '%s' and another both map to '%s'", from, n), 0) end
    out[n] = t
  end
  for p, f in pairs(fused) do
    local gu, dn = f["experts.gate_up_proj"], f["experts.down_proj"]
    if not (gu and dn) then
      error(fmt("model: %sfeed_forward.experts has %s without %s", p, gu and "gate_up_proj" or "down_proj",
        gu and "down_proj" or "gate_up_proj"), 0)
    end
    split_experts(put, p, gu[1], dn[1], gu[2])
  end
  return out
end

local function from_decoder(cfg, names, params)
  local out, list, experts = {}, {}, {}
  for _, name in ipairs(names) do
    local t = params[name]
    local p, rest = name:match("^(model%.layers%.%d+%.)mlp%.(.+)$")
    if not p then out[name] = t; list[#list + 1] = name
    else
      local e, kind = rest:match("^experts%.(%d+)%.(%a+)_proj%.weight$")
      if e then
        experts[p] = experts[p] or {}
        experts[p][tonumber(e) + 1] = experts[p][tonumber(e) + 1] or {}
        experts[p][tonumber(e) + 1][kind] = t
      else
        local n = p .. "feed_forward." .. (rest == "gate.weight" and "router.weight" or rest)
        out[n] = t; list[#list + 1] = n
      end
    end
  end
  for p, ex in pairs(experts) do
    local gu, dn = {}, {}
    for e, w in ipairs(ex) do
      gu[e] = lfl.cat({w.gate:transpose(1, 2), w.up:transpose(1, 2)}, 2)
      dn[e] = w.down:transpose(1, 2)
    end
    out[p .. "feed_forward.experts.gate_up_proj"] = lfl.stack(gu, 1):contiguous()
    out[p .. "feed_forward.experts.down_proj"] = lfl.stack(dn, 1):contiguous()
    list[#list + 1] = p .. "feed_forward.experts.gate_up_proj"
    list[#list + 1] = p .. "feed_forward.experts.down_proj"
  end
  table.sort(list)
  return list, out
end

-- PEFT's module names are the checkpoint's: feed_forward.* for the decoder's
-- mlp.*, feed_forward.router for the router (mlp.gate)
local function peft_module(mod, dir)
  if dir == "out" then
    local p, rest = mod:match("^(model%.layers%.%d+%.)mlp%.(.+)$")
    if not p then return mod end
    return p .. "feed_forward." .. (rest == "gate" and "router" or rest)
  end
  local p, rest = mod:match("^(model%.layers%.%d+%.)feed_forward%.(.+)$")
  if not p then return mod end
  return p .. "mlp." .. (rest == "router" and "gate" or rest)
end

return {
  family = "llama4",
  title = "Llama 4 (language model)",
  model_type = "llama4_text",
  arch = {
    model_type = "llama4_text",
    traits = {moe = true},
    resolve = resolve,
    to_decoder = to_decoder,
    from_decoder = from_decoder,
    peft_module = peft_module,
  },
  template = "llama4",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Llama-4-Scout-17B-16E", hub = "meta-llama/Llama-4-Scout-17B-16E", size = "109B"},
    {name = "Llama-4-Scout-17B-16E-Instruct", hub = "meta-llama/Llama-4-Scout-17B-16E-Instruct", size = "109B"},
    {name = "Llama-4-Maverick-17B-128E", hub = "meta-llama/Llama-4-Maverick-17B-128E", size = "402B"},
    {name = "Llama-4-Maverick-17B-128E-Instruct", hub = "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
     size = "402B"},
  },
}
