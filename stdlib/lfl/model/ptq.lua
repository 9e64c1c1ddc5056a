-- Pre-quantized checkpoints (config.json quantization_config with
-- quant_method gptq at 2/4/8 bits or awq at 4, the layouts transformers loads through GPTQModel
-- and AutoAWQ): each linear's qweight / qzeros / scales (/ g_idx) become its
-- float weight at load (core/quant/gptq.c). The model then trains LoRA on that
-- base as LlamaFactory allows on GPTQ/AWQ models; full/freeze fine-tuning and
-- merging are refused as LlamaFactory refuses them on quantized models.
-- Kept-quantized GPTQ/AWQ kernels are not implemented: the base takes f32
-- (or bf16 with dtype bf16) memory, not 4 bits.
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
-- <module>.weight [out, in] f32; returns the new table and the count
function M.dequantize(q, params, where)
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
    local ok, w = pcall(function()
      if q.method == "gptq" then return lfl.gptq_dequantize(qw, qz, sc, params[mod .. ".g_idx"], q.group_size, q.v1,
        q.bits)
      end
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
  return out, #mods
end

return M
