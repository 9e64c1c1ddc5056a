-- Mixture-of-depths (Raposo et al. 2024) as LlamaFactory's
-- `mixture_of_depths: convert | load` gets it from the PyPI package
-- mixture-of-depth (module MoD, astramind-ai, version 1.2.0):
-- apply_mod_to_hf wraps every odd decoder layer (0-based 1, 3, 5, ...) in a
-- MoD module with a token router (nn.Linear(hidden, 1) with bias, torch's
-- default init) and capacity 0.125; the wrapped layer's parameters move under
-- "block." and the router's are "router.weight_predictor.{weight,bias}"; the
-- saved config.json names the MoD class (LlamaMoDForCausalLM), which
-- AutoMoDModelForCausalLM.from_pretrained reads back. The routed forward is
-- lfl.model.decoder's mod_layer.
local lfl = lfl
local fmt = string.format

local M = {}

-- LlamaFactory's MOD_SUPPORTED_MODELS (bloom falcon gemma llama mistral
-- mixtral phi starcoder2) that lfl's decoder has, with the MoD package's class
-- for each; mixtral's routed MoE layer is not implemented
M.CLASSES = {llama = "LlamaMoDForCausalLM", mistral = "MistralMoDForCausalLM", gemma = "GemmaMoDForCausalLM",
             starcoder2 = "Starcoder2MoDForCausalLM"}
-- the classes AutoMoDModelForCausalLM loads whose family lfl has (qwen2 it
-- loads, LlamaFactory does not convert)
M.LOADS = {LlamaMoDForCausalLM = "llama", MistralMoDForCausalLM = "mistral", GemmaMoDForCausalLM = "gemma",
           Starcoder2MoDForCausalLM = "starcoder2", Qwen2MoDForCausalLM = "qwen2"}
M.CAPACITY = 0.125

-- the routed layers (1-based) of an L-layer model: 0-based index odd
function M.routed_layers(L)
  local set = {}
  for l = 1, L do if (l - 1) % 2 ~= 0 then set[l] = true end end
  return set
end

local function router_prefix(i) return fmt("model.layers.%d.router.weight_predictor.", i) end

-- whether params (a name -> tensor table) hold MoD router weights
function M.has_routers(params)
  for name in pairs(params) do
    if name:match("^model%.layers%.%d+%.router%.weight_predictor%.") then return true end
  end
  return false
end

local function arch_class(cfg)
  local ar = cfg.architectures
  return type(ar) == "table" and type(ar[1]) == "string" and ar[1] or nil
end

local function fresh_state(L) return {layers = M.routed_layers(L), capacity = M.CAPACITY, step = 0} end

-- convert(model): the loaded model in MoD's form, in place. The routers start
-- as nn.Linear(hidden, 1) does (weight and bias uniform in +-1/sqrt(hidden)),
-- from lfl's generator (lfl.manual_seed), in f32 (the MoD router casts itself
-- to f32 at its first forward).
function M.convert(model)
  local cfg, a = model.config, model.arch
  if model.mod then error("mixture_of_depths: convert: the model is already a mixture-of-depths model", 0) end
  local cls = M.CLASSES[cfg.model_type]
  if not cls then
    local why = cfg.model_type == "mixtral" and " in lfl (a routed sparse-MoE layer is not implemented)" or ""
    error(fmt("mixture_of_depths: convert: model_type %s is not supported%s (LlamaFactory: 'Current model is not "
      .. "supported by mixture-of-depth'; lfl converts %s)", tostring(cfg.model_type), why,
      "llama, mistral, gemma, starcoder2"), 0)
  end
  if model.gguf_blocks or model.quantization or model.lora then
    error("mixture_of_depths: convert: the model must be a plain float model without adapters or quantized weights", 0)
  end
  local L, H = a.layers, a.hidden
  local st = fresh_state(L)
  local moves = {}
  for _, name in ipairs(model.names) do
    local i, rest = name:match("^model%.layers%.(%d+)%.(.+)$")
    if i and st.layers[tonumber(i) + 1] then moves[#moves + 1] = {name, fmt("model.layers.%s.block.%s", i, rest)} end
  end
  for _, mv in ipairs(moves) do
    local t = model.params[mv[1]]
    model.params[mv[1]] = nil
    model.params[mv[2]] = t
  end
  local bound = 1 / math.sqrt(H)
  for l in pairs(st.layers) do
    local p = router_prefix(l - 1)
    model.params[p .. "weight"] = lfl.zeros(1, H):uniform_(-bound, bound)
    model.params[p .. "bias"] = lfl.zeros(1):uniform_(-bound, bound)
  end
  -- save_pretrained writes the renamed class (LlamaForCausalLM -> LlamaMoDForCausalLM)
  local c = {}
  for k, v in pairs(cfg) do c[k] = v end
  c.architectures = {cls}
  model.config = c
  model.mod = st
  require("lfl.model.decoder").check(model)
  return model
end

-- The MoD state for a checkpoint's config and params (from_params), or nil
-- for a plain one. opt: the run's mixture_of_depths ("load" reads a MoD
-- checkpoint; nil refuses one, whose routed layers a plain load would drop);
-- where: the config's path for errors.
function M.for_checkpoint(cfg, params, opt, where)
  local cls = arch_class(cfg)
  local is_mod = M.has_routers(params) or (cls and cls:find("MoDFor", 1, true) ~= nil)
  if opt == nil or opt == false then
    if is_mod then
      error(fmt("%s: %s is a mixture-of-depths checkpoint (router weights under model.layers.<i>.router); train "
        .. "or export it with mixture_of_depths: load (generation with a MoD model is not implemented in lfl)",
        where or "model", tostring(cls)), 0)
    end
    return nil
  end
  if opt ~= "load" then error(fmt("mixture_of_depths: expected load when reading a checkpoint, got %s", tostring(opt)), 0) end
  if not is_mod then
    error(fmt("%s: mixture_of_depths: load, but the checkpoint is not a mixture-of-depths model (architectures %s, "
      .. "no router weights); use mixture_of_depths: convert to make one", where or "model", tostring(cls)), 0)
  end
  if not M.LOADS[cls] then
    error(fmt("%s: mixture_of_depths: load: architectures %s is not a MoD class lfl loads (%s)", where or "model",
      tostring(cls), "LlamaMoDForCausalLM, MistralMoDForCausalLM, GemmaMoDForCausalLM, Starcoder2MoDForCausalLM, "
      .. "Qwen2MoDForCausalLM"), 0)
  end
  if M.LOADS[cls] ~= cfg.model_type then
    error(fmt("%s: architectures %s does not match model_type %s", where or "model", cls, tostring(cfg.model_type)), 0)
  end
  return fresh_state(cfg.num_hidden_layers)
end

-- one line for the run's log
function M.describe(model)
  local n = 0
  for _ in pairs(model.mod.layers) do n = n + 1 end
  return fmt("mixture-of-depths (%s): %d of %d layers routed (odd ones), capacity %.3f, routers %s", model.config
    .architectures[1], n, model.arch.layers, model.mod.capacity, "model.layers.<i>.router.weight_predictor")
end

return M
