-- OFT (Orthogonal Fine-Tuning) as PEFT 0.18's OFTConfig builds it for
-- LlamaFactory (finetuning_type oft): each targeted linear's input is rotated
-- block by block, x' = x @ blockdiag(R_1 .. R_r), then the frozen linear runs
-- on x'. R_i comes from the trainable vector oft_R.weight[i] (the strict upper
-- triangle of a b x b matrix M_i) as Q = M - M^T and the Cayley-Neumann series
-- R = I + 2Q + 2Q^2 + ... (PEFT's _cayley_batch, 5 terms by default).
-- Everything is composed from existing ops, so the backward is the autograd's:
-- Q is a gather of the parameters (and their negatives), R a few
-- batched b x b GEMMs, and the rotation one batched GEMM over the r blocks.
-- Saved and loaded in PEFT's layout (adapter_config.json with peft_type OFT,
-- adapter_model.safetensors with base_model.model.<module>.oft_R.weight [r, b(b-1)/2]).
local lfl = lfl
local fmt = string.format

local M = {}

local Adapter = {}
Adapter.__index = Adapter
M.Adapter = Adapter
local function is_adapter(x) return getmetatable(x) == Adapter end
M.is_adapter = is_adapter

Adapter.__tostring = function(ad)
  local n = 0
  for _, m in ipairs(ad.modules) do n = n + ad.weights[m]:numel() end
  return fmt("OFTAdapter(%s: %s, Cayley-Neumann %d terms%s, %d targets, %d params%s)", ad.name,
    ad.r > 0 and fmt("r=%d", ad.r) or fmt("oft_block_size=%d", ad.block_size), ad.neumann_terms,
    ad.dropout > 0 and fmt(", module_dropout %g", ad.dropout) or "", #ad.modules, n, ad.enabled and "" or ", disabled")
end

-- PEFT's adjust_oft_parameters: the divisor of in_features nearest to p
-- (the lower one on a tie), or in_features when p exceeds it
function M.adjust(in_features, p)
  if p >= in_features then return in_features end
  local hi = p
  while hi <= in_features and in_features % hi ~= 0 do hi = hi + 1 end
  local lo = p
  while lo > 1 and in_features % lo ~= 0 do lo = lo - 1 end
  if p - lo <= hi - p then return lo end
  return hi
end

-- (blocks, block size) of a linear with in_features inputs for the config's
-- r / oft_block_size (exactly one non-zero), adjusted as PEFT does, with a note
function M.layout(in_features, r, block_size, what)
  if r == 0 and block_size ~= 0 then
    if in_features % block_size ~= 0 or block_size > in_features then
      local b = M.adjust(in_features, block_size)
      print(fmt("[lfl] note: OFT: oft_block_size %d does not divide %s's %d inputs; adjusted to %d (as PEFT does)",
        block_size, what or "a layer", in_features, b))
      block_size = b
    end
    return math.floor(in_features / block_size), block_size
  elseif r ~= 0 and block_size == 0 then
    if in_features % r ~= 0 or r > in_features then
      local rr = M.adjust(in_features, r)
      print(fmt("[lfl] note: OFT: oft_rank %d does not divide %s's %d inputs; adjusted to %d (as PEFT does)",
        r, what or "a layer", in_features, rr))
      r = rr
    end
    return r, math.floor(in_features / r)
  end
  error(fmt("OFT: set exactly one of oft_rank (%d) and oft_block_size (%d) to a non-zero value "
    .. "(oft_rank x oft_block_size = in_features)", r, block_size), 0)
end

-- where each entry of a flat b x b skew matrix comes from in [0 | vec | -vec]
-- (0-based columns): the strict upper triangle (row-major, torch.triu_indices
-- order) is vec, its mirror -vec, the diagonal the leading zero
local index_cache = {}
local function skew_index(b)
  if index_cache[b] then return index_cache[b] end
  local n = b * (b - 1) / 2
  local idx = {}
  for c = 1, b * b do idx[c] = 0 end
  local k = 0
  for i = 0, b - 1 do
    for j = i + 1, b - 1 do
      k = k + 1
      idx[i * b + j + 1] = k
      idx[j * b + i + 1] = n + k
    end
  end
  local t = lfl.tensor(idx, "i64")
  index_cache[b] = t
  return t
end

-- the skew-symmetric blocks Q = M - M^T [r, b, b] of a parameter vec
-- [r, b(b-1)/2] (M's strict upper triangle), one gather (PEFT's
-- _pytorch_skew_symmetric); its backward scatters the gradient back
function M.skew(vec, b)
  local r = vec:size(1)
  local src = lfl.cat({lfl.zeros(r, 1, vec:dtype()), vec, -vec}, 2)
  return src:index_select(2, skew_index(b)):view(r, b, b)
end

-- R [r, b, b] from vec [r, b(b-1)/2]: PEFT's Cayley-Neumann series with
-- `terms` terms (I + 2Q + 2Q^2 + .. + 2Q^(k-1) + Q^k, k = max(3, terms - 1);
-- I + 2Q for 2 terms, I for 1)
function M.rotation(vec, b, terms)
  terms = terms or 5
  local r = vec:size(1)
  local Q = M.skew(vec, b)
  local R = lfl.eye(b, vec:dtype()):view(1, b, b):expand(r, b, b)
  if terms > 1 then
    R = R + Q * 2
    if terms > 2 then
      local Q2 = lfl.matmul(Q, Q)
      R = R + Q2 * 2
      local P = Q2
      for _ = 3, terms - 2 do
        P = lfl.matmul(P, Q)
        R = R + P * 2
      end
      P = lfl.matmul(P, Q)
      R = R + P
    end
  end
  return R
end

-- MultiplicativeDropoutLayer: in training int(p * r) of the r blocks, drawn at
-- random, are replaced by the identity (none when the adapter has one block)
local function drop_blocks(R, p)
  local r, b = R:size(1), R:size(2)
  if r == 1 then return R end
  local n = math.floor(p * r)
  if n == 0 then return R end
  -- a random permutation's first n blocks: ranks of uniform draws
  local u = lfl.rand(r)
  local vals = {}
  for i = 1, r do vals[i] = {u:_at(i), i} end
  table.sort(vals, function(a, c) return a[1] < c[1] end)
  local mask = {}
  for i = 1, r do mask[i] = 0 end
  for i = 1, n do mask[vals[i][2]] = 1 end
  local m = lfl.tensor(mask, R:dtype()):view(r, 1, 1)
  local eye = lfl.eye(b, R:dtype()):view(1, b, b)
  return R * (1 - m) + eye * m
end

-- x [..., in] rotated block by block: x'[.., i, :] = x[.., i, :] @ R_i
function M.rotate(x, R)
  local r, b = R:size(1), R:size(2)
  local sz = x:size()
  local n = x:numel() / (r * b)
  -- [n, r, b] -> [r, n, b]: one GEMM per block over all rows
  local xb = x:reshape(n, r, b):transpose(1, 2):contiguous()
  local y = lfl.matmul(xb, R)
  return y:transpose(1, 2):contiguous():view(sz)
end

-- training: grad enabled or the first pass of a checkpointed region (whose
-- recompute must draw the same blocks: the dropout draws from lfl's generator)
local function dropping(model, ad)
  return ad.dropout > 0 and (lfl.is_grad_enabled() or model.checkpointing == true)
end

function M.applies(model, mod)
  local ad = model.oft
  return ad ~= nil and ad.enabled and ad.weights[mod] ~= nil
end

-- the adapted linear `mod`: PEFT's oft.Linear.forward (x cast to the
-- parameter's dtype for the rotation and back, then the base linear)
function M.linear(model, mod, x, w, bias)
  local ad = model.oft
  local vec = ad.weights[mod]
  -- bf16 parameters (pure_bf16) rotate in f32: lfl's pointwise ops are f32/f64
  -- (PEFT would compute R and x R in bf16)
  if vec:dtype() == "bf16" or vec:dtype() == "f16" then vec = vec:to("f32") end
  local dt = x:dtype()
  local xr = dt ~= vec:dtype() and x:to(vec:dtype()) or x
  local R = M.rotation(vec, ad.blocks[mod][2], ad.neumann_terms)
  if dropping(model, ad) then R = drop_blocks(R, ad.dropout) end
  xr = M.rotate(xr, R)
  if xr:dtype() ~= dt then xr = xr:to(dt) end
  if model.int8_eval and w:dtype() == "int8" then
    -- an 8-bit base in eval mode: LLM.int8's matmul of the rotated input (PEFT's oft/bnb.py Linear8bitLt)
    local y = lfl.int8_linear_lt(xr:dtype() == "f32" and xr or xr:float(), w, bias and bias:float(), model.int8_eval)
    return y:dtype() == dt and y or y:to(dt)
  end
  return lfl.linear(xr, w, bias)
end

-- the short module names the adapter targets, sorted
local function shorts(ad)
  local out, seen = {}, {}
  for _, mod in ipairs(ad.modules) do
    local s = mod:match("([%w_]+)$")
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  table.sort(out)
  return out
end

local function new_adapter(opts)
  local ad = setmetatable({name = opts.name or "default", r = opts.r or 0, block_size = opts.block_size or 0,
    dropout = opts.dropout or 0, neumann_terms = opts.neumann_terms or 5, enabled = true,
    modules = {}, weights = {}, blocks = {}}, Adapter)
  if ad.dropout < 0 or ad.dropout >= 1 then error(fmt("OFT: module_dropout must be in [0, 1), got %g", ad.dropout), 0) end
  if ad.neumann_terms < 1 or ad.neumann_terms % 1 ~= 0 then
    error(fmt("OFT: num_cayley_neumann_terms must be a positive integer, got %s", tostring(ad.neumann_terms)), 0)
  end
  return ad
end

-- Attaches an OFT adapter (model.oft) with zero parameters (R = I: the model is
-- unchanged, as PEFT's init_weights=True). opts: rank (oft_rank, 0),
-- block_size (oft_block_size, 32), dropout (module_dropout, 0), target ("all"),
-- name, neumann_terms (5), dtype (parameter dtype, f32)
function M.add(model, opts)
  opts = opts or {}
  local r, b = opts.rank or 0, opts.block_size
  if b == nil then b = 32 end
  local ad = new_adapter{name = opts.name, r = r, block_size = b, dropout = opts.dropout, neumann_terms = opts.neumann_terms}
  if (r ~= 0) == (b ~= 0) or r < 0 or b < 0 then
    error(fmt("OFT: set exactly one of oft_rank (%d) and oft_block_size (%d) to a non-zero value "
      .. "(oft_rank x oft_block_size = in_features)", r, b), 0)
  end
  local mods = require("lfl.train.peft").target_modules(model, opts.target)
  for _, mod in ipairs(mods) do
    local in_f = model.params[mod .. ".weight"]:size(2)
    local nb, bs = M.layout(in_f, r, b, mod)
    local vec = lfl.zeros(nb, bs * (bs - 1) / 2)
    if opts.dtype and opts.dtype ~= "f32" then vec = vec:to(opts.dtype) end
    ad.modules[#ad.modules + 1] = mod
    ad.weights[mod] = vec:requires_grad()
    ad.blocks[mod] = {nb, bs}
  end
  ad.target = opts.target or "all"
  model.oft = ad
  return ad
end

-- PEFT key names and tensors of the adapter's parameters, in module order
function Adapter.parameters(ad)
  local names, params = {}, {}
  for _, mod in ipairs(ad.modules) do
    names[#names + 1] = "base_model.model." .. mod .. ".oft_R.weight"
    params[#params + 1] = ad.weights[mod]
  end
  return names, params
end

function M.parameters(x)
  local ad = is_adapter(x) and x or x.oft
  if not ad then return {}, {} end
  return ad:parameters()
end

-- save(model | adapter, dir, base_name): PEFT's layout, the config with every
-- field PEFT 0.18's OFTConfig writes
function M.save(model, dir, base_name)
  local ad = is_adapter(model) and model or model.oft
  if not ad then error("OFT save: the model has no OFT adapter", 2) end
  lfl.fs.mkdir(dir)
  local names, params = ad:parameters()
  -- a vision-language model's language model: PEFT's module names inside the wrapper (lfl.model.wrapper)
  local peft = require("lfl.train.peft")
  local tbl = {}
  for i, n in ipairs(names) do tbl[is_adapter(model) and n or peft.peft_key(model, n, "out")] = params[i]:detach() end
  lfl.safetensors.save(dir .. "/adapter_model.safetensors", tbl, {format = "pt"})
  local null = lfl.json.null
  local cfg = {peft_type = "OFT", task_type = "CAUSAL_LM",
    base_model_name_or_path = base_name or (not is_adapter(model) and model.path) or ad.base_model or "",
    r = ad.r, oft_block_size = ad.block_size, module_dropout = ad.dropout, target_modules = shorts(ad),
    bias = "none", block_share = false, coft = false, eps = 6e-5, exclude_modules = null, fan_in_fan_out = false,
    inference_mode = true, init_weights = true, layers_pattern = null, layers_to_transform = null,
    modules_to_save = null, revision = null, auto_mapping = null, peft_version = "0.18.1",
    use_cayley_neumann = true, num_cayley_neumann_terms = ad.neumann_terms}
  require("lfl.model").write_atomic(dir .. "/adapter_config.json", lfl.json.encode(cfg, {indent = true}))
  return dir
end

-- config fields lfl does not implement, with the values it accepts
local function refuse(dir, cfg)
  local where = dir .. "/adapter_config.json"
  local checks = {
    {"coft", false, "constrained OFT (coft)"}, {"block_share", false, "block_share (one block shared by all)"},
    {"fan_in_fan_out", false, "fan_in_fan_out (Conv1D-style transposed weights)"},
    {"use_cayley_neumann", true, "the exact Cayley transform (use_cayley_neumann false)"},
  }
  for _, c in ipairs(checks) do
    local v = cfg[c[1]]
    if v ~= nil and v ~= lfl.json.null and v ~= c[2] then
      error(fmt("%s: %s is not supported (%s = %s; lfl implements %s = %s)", where, c[3], c[1], tostring(v), c[1],
        tostring(c[2])), 0)
    end
  end
  if cfg.bias ~= nil and cfg.bias ~= "none" then
    error(fmt("%s: bias = %s is not supported (lfl trains no biases with OFT: bias = none)", where, tostring(cfg.bias)), 0)
  end
  for _, k in ipairs({"modules_to_save", "layers_to_transform", "layers_pattern", "exclude_modules"}) do
    local v = cfg[k]
    if v ~= nil and v ~= lfl.json.null and not (type(v) == "table" and next(v) == nil) then
      error(fmt("%s: %s is not supported", where, k), 0)
    end
  end
end

-- load(model, dir, name): a PEFT OFT folder as adapter `name`, attached as
-- model.oft (enabled); shapes are checked against the model and the config
function M.load(model, dir, name)
  local f = io.open(dir .. "/adapter_config.json", "rb")
  if not f then error(dir .. ": no adapter_config.json", 0) end
  local cfg = lfl.json.decode(f:read("*a"), dir .. "/adapter_config.json")
  f:close()
  if cfg.peft_type ~= "OFT" then error(fmt("%s: peft_type %s is not OFT", dir, tostring(cfg.peft_type)), 0) end
  if cfg.oft_block_size == nil then
    error(fmt("%s/adapter_config.json: no oft_block_size: an OFT adapter from PEFT before 0.14 (another "
      .. "parametrisation), which PEFT itself no longer loads", dir), 0)
  end
  refuse(dir, cfg)
  local r, b = cfg.r or 0, cfg.oft_block_size
  if type(r) ~= "number" or type(b) ~= "number" then
    error(fmt("%s/adapter_config.json: r and oft_block_size must be numbers", dir), 0)
  end
  local ad = new_adapter{name = name, r = r, block_size = b,
    dropout = type(cfg.module_dropout) == "number" and cfg.module_dropout or 0,
    neumann_terms = type(cfg.num_cayley_neumann_terms) == "number" and cfg.num_cayley_neumann_terms or 5}
  ad.base_model = type(cfg.base_model_name_or_path) == "string" and cfg.base_model_name_or_path or nil
  local ts = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
  local mods, keys = {}, {}
  for k in pairs(ts) do keys[#keys + 1] = k end
  table.sort(keys) -- the first bad key in a stable order
  local peft = require("lfl.train.peft")
  for _, k in ipairs(keys) do
    local v = ts[k]
    local mod = peft.peft_key(model, k, "in"):match("^base_model%.model%.(.+)%.oft_R%.weight$")
    if not mod then
      error(fmt("%s: unexpected key '%s' in adapter_model.safetensors (lfl loads oft_R weights only)", dir, k), 0)
    end
    local w = model.params[mod .. ".weight"]
    if not w or w:dim() ~= 2 then error(fmt("%s: adapter targets '%s', which this model does not have", dir, mod), 0) end
    local nb, bs = M.layout(w:size(2), r, b, mod)
    local s = v:size()
    if #s ~= 2 or s[1] ~= nb or s[2] ~= bs * (bs - 1) / 2 then
      error(fmt("%s: %s has oft_R.weight [%s], expected [%d,%d] (%d blocks of %d for %d inputs)", dir, k,
        table.concat(s, ","), nb, bs * (bs - 1) / 2, nb, bs, w:size(2)), 0)
    end
    mods[#mods + 1] = mod
    ad.weights[mod] = v:float():contiguous()
    ad.blocks[mod] = {nb, bs}
  end
  table.sort(mods)
  ad.modules = mods
  model.oft = ad
  return ad
end

-- W' = W @ blockdiag(R)^T (PEFT's merge: the rotation folded into the
-- weight, so the plain linear gives the adapted output); the adapter is then
-- removed. A 16-bit weight is merged in f32 and stored back in its dtype.
function M.merge(model)
  local ad = model.oft
  if not ad then return model end
  lfl.no_grad(function()
    for _, mod in ipairs(ad.modules) do
      local key = mod .. ".weight"
      local w0 = model.params[key]
      local dt = w0:dtype()
      if dt == "nf4" or dt == "fp4" or dt == "int8" then
        error(fmt("merge: %s is bitsandbytes %s: an OFT adapter cannot be merged into a quantized model", key, dt), 0)
      end
      local nb, bs = ad.blocks[mod][1], ad.blocks[mod][2]
      local R = M.rotation(ad.weights[mod]:float(), bs, ad.neumann_terms)
      -- rows of W rotated blockwise: W'[:, i] = W[:, i] @ R_i^T, i.e. rotate(W, R^T)
      local wn = M.rotate(w0:float(), R:transpose(2, 3):contiguous())
      -- a GPTQ/AWQ weight kept quantized (lfl.model.ptq) is merged into its dequantized float weight
      if dt == "gptq4" then dt = (model.dtype == "bf16" or model.dtype == "f16") and model.dtype or "f32" end
      model.params[key] = dt ~= "f32" and wn:to(dt) or wn:contiguous()
    end
  end)
  model.oft = nil
  return model
end

return M
