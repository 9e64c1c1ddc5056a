-- GPTQ export (LlamaFactory's export_quantization_bit: transformers' GPTQConfig
-- through optimum / GPTQModel): calibration windows from a text file, each
-- decoder layer's linears quantized in turn from the Hessian of their inputs
-- (core/quant/gptq_quantize.c), the next layer calibrated on the quantized
-- layer's outputs, and the model written in the GPTQ v1 ("gptq") layout with a
-- quantization_config transformers and lfl.model.ptq load.
--
-- What matches the reference: GPTQConfig's defaults as LlamaFactory leaves them
-- (group_size 128, damp_percent 0.1, desc_act False, sym True, true_sequential),
-- optimum's block-by-block order (a linear's Hessian comes from the block's
-- forward with the linears before it already quantized; the next block's input
-- is the quantized block's output), LlamaFactory's _get_quantization_dataset
-- (nsamples windows of maxlen tokens from random rows longer than maxlen, 100
-- tries a window). What does not: the windows come from lfl's RNG seeded with
-- `seed` (LlamaFactory's Python random is not seeded), the calibration runs in
-- f32 (LlamaFactory forces f16 on the GPU), and GPTQModel 5's act_group_aware
-- reordering is not done. Non-quantized tensors are written in f16, as
-- LlamaFactory's export of a GPTQ model is.
local fmt = string.format

local M = {}

M.DEFAULTS = {group_size = 128, damp_percent = 0.1}

-- LlamaFactory's _get_quantization_dataset: nsamples windows [1, maxlen] of
-- token ids. tok: a tokenizer (encode with its special tokens, as tokenizer(text) does)
function M.calibration(path, tok, nsamples, maxlen, seed)
  if not lfl.fs.exists(path) or lfl.fs.isdir(path) then
    error(fmt("export_quantization_dataset: %s is not a file (lfl reads a local .json/.jsonl/.csv/.txt file with "
      .. "a text column; Hub datasets are not fetched for GPTQ)", path), 0)
  end
  local recs = require("lfl.data").read_records(path, "text")
  if #recs == 0 then error(fmt("export_quantization_dataset: %s has no rows", path), 0) end
  local saved_a, saved_b = lfl.rng_state()
  lfl.manual_seed(seed or 42)
  local function randint(lo, hi) -- inclusive, as Python's random.randint
    local u = lfl.rand(1):item()
    return math.min(hi, lo + math.floor(u * (hi - lo + 1)))
  end
  local cache, out = {}, {}
  for s = 1, nsamples do
    local ids
    for try = 1, 101 do
      if try > 100 then
        lfl.rng_state(saved_a, saved_b)
        error(fmt("export_quantization_dataset: %s: no row found with more than %d tokens in 100 tries; decrease "
          .. "export_quantization_maxlen", path, maxlen), 0)
      end
      local i = randint(1, #recs)
      local text = recs[i].text
      if type(text) ~= "string" then
        lfl.rng_state(saved_a, saved_b)
        error(fmt("export_quantization_dataset: %s: row %d has no string 'text' column", path, i), 0)
      end
      cache[i] = cache[i] or tok:encode(text, {add_special_tokens = true})
      if #cache[i] > maxlen then ids = cache[i]; break end
    end
    local start = randint(0, #ids - maxlen - 1)
    local w = {}
    for k = 1, maxlen do w[k] = ids[start + k] end
    out[s] = lfl.tensor(w, "i64"):view(1, maxlen)
  end
  lfl.rng_state(saved_a, saved_b)
  return out
end

local Stop = {}

-- Quantizes the decoder linears of every layer of m in place (their weights
-- become the dequantized GPTQ weights) over the calibration windows `samples`
-- ({[1, T] i64}). opts: bits, group_size, damp_percent, log (function(msg)).
-- Returns {[module] = {qweight, qzeros, scales, g_idx}} and the module names in order.
function M.quantize(m, samples, opts)
  local a = m.arch
  if a.moe or a.mla or a.fused_qkv or a.fused_gate_up then
    error(fmt("export_quantization_bit: GPTQ of %s is not implemented in lfl (%s); it quantizes decoders with "
      .. "separate q/k/v and gate/up projections", m.config.model_type or "this model",
      a.moe and "mixture-of-experts layers" or a.mla and "multi-head latent attention" or "fused projections"), 0)
  end
  if m.mod then
    error("export_quantization_bit: GPTQ of a mixture-of-depths model is not implemented in lfl (its routed layers "
      .. "run on the chosen tokens only)", 0)
  end
  if m.arch.chunk then
    error("export_quantization_bit: GPTQ of a model with chunked attention (attention_chunk_size) is not implemented "
      .. "in lfl", 0)
  end
  if m.wrap then
    error("export_quantization_bit: GPTQ of an image-text checkpoint is not implemented in lfl (its language model "
      .. "sits under the wrapper's names)", 0)
  end
  local bits, gs = opts.bits, opts.group_size or M.DEFAULTS.group_size
  local damp = opts.damp_percent or M.DEFAULTS.damp_percent
  local log = opts.log or function() end
  local dec = require("lfl.model.decoder")
  local result, order = {}, {}
  lfl.no_grad(function()
    local xs, runs = {}, {}
    for i, ids in ipairs(samples) do xs[i], runs[i] = dec.layerwise(m, ids) end
    local n = #samples
    for l = 1, a.layers do
      local t0 = lfl.sys.clock()
      local prefix = "model.layers." .. (l - 1) .. "."
      -- the layer's linears in the order its forward calls them, grouped by
      -- their shared input (q/k/v, gate/up): one Hessian a group
      local groups, last_x = {}, nil
      m.linear_hook = function(base, x)
        if base:sub(1, #prefix) ~= prefix then return end
        if rawequal(x, last_x) then
          local g = groups[#groups]
          g[#g + 1] = base
        else
          groups[#groups + 1] = {base}
          last_x = x
        end
      end
      local ok, err = pcall(runs[1], l, xs[1])
      m.linear_hook = nil
      if not ok then error(err, 0) end
      for _, g in ipairs(groups) do
        local H
        m.linear_hook = function(base, x)
          if base ~= g[1] then return end
          local X = x:reshape(-1, x:size(x:dim())):to("f32")
          local XtX = lfl.matmul(X:transpose(1, 2), X)
          H = H and H + XtX or XtX
          error(Stop, 0) -- the rest of the layer is not needed for this group
        end
        for i = 1, n do
          local ok2, e2 = pcall(runs[i], l, xs[i])
          if not ok2 and e2 ~= Stop then m.linear_hook = nil; error(e2, 0) end
        end
        m.linear_hook = nil
        -- optimum's add_batch: H = 2 X^T X / nsamples (one window a batch)
        H = H * (2 / n)
        for _, base in ipairs(g) do
          local wname = base .. ".weight"
          local w = m.params[wname]
          local ok3, r = pcall(lfl.gptq_quantize, w:dtype() == "f32" and w:contiguous() or w:to("f32"), H, bits, gs,
            damp)
          if not ok3 then error(fmt("export_quantization_bit: %s: %s", base, tostring(r)), 0) end
          m.params[wname] = w:dtype() == "f32" and r.weight or r.weight:to(w:dtype())
          result[base] = {qweight = r.qweight, qzeros = r.qzeros, scales = r.scales, g_idx = r.g_idx}
          order[#order + 1] = base
        end
      end
      for i = 1, n do xs[i] = runs[i](l, xs[i]) end
      local nl = 0
      for _, g in ipairs(groups) do nl = nl + #g end
      log(fmt("GPTQ layer %d/%d: %d linears in %.1fs", l, a.layers, nl, lfl.sys.clock() - t0))
    end
  end)
  return result, order
end

-- the quantization_config a GPTQConfig(bits, dataset) export carries (optimum's to_dict, the keys loaders read)
function M.quantization_config(bits, group_size, damp, maxlen)
  return {quant_method = "gptq", bits = bits, group_size = group_size, damp_percent = damp, desc_act = false,
    sym = true, true_sequential = true, static_groups = false, checkpoint_format = "gptq",
    block_name_to_quantize = "model.layers", model_seqlen = maxlen, batch_size = 1, cache_block_outputs = true}
end

-- writes m (quantized by M.quantize, `packed` its result) to dir: the packed
-- linears in place of their weights, the other floating tensors in f16
function M.save(m, dir, packed, qcfg, opts)
  local function tensors(names, params)
    local out_names, out = {}, {}
    local used = {}
    for _, name in ipairs(names) do
      local mod = name:match("^(.*)%.weight$")
      local p = mod and packed[mod]
      if p then
        used[mod] = true
        for _, part in ipairs({"qweight", "qzeros", "scales", "g_idx"}) do
          out_names[#out_names + 1] = mod .. "." .. part
          out[mod .. "." .. part] = p[part]
        end
      else
        local t = params[name]
        local dt = t:dtype()
        out_names[#out_names + 1] = name
        out[name] = (dt == "f32" or dt == "bf16" or dt == "f64") and t:to("f16") or t
      end
    end
    for mod in pairs(packed) do
      if not used[mod] then
        error(fmt("export_quantization_bit: %s.weight is not among the tensors written (the family renames it)", mod), 0)
      end
    end
    return out_names, out
  end
  return m:save(dir, {shard_size = opts.shard_size, tensors = tensors,
    config = {quantization_config = qcfg, torch_dtype = "float16"}})
end

return M
