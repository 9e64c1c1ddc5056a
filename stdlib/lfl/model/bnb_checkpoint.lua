-- Pre-quantized bitsandbytes checkpoints: config.json's quantization_config
-- with quant_method "bitsandbytes", which is what transformers' save_pretrained
-- writes for a model loaded with load_in_4bit / load_in_8bit (the Hub's
-- "-bnb-4bit" models). Each quantized linear's saved state becomes lfl's own
-- NF4/FP4 or LLM.int8 tensor, kept quantized: the model is then the QLoRA base
-- that quantization_bit would have made, and trains adapters only.
-- 4-bit: <mod>.weight (u8, the packed codes), .weight.absmax (f32, or u8 with
-- double quantization beside .weight.nested_absmax / .weight.nested_quant_map),
-- .weight.quant_map and .weight.quant_state.bitsandbytes__<nf4|fp4> (u8 bytes
-- of a JSON object: quant_type, blocksize, dtype, shape, nested_blocksize,
-- nested_offset). 8-bit: <mod>.weight (int8) and <mod>.SCB (f32 per row),
-- with an optional <mod>.weight_format.
local fmt = string.format

local M = {}

-- the model-level options as lfl's quantize table ({bits, type, double_quant})
-- when cfg holds a bitsandbytes quantization_config, else nil
function M.config(cfg, where)
  local q = cfg.quantization_config
  if type(q) ~= "table" or q.quant_method ~= "bitsandbytes" then return nil end
  local function bad(msg) error(fmt("%s: quantization_config: %s", where, msg), 0) end
  local four = q.load_in_4bit == true or q._load_in_4bit == true
  local eight = q.load_in_8bit == true or q._load_in_8bit == true
  if four == eight then bad("a bitsandbytes checkpoint says load_in_4bit or load_in_8bit (exactly one)") end
  if eight then
    if q.llm_int8_has_fp16_weight then
      bad("llm_int8_has_fp16_weight: true keeps the float weight; lfl reads 8-bit checkpoints with int8 codes only")
    end
    return {bits = 8, type = "int8", threshold = q.llm_int8_threshold or 6.0}
  end
  local storage = q.bnb_4bit_quant_storage or "uint8"
  if storage ~= "uint8" then
    bad(fmt("bnb_4bit_quant_storage '%s' is not supported (uint8, the default, only)", tostring(storage)))
  end
  local t = q.bnb_4bit_quant_type or "fp4" -- BitsAndBytesConfig's default
  if t ~= "nf4" and t ~= "fp4" then bad(fmt("bnb_4bit_quant_type '%s' is not nf4 or fp4", tostring(t))) end
  return {bits = 4, type = t, double_quant = q.bnb_4bit_use_double_quant == true,
          compute_dtype = q.bnb_4bit_compute_dtype}
end

local function bytes_of(t)
  local c, out = t:contiguous(), {}
  for i = 1, c:numel() do out[i] = string.char(c:_at(i)) end
  return table.concat(out)
end

-- a linear's 4-bit state: the lfl tensor, checked against the model-level q
local function load4(q, mod, params, used, where)
  local w = mod .. ".weight"
  local key, kind
  for _, k in ipairs({"nf4", "fp4"}) do
    if params[w .. ".quant_state.bitsandbytes__" .. k] then key, kind = w .. ".quant_state.bitsandbytes__" .. k, k end
  end
  local function bad(msg) error(fmt("%s: %s: %s", where, w, msg), 0) end
  local ok, st = pcall(lfl.json.decode, bytes_of(params[key]))
  if not ok or type(st) ~= "table" then bad("its quant_state is not a JSON object: " .. tostring(st)) end
  if st.quant_type ~= kind then bad(fmt("quant_state says quant_type %s under the name of %s", tostring(st.quant_type), kind)) end
  if kind ~= q.type then
    bad(fmt("is %s but quantization_config says %s (a checkpoint mixing 4-bit types is not supported)", kind, q.type))
  end
  if st.blocksize ~= 64 then
    bad(fmt("blocksize %s: lfl's 4-bit kernels use bitsandbytes' blocks of 64 only", tostring(st.blocksize)))
  end
  if type(st.shape) ~= "table" or #st.shape ~= 2 then bad("quant_state has no 2-D shape") end
  local nested = params[w .. ".nested_absmax"] ~= nil
  if nested ~= (st.nested_offset ~= nil) then bad("nested_absmax and quant_state's nested_offset disagree") end
  if nested ~= q.double_quant then
    bad(fmt("%s double quantization but quantization_config says bnb_4bit_use_double_quant: %s",
      nested and "has" or "has no", tostring(q.double_quant)))
  end
  if nested and st.nested_blocksize ~= 256 then
    bad(fmt("nested_blocksize %s: lfl's double quantization uses blocks of 256 only", tostring(st.nested_blocksize)))
  end
  for _, part in ipairs({"absmax", "quant_map"}) do
    if not params[w .. "." .. part] then bad(fmt("the checkpoint has no %s.%s", w, part)) end
  end
  if nested and not params[w .. ".nested_quant_map"] then bad(fmt("the checkpoint has no %s.nested_quant_map", w)) end
  local r
  ok, r = pcall(lfl.q4_from_state, kind, st.shape, params[w], params[w .. ".quant_map"], params[w .. ".absmax"],
    nested and params[w .. ".nested_absmax"] or nil, nested and params[w .. ".nested_quant_map"] or nil,
    nested and st.nested_offset or nil)
  if not ok then bad(tostring(r)) end
  for _, part in ipairs({"", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"}) do used[w .. part] = true end
  used[key] = true
  -- bitsandbytes dequantizes to quant_state.dtype before the matmul: an f16/bf16 one rounds each weight
  -- once more there, which lfl's f32 tiles do not (a relative 2^-9 / 2^-12 per weight at most)
  return r, st.dtype
end

-- params (name -> tensor) with every quantized linear's saved state turned into
-- its lfl NF4/FP4/int8 weight; returns the new table, the count of linears and
-- the 4-bit checkpoints' stored dtype (quant_state.dtype) or nil
function M.convert(q, params, where)
  local out, used, mods, dtype = {}, {}, {}, nil
  for name in pairs(params) do
    local mod = q.bits == 4 and name:match("^(.*)%.weight%.quant_state%.bitsandbytes__%w+$")
      or q.bits == 8 and name:match("^(.*)%.SCB$")
    if mod then mods[#mods + 1] = mod end
  end
  table.sort(mods)
  if #mods == 0 then
    error(fmt("%s: quantization_config says bitsandbytes %d-bit but no tensor holds a bitsandbytes state (%s)", where,
      q.bits, q.bits == 4 and "weight.quant_state.bitsandbytes__nf4|fp4" or "SCB"), 0)
  end
  for _, mod in ipairs(mods) do
    if q.bits == 4 then
      local dt
      out[mod .. ".weight"], dt = load4(q, mod, params, used, where)
      dtype = dtype or dt
    else
      local w, scb = params[mod .. ".weight"], params[mod .. ".SCB"]
      if not w then error(fmt("%s: %s.SCB has no %s.weight", where, mod, mod), 0) end
      if w:dtype() ~= "int8" then
        error(fmt("%s: %s.weight is %s; an 8-bit bitsandbytes checkpoint stores it as I8", where, mod, w:dtype()), 0)
      end
      local ok, r = pcall(lfl.int8_from_state, w, scb)
      if not ok then error(fmt("%s: %s.weight: %s", where, mod, tostring(r)), 0) end
      out[mod .. ".weight"] = r
      used[mod .. ".weight"], used[mod .. ".SCB"], used[mod .. ".weight_format"] = true, true, true
    end
  end
  -- in name order: the first broken part reported does not depend on table order
  local names = {}
  for name in pairs(params) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local t = params[name]
    if not used[name] then
      -- a bitsandbytes part without its linear is a broken checkpoint, not a parameter
      if name:match("%.quant_state%.") or name:match("%.absmax$") or name:match("%.quant_map$")
        or name:match("%.SCB$") or name:match("%.weight_format$") then
        error(fmt("%s: %s is a bitsandbytes state tensor without the rest of its linear's state", where, name), 0)
      end
      if t:dtype() == "int8" then
        error(fmt("%s: %s is an int8 tensor without bitsandbytes row scales (SCB)", where, name), 0)
      end
      out[name] = t
    end
  end
  return out, #mods, dtype
end

-- A training run on a saved bitsandbytes model: LlamaFactory's rules for a
-- quantized base (what args.lua checks for quantization_bit, known only once
-- the checkpoint is read), and the line that says what the base is.
function M.check_training(model, a)
  local p = model.prequantized
  if not p or not model.quantization then return end
  local q, name = model.quantization, a.model_name_or_path
  local what = q.bits == 8 and "8-bit LLM.int8" or fmt("4-bit %s%s", q.type, q.double_quant and " with double quantization" or "")
  local function bad(key, msg) error(fmt("%s: %s is a saved bitsandbytes model (%s): %s", key, name, what, msg), 0) end
  if a.finetuning_type ~= "lora" and a.finetuning_type ~= "oft" then
    bad("finetuning_type", fmt("its quantized weights train LoRA or OFT adapters only (LlamaFactory: 'Quantization is "
      .. "only compatible with the LoRA or OFT method'); this run's is %s", tostring(a.finetuning_type)))
  end
  if a.resize_vocab then bad("resize_vocab", "the embeddings of a quantized model cannot be resized") end
  if a.pissa_init then bad("pissa_init", "PiSSA cannot initialize from a quantized base") end
  if a.adapter_name_or_path and tostring(a.adapter_name_or_path):find(",", 1, true) then
    bad("adapter_name_or_path", "a quantized model takes a single adapter (the others would merge into the quantized "
      .. "weights); merge them first (lfl export)")
  end
  if a.create_new_adapter and a.adapter_name_or_path then
    bad("create_new_adapter", "true merges adapter_name_or_path into the base, which a quantized base cannot take")
  end
  if a.quantization_bit then
    print(fmt("[lfl] quantization_bit: %d is what %s already is; its saved state is used as stored (LlamaFactory: "
      .. "quantization_bit has no effect on a pre-quantized model)", a.quantization_bit, name))
  end
  print(fmt("[lfl] %s: a saved bitsandbytes model (%s); its %d linears stay quantized (the QLoRA base)%s", name, what,
    p.linears, p.dtype and p.dtype ~= "float32" and fmt("; bitsandbytes rounds their dequantized values to %s "
      .. "before each product, lfl keeps them in f32", p.dtype) or ""))
end

return M
