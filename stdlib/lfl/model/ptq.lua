-- Pre-quantized checkpoints (config.json quantization_config with
-- quant_method gptq at 2/4/8 bits or awq at 4, the layouts transformers loads through GPTQModel
-- and AutoAWQ). A 4-bit linear stays quantized in memory as a gptq4 weight
-- (core/quant/gptq.h: the codes in GPTQ's word layout, AWQ's repacked into
-- it, the group zeros and scales as stored, g_idx for act-order); linear and
-- lora_linear dequantize it a tile at a time (core/ops/gptq_gemm.c), so the
-- base holds about 0.5 bytes per weight. 2- and 8-bit GPTQ linears, and every
-- linear with opts.dequantize, become float weights at load
-- (core/quant/gptq.c). The model trains LoRA on that base as LlamaFactory
-- allows on GPTQ/AWQ models; full/freeze fine-tuning is refused as
-- LlamaFactory refuses it on quantized models; merging an adapter
-- dequantizes the merged linears (lfl.train.peft.merge) and a saved model is
-- a float one.
local fmt = string.format

local M = {}

-- the quantization_config lfl reads, checked; returns {method, bits, group_size, v1 | nil}
function M.config(cfg, where)
  local q = cfg.quantization_config
  if type(q) ~= "table" then return nil end
  local method = q.quant_method
  local function bad(msg) error(fmt("%s: quantization_config: %s", where, msg), 0) end
  if method ~= "gptq" and method ~= "awq" then
    bad(fmt("quant_method '%s' is not supported (lfl loads gptq and awq 4-bit checkpoints; bitsandbytes "
      .. "quantization is quantization_bit at load)", tostring(method)))
  end
  if method == "awq" and q.bits ~= 4 then
    bad(fmt("awq with %s bits is not supported (4 bits only)", tostring(q.bits)))
  end
  if method == "gptq" and q.bits ~= 2 and q.bits ~= 4 and q.bits ~= 8 then
    bad(fmt("gptq with %s bits is not supported (2, 4 or 8 bits)", tostring(q.bits)))
  end
  local gs = q.group_size or q.q_group_size
  if type(gs) ~= "number" or gs <= 0 then
    bad(fmt("group_size %s: lfl needs a positive group size (per-column -1 is not supported)", tostring(gs)))
  end
  if method == "awq" then
    local v = (q.version or "gemm"):lower()
    if v ~= "gemm" then bad(fmt("AWQ version '%s' is not supported (gemm only)", v)) end
    if q.zero_point == false then bad("AWQ without zero_point is not supported") end
    return {method = "awq", bits = 4, group_size = gs}
  end
  local f = q.checkpoint_format or "gptq"
  if f ~= "gptq" and f ~= "gptq_v2" then bad(fmt("GPTQ checkpoint_format '%s' is not supported (gptq, gptq_v2)", f)) end
  return {method = "gptq", bits = q.bits, group_size = gs, v1 = f == "gptq"}
end

-- params (name -> tensor) with every <module>.qweight group replaced by
-- <module>.weight [out, in]: a kept gptq4 weight when keep and the checkpoint
-- is 4-bit, else f32; returns the new table, the count of linears and how
-- many of them are kept quantized
function M.convert(q, params, where, keep)
  keep = keep and q.bits == 4
  local out, mods = {}, {}
  for name, t in pairs(params) do
    local mod, part = name:match("^(.*)%.([%w_]+)$")
    if part == "qweight" then mods[#mods + 1] = mod
    elseif not (part == "qzeros" or part == "scales" or part == "g_idx") then out[name] = t end
  end
  table.sort(mods)
  for _, mod in ipairs(mods) do
    local qw, qz, sc = params[mod .. ".qweight"], params[mod .. ".qzeros"], params[mod .. ".scales"]
    if not qz or not sc then
      error(fmt("%s: %s has a qweight but no %s", where, mod, not qz and "qzeros" or "scales"), 0)
    end
    local gi = params[mod .. ".g_idx"]
    local ok, w = pcall(function()
      if q.method == "gptq" then
        if keep then return lfl.gptq_pack(qw, qz, sc, gi, q.group_size, q.v1) end
        return lfl.gptq_dequantize(qw, qz, sc, gi, q.group_size, q.v1, q.bits)
      end
      if keep then return lfl.awq_pack(qw, qz, sc, q.group_size) end
      return lfl.awq_dequantize(qw, qz, sc, q.group_size)
    end)
    if not ok then error(fmt("%s: %s: %s", where, mod, tostring(w)), 0) end
    out[mod .. ".weight"] = w
  end
  for name in pairs(params) do
    local mod, part = name:match("^(.*)%.([%w_]+)$")
    if (part == "qzeros" or part == "scales" or part == "g_idx") and not params[mod .. ".qweight"] then
      error(fmt("%s: %s has no %s.qweight", where, name, mod), 0)
    end
  end
  if #mods == 0 then error(fmt("%s: quantization_config says %s but no tensor is a qweight", where, q.method), 0) end
  return out, #mods, keep and #mods or 0
end

-- the float weights of every linear (convert without keeping)
function M.dequantize(q, params, where)
  local out, n = M.convert(q, params, where, false)
  return out, n
end

-- the bytes the kept (gptq4) weights of model m hold and their element count
function M.kept_bytes(m)
  local bytes, n = 0, 0
  for _, name in ipairs(m.names) do
    local t = m.params[name]
    if t:dtype() == "gptq4" then bytes, n = bytes + lfl.gptq_state(t).nbytes, n + t:numel() end
  end
  return bytes, n
end

return M
