-- GPT-OSS (OpenAI): model_type gpt_oss. Grouped-query attention with biases
-- on q/k/v/o and a learned sink logit per head in every softmax denominator
-- (self_attn.sinks), sliding-window and full layers as layer_types says, YaRN
-- rotary in halves. Every layer a mixture of experts: the router (with bias)
-- picks the top-k logits and softmaxes over those k; each expert (with
-- biases) applies the clamped SwiGLU: gate clamped above at swiglu_limit, up
-- to +-swiglu_limit, (up + 1) * gate * sigmoid(swiglu_alpha * gate). The
-- load-balancing loss is added when config.json's output_router_logits says so
-- (times router_aux_loss_coef): LlamaFactory's configure_moe does not turn it
-- on for gpt_oss nor apply moe_aux_loss_coef to it, and neither does lfl.
-- The checkpoint keeps the experts fused as transformers 5 saves them
-- (mlp.experts.gate_up_proj [E, H, 2I] with gate and up in alternating
-- columns, gate_up_proj_bias [E, 2I], down_proj [E, I, H], down_proj_bias
-- [E, H]) and the router as mlp.router: they are split into the decoder's
-- per-expert linears (mlp.experts.<e>.gate_proj ..., router mlp.gate) at load
-- and fused back on save; LoRA leaves the experts and the router out (PEFT
-- cannot adapt them as modules). The released MXFP4-quantized checkpoints are
-- refused: lfl loads float (bf16 / f32) GPT-OSS weights only.
local fmt = string.format

local moe = require("lfl.model.moe")
local get, int = moe.get, moe.int

local function number(cfg, key, default)
  local v = get(cfg, key, default)
  if type(v) ~= "number" or v ~= v or v <= 0 then
    error(fmt("config.json: %s is %s, expected a positive number", key, tostring(v)), 0)
  end
  return v
end

local MXFP4 = "GPT-OSS's MXFP4-quantized experts (the released openai/gpt-oss checkpoints) are not supported: lfl " ..
  "loads float weights only; use a bf16 copy (transformers: from_pretrained with Mxfp4Config(dequantize=True), " ..
  "then save_pretrained)"

local function resolve(cfg, a)
  local q = get(cfg, "quantization_config", nil)
  if type(q) == "table" and q.quant_method == "mxfp4" then
    error("config.json: quantization_config quant_method mxfp4: " .. MXFP4, 0)
  end
  a.sinks = true
  a.experts = int(cfg, get(cfg, "num_local_experts", nil) == nil and get(cfg, "num_experts", nil) ~= nil and
    "num_experts" or "num_local_experts", 128, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 4, 1)
  if a.top_k > a.experts then
    error(fmt("config.json: num_experts_per_tok %d is more than num_local_experts %d", a.top_k, a.experts), 0)
  end
  a.router = "gpt_oss"
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  a.expert_bias = true
  a.swiglu_clamp = {alpha = number(cfg, "swiglu_alpha", 1.702), limit = number(cfg, "swiglu_limit", 7.0)}
  local coef = get(cfg, "router_aux_loss_coef", 0.001)
  if type(coef) ~= "number" then
    error(fmt("config.json: router_aux_loss_coef is %s, expected a number", tostring(coef)), 0)
  end
  a.router_aux_coef = coef
  a.router_aux = cfg.output_router_logits == true
  a.aux_config_only = true
  a.lora_skip = {"%.mlp%.experts%.%d+%.", "%.mlp%.gate$"}
end

-- the fused experts of one layer -> per-expert gate/up [I, H], down [H, I] and their biases
local function split_experts(put, p, f)
  local gu, gub, dn, dnb = f.gate_up_proj, f.gate_up_proj_bias, f.down_proj, f.down_proj_bias
  local s = gu[1]:size()
  if #s ~= 3 or s[3] % 2 ~= 0 then
    error(fmt("model: %s has shape [%s], expected [experts, hidden, 2 x intermediate]", gu[2], table.concat(s, ",")), 0)
  end
  local E, H, I = s[1], s[2], s[3] / 2
  local function shape(t, want)
    local z = t[1]:size()
    local ok = #z == #want
    for i = 1, #want do ok = ok and z[i] == want[i] end
    if not ok then
      error(fmt("model: %s has shape [%s], expected [%s]", t[2], table.concat(z, ","), table.concat(want, ",")), 0)
    end
  end
  shape(gub, {E, 2 * I}); shape(dn, {E, I, H}); shape(dnb, {E, H})
  for e = 0, E - 1 do
    -- columns 2i (gate) and 2i + 1 (up): rows of the transpose, as [I, 2, H]
    local w = gu[1]:select(1, e + 1):transpose(1, 2):contiguous():view(I, 2, H)
    local b = gub[1]:select(1, e + 1):contiguous():view(I, 2)
    local q = p .. "mlp.experts." .. e .. "."
    put(q .. "gate_proj.weight", w:select(2, 1):contiguous(), gu[2])
    put(q .. "up_proj.weight", w:select(2, 2):contiguous(), gu[2])
    put(q .. "gate_proj.bias", b:select(2, 1):contiguous(), gub[2])
    put(q .. "up_proj.bias", b:select(2, 2):contiguous(), gub[2])
    put(q .. "down_proj.weight", dn[1]:select(1, e + 1):transpose(1, 2):contiguous(), dn[2])
    put(q .. "down_proj.bias", dnb[1]:select(1, e + 1):contiguous(), dnb[2])
  end
end

local FUSED = {gate_up_proj = true, gate_up_proj_bias = true, down_proj = true, down_proj_bias = true}

local function to_decoder(cfg, params)
  local fused = {}
  local out = require("lfl.model.convert").remap(params, function(name, t, put)
    local p, rest = name:match("^(model%.layers%.%d+%.)mlp%.(.+)$")
    if not p then put(name, t, name); return end
    local ex = rest:match("^experts%.(.+)$")
    if ex and FUSED[ex] then
      fused[p] = fused[p] or {}
      fused[p][ex] = {t, name}
    elseif ex and (ex:match("_blocks$") or ex:match("_scales$")) then
      error(fmt("model: %s: %s", name, MXFP4), 0)
    elseif rest == "router.weight" or rest == "router.bias" then
      put(p .. "mlp.gate." .. rest:sub(8), t, name)
    else
      put(name, t, name) -- unknown: the decoder's check names it
    end
  end)
  local function put(n, t, from)
    if out[n] then error(fmt("model: tensors '%s' and another both map to '%s'", from, n), 0) end
    out[n] = t
  end
  for p, f in pairs(fused) do
    for k in pairs(FUSED) do
      if not f[k] then error(fmt("model: %smlp.experts.%s is missing (the other fused expert tensors are there)", p, k), 0) end
    end
    split_experts(put, p, f)
  end
  return out
end

local function from_decoder(cfg, names, params)
  local out, list, experts = {}, {}, {}
  for _, name in ipairs(names) do
    local t = params[name]
    local p, rest = name:match("^(model%.layers%.%d+%.)mlp%.(.+)$")
    local e, kind, what
    if rest then e, kind, what = rest:match("^experts%.(%d+)%.(%a+)_proj%.(%a+)$") end
    if e then
      local x = experts[p] or {}
      experts[p] = x
      x[tonumber(e) + 1] = x[tonumber(e) + 1] or {}
      x[tonumber(e) + 1][kind .. "." .. what] = t
    else
      local n = name
      if rest == "gate.weight" or rest == "gate.bias" then n = p .. "mlp.router." .. rest:sub(6) end
      out[n] = t; list[#list + 1] = n
    end
  end
  for p, ex in pairs(experts) do
    local gu, gub, dn, dnb = {}, {}, {}, {}
    for e, w in ipairs(ex) do
      local I, H = w["gate.weight"]:size(1), w["gate.weight"]:size(2)
      -- rows (i, gate) (i, up) alternate: [I, 2, H] -> [2I, H], transposed to [H, 2I]
      gu[e] = lfl.stack({w["gate.weight"], w["up.weight"]}, 2):reshape(2 * I, H):transpose(1, 2)
      gub[e] = lfl.stack({w["gate.bias"], w["up.bias"]}, 2):reshape(2 * I)
      dn[e] = w["down.weight"]:transpose(1, 2)
      dnb[e] = w["down.bias"]
    end
    local b = p .. "mlp.experts."
    out[b .. "gate_up_proj"] = lfl.stack(gu, 1):contiguous()
    out[b .. "gate_up_proj_bias"] = lfl.stack(gub, 1):contiguous()
    out[b .. "down_proj"] = lfl.stack(dn, 1):contiguous()
    out[b .. "down_proj_bias"] = lfl.stack(dnb, 1):contiguous()
    for _, k in ipairs({"gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"}) do list[#list + 1] = b .. k end
  end
  table.sort(list)
  return list, out
end

return {
  family = "gpt_oss",
  title = "GPT-OSS",
  model_type = "gpt_oss",
  arch = {
    model_type = "gpt_oss",
    traits = {moe = true},
    resolve = resolve,
    to_decoder = to_decoder,
    from_decoder = from_decoder,
  },
  template = "gpt_oss",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj"},
  checkpoints = {
    {name = "GPT-OSS-20B-Thinking", hub = "openai/gpt-oss-20b", size = "21B"},
    {name = "GPT-OSS-120B-Thinking", hub = "openai/gpt-oss-120b", size = "117B"},
  },
}
