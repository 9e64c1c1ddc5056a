-- Parameter-efficient methods on a Model: LoRA (rsLoRA, DoRA, LoRA+ groups),
-- freeze and full fine-tuning selection; adapters saved and loaded in PEFT's
-- layout (adapter_config.json + adapter_model.safetensors) and merged for export.
-- An adapter is an lfl.Adapter userdata (core/model/, lua/l_model.c): its
-- factors per target module live in C; a model holds several by name, one of
-- them active (model.lora), and ad:get(module) gives A, B (and DoRA's magnitude).
local lfl = lfl
local fmt, sqrt = string.format, math.sqrt

local M = {}

-- A base weight kept in 16 bits (a bf16 model) is widened to f32 only one
-- block of rows at a time (BLOCK_ELEMS values) where a row-wise f32 result is needed.
local HALF = {bf16 = true, f16 = true}
local Q4 = {nf4 = true, fp4 = true, int8 = true} -- QLoRA's 4-bit and 8-bit (LLM.int8) base weights
-- GGUF block weights kept as the file stores them (lfl.model.gguf, gguf_blocks)
local GGML = {q4_0 = true, q4_1 = true, q5_0 = true, q5_1 = true, q8_0 = true, q4_k = true, q5_k = true, q6_k = true}
-- GPTQ/AWQ 4-bit weights kept quantized (lfl.model.ptq)
local GPTQ = {gptq4 = true}
local BLOCK_ELEMS = 262144

local Adapter = lfl._model.Adapter
local function is_adapter(x) return getmetatable(x) == Adapter end
M.is_adapter = is_adapter

-- How a model's modules are named in PEFT's files, dir "out" (decoder -> file)
-- or "in": the family's own module names (arch.peft_module: Llama 4's
-- feed_forward.*) inside an image-text wrapper's (lfl.model.wrapper). nil when
-- they are the decoder's.
function M.peft_names(model, dir)
  local W = model.wrap and require("lfl.model.wrapper")
  local ok, fam = pcall(require("lfl.model.registry").arch, model.config and model.config.model_type)
  local pm = ok and fam and fam.peft_module
  if not W and not pm then return nil end
  if dir == "out" then
    return function(mod)
      if pm then mod = pm(mod, "out") end
      return W and W.module_out(mod) or mod
    end
  end
  return function(mod)
    if W then mod = W.module_in(mod) end
    return pm and pm(mod, "in") or mod
  end
end

-- an adapter file's key "base_model.model.<module>.<part>" in PEFT's naming
-- (dir "out") or the decoder's ("in")
function M.peft_key(model, key, dir)
  local fn = M.peft_names(model, dir)
  return fn and require("lfl.model.wrapper").adapter_key(key, fn) or key
end

Adapter.__tostring = function(ad)
  return fmt("Adapter(%s: LoRA r=%d alpha=%g scaling=%g%s%s%s, %d targets, %d params%s)", ad.name, ad.r, ad.alpha,
    ad.scaling, ad.use_rslora and ", rsLoRA" or "", ad.use_dora and ", DoRA" or "",
    ad.dropout > 0 and fmt(", dropout %g", ad.dropout) or "", #ad, ad:num_parameters(),
    ad.merged and ", merged" or (ad.enabled and "" or ", disabled"))
end

-- PEFT key names and tensors of an adapter's factors, sorted by module
function Adapter.methods.parameters(ad)
  local names, params = {}, {}
  for _, mod in ipairs(ad.modules) do
    local A, B, mag = ad:get(mod)
    names[#names + 1] = "base_model.model." .. mod .. ".lora_A.weight"; params[#params + 1] = A
    names[#names + 1] = "base_model.model." .. mod .. ".lora_B.weight"; params[#params + 1] = B
    if mag then names[#names + 1] = "base_model.model." .. mod .. ".lora_magnitude_vector"; params[#params + 1] = mag end
  end
  -- modules trained whole next to the adapter (PEFT's modules_to_save: M.add_modules_to_save)
  for i, n in ipairs(ad.extra_names or {}) do
    names[#names + 1] = "base_model.model." .. n; params[#params + 1] = ad.extra_params[i]
  end
  return names, params
end

function Adapter.methods.save(ad, dir, base_name) return M.save_adapter(ad, dir, base_name) end

-- Output heads are never LoRA targets (LlamaFactory's find_all_linear_modules
-- drops lm_head, chatglm's output_layer and internlm2's output).
local HEADS = {lm_head = true, output = true, output_layer = true}

-- Is this parameter the weight of a linear layer? Linears are the 2-D
-- weights that are not embeddings (embed_tokens, tok_embeddings, wte, wpe)
-- or norms (Cohere's per-head q_norm / k_norm weights are 2-D): other norms
-- and biases are 1-D.
local function linear_module(model, name)
  local mod = name:match("^(.*)%.weight$")
  if not mod or HEADS[mod] then return nil end
  local short = mod:match("([%w_]+)$")
  if not short or short:find("embed", 1, true) or short:find("norm", 1, true) or short == "wte" or short == "wpe" then
    return nil
  end
  local t = model.params[name]
  if not t or #t:size() ~= 2 then return nil end
  return mod, short
end

-- the distinct short names of the linears "all" covers, in first-seen order
function M.all_linear_names(model)
  local out, seen = {}, {}
  for _, name in ipairs(model.names) do
    local _, short = linear_module(model, name)
    if short and not seen[short] then seen[short] = true; out[#out + 1] = short end
  end
  return out
end

-- "all" found names and the registry's list for the family must agree; a
-- mismatch (an unusual checkpoint or a stale recipes/models file) is printed
local function cross_check(model, found)
  local okr, reg = pcall(require, "lfl.registry")
  if not okr then return end
  local okl, list = pcall(reg.lora_targets, model)
  if not okl or not list then return end
  local want, have = {}, {}
  for _, n in ipairs(list) do want[n] = true end
  for n in pairs(found) do have[n] = true end
  local missing, extra = {}, {}
  for _, n in ipairs(list) do if not have[n] then missing[#missing + 1] = n end end
  for n in pairs(have) do if not want[n] then extra[#extra + 1] = n end end
  if #missing > 0 or #extra > 0 then
    table.sort(extra)
    local f = reg.lookup(model)
    print(fmt("[lfl] note: lora_target all: this %s model's linears differ from the registry's %s list (%s)%s%s",
      tostring(model.arch and model.arch.name), f and f.family or "?", table.concat(list, ","),
      #missing > 0 and ("; missing " .. table.concat(missing, ",")) or "",
      #extra > 0 and ("; extra " .. table.concat(extra, ",")) or ""))
  end
end

-- Module paths ("model.layers.0.self_attn.q_proj") of the linears matching targets:
-- "all" = every linear but the output head (cross-checked with the model
-- registry's list for the family); or a list / comma string of short names.
function M.target_modules(model, target)
  local want = {}
  local all = target == nil or target == "all" or target == "all-linear"
  if not all then
    local list = type(target) == "string" and {} or target
    if type(target) == "string" then for n in target:gmatch("[^,%s]+") do list[#list + 1] = n end end
    for _, n in ipairs(list) do want[n] = true end
  end
  local out, found = {}, {}
  -- modules PEFT cannot adapt in the family's checkpoint layout (arch.lora_skip patterns: Llama 4's experts, router)
  local skip = model.arch and model.arch.lora_skip or {}
  for _, name in ipairs(model.names) do
    local mod, short = linear_module(model, name)
    for _, pat in ipairs(skip) do if mod and mod:find(pat) then mod = nil end end
    if mod and (all or want[short]) then
      out[#out + 1] = mod
      found[short] = true
    end
  end
  for n in pairs(want) do
    if not found[n] then error(fmt("lora_target: no linear layer named '%s' in this %s model", n, model.arch.name), 0) end
  end
  if all then cross_check(model, found) end
  return out
end

-- Attaches LoRA adapters. opts: rank (8), alpha (2*rank), dropout (0),
-- target ("all"), use_rslora, use_dora, init ("default"|"gaussian"|"pissa"),
-- pissa_iter (16; -1 = exact SVD)
function M.add_lora(model, opts)
  opts = opts or {}
  local r = opts.rank or 8
  local ad = lfl.adapter.new{name = opts.name or "default", r = r, alpha = opts.alpha or 2 * r,
    use_rslora = opts.use_rslora, use_dora = opts.use_dora, dropout = opts.dropout or 0}
  ad.target = opts.target or "all"
  ad.peft_out = M.peft_names(model, "out") -- saved under PEFT's module names (Llama 4, image-text wrappers)
  local mods = M.target_modules(model, opts.target)
  if opts.layers then
    -- LLaMA Pro: only the expanded blocks' modules; the config then names them in
    -- full, as PEFT writes the explicit module list LlamaFactory passes it
    local kept = {}
    for _, mod in ipairs(mods) do
      local l = mod:match("^model%.layers%.(%d+)%.")
      if l and opts.layers[tonumber(l)] then kept[#kept + 1] = mod end
    end
    mods, ad.full_target_names = kept, true
  end
  for _, mod in ipairs(mods) do
    local w = model.params[mod .. ".weight"]
    local s = w:size()
    local out_f, in_f = s[1], s[2]
    local a = lfl.zeros(r, in_f)
    if opts.init == "gaussian" then a:normal_(0, 1 / r) else a:uniform_(-1 / sqrt(in_f), 1 / sqrt(in_f)) end
    local b = lfl.zeros(out_f, r)
    -- opts.dtype "bf16" (pure_bf16 training) stores A and B in bf16 too
    if opts.dtype and opts.dtype ~= "f32" then a, b = a:to(opts.dtype), b:to(opts.dtype) end
    local mag
    if ad.use_dora then mag = lfl.no_grad(function() return M.weight_row_norm(w) end):requires_grad() end
    ad:set(mod, a:requires_grad(), b:requires_grad(), mag)
  end
  model.lora = ad -- attached and active
  if opts.init == "pissa" then M.pissa_init(model, opts.pissa_iter) end
  return ad
end

-- ||W||_2 over the input dim, one value per output row
function M.row_norm(w) return (w * w):sum(2):sqrt() end

-- ||W + scaling B A||_row in f32 (B, A optional). A 16-bit W is widened one
-- block of rows at a time, so a bf16 base is never held in f32 as a whole.
function M.weight_row_norm(w, B, A, scaling)
  local function part(wb, bb)
    local x = wb:float()
    if bb then x = x + lfl.matmul(bb:float(), A:float()) * scaling end
    return M.row_norm(x)
  end
  local q4 = Q4[w:dtype()] or GGML[w:dtype()] or GPTQ[w:dtype()]
  if not HALF[w:dtype()] and not q4 then return part(w, B) end
  local rows, cols = w:size(1), w:size(2)
  local nb = math.max(1, math.floor(BLOCK_ELEMS / math.max(1, cols)))
  if nb >= rows and not q4 then return part(w, B) end
  local parts = {}
  for r0 = 1, rows, nb do
    local n = math.min(nb, rows - r0 + 1)
    -- a 4-bit/8-bit (QLoRA), GPTQ/AWQ or GGUF block weight is dequantized a block of rows at a time
    local wb = q4 and lfl.q4_rows(w, r0, n) or w:narrow(1, r0, n)
    parts[#parts + 1] = part(wb, B and B:narrow(1, r0, n))
  end
  return lfl.cat(parts, 1)
end

-- whether the active adapter applies to module `mod` in a forward
function M.applies(model, mod)
  local ad = model.lora
  return ad ~= nil and ad.enabled and not ad.merged and ad:has(mod)
end

-- Dropout applies in training: with grad enabled, or in the first pass of a
-- checkpointed region (grad off there, but its recompute must see the same
-- network as the loss did); model.checkpointing is set by the decoder.
local function dropping(model, ad)
  return ad.dropout > 0 and (lfl.is_grad_enabled() or model.checkpointing == true)
end

-- whether training takes the fused op for the model's adapters (f32 inputs)
function M.fuses_in_training(model)
  local ad = model.lora
  if not (ad and ad.enabled and not ad.merged) or ad.use_dora or ad.dropout > 0 or #ad == 0 then return false end
  local A = ad:get(ad.modules[1])
  return A:dtype() == "f32"
end

-- the fused op's conditions, for factors A, B of the active adapter ad
local function can_fuse(model, ad, A, B, x)
  if A == nil or not (ad.enabled and not ad.merged) or ad.use_dora or dropping(model, ad) then return false end
  local dt = x:dtype()
  return A:dtype() == dt and B:dtype() == dt and (dt == "f32" or dt == "f64")
end

-- whether M.linear takes the fused op (lfl.lora_linear) for `mod` on x
function M.fusable(model, mod, x)
  local ad = model.lora
  if not ad then return false end
  local A, B = ad:get(mod)
  return can_fuse(model, ad, A, B, x)
end

-- y = base(x) (+ bias) -> adapted output composed from ops, for the factors
-- A, B (, mag) of the active adapter ad (DoRA, dropout, bf16 factors)
local function apply_factors(model, ad, A, B, mag, x, y, w, bias)
  local xin = x
  if dropping(model, ad) then xin = lfl.dropout(x, ad.dropout) end
  local lora = lfl.linear(lfl.linear(xin, A), B)
  if not ad.use_dora then return y + lora * ad.scaling end
  -- DoRA as PEFT computes it: s = m / ||W + scaling B A||_row (norm detached),
  -- y' = y + (s - 1) * W x' + s * scaling * B A x', where x' is the dropped-out input
  -- (so with dropout the undropped W x stays in y and only the DoRA terms see x')
  local norm = lfl.no_grad(function() return M.weight_row_norm(w, B, A, ad.scaling) end)
  local s = mag / norm
  local base
  if xin ~= x then base = lfl.linear(xin, w)
  elseif bias then base = y - bias
  else base = y end
  return y + base * (s - 1) + lora * ad.scaling * s
end

-- y = base(x) (+ bias) -> the output adapted by the active adapter's factors of `mod`
function M.apply(model, mod, x, y, w, bias)
  if not M.applies(model, mod) then return y end
  local ad = model.lora
  local A, B, mag = ad:get(mod)
  return apply_factors(model, ad, A, B, mag, x, y, w, bias)
end

-- The adapted linear layer `mod` on x: one fused op (lfl.lora_linear) for plain
-- LoRA without dropout in training and f32/f64 factors, else base + the
-- composed update. Called by the decoder for every linear the active adapter
-- targets; the adapter and its factors are looked up once.
function M.linear(model, mod, x, w, bias)
  local ad = model.lora
  local A, B, mag
  if ad then A, B, mag = ad:get(mod) end
  if ad and can_fuse(model, ad, A, B, x) then return lfl.lora_linear(x, w, bias, A, B, ad.scaling) end
  local y = lfl.linear(x, w, bias)
  if A == nil or not (ad.enabled and not ad.merged) then return y end
  return apply_factors(model, ad, A, B, mag, x, y, w, bias)
end

-- Trainable tensors with names (PEFT key names) for the optimizer and saving:
-- the active adapter's (or an adapter's) factors.
-- LlamaFactory's additional_target (PEFT's modules_to_save): the modules whose
-- path ends with one of `targets` (PEFT's match) train whole next to the LoRA
-- adapter, on private copies (f32 masters, or 16-bit under opts.pure_bf16) of
-- their weight and bias, saved in the adapter as base_model.model.<module>.weight.
-- PEFT copies the embedding and the head separately, so a tied model is untied
-- (the config then says tie_word_embeddings: false). A module that is also a
-- LoRA target, or a target that matches nothing, is an error.
function M.add_modules_to_save(model, targets, opts)
  opts = opts or {}
  local ad = model.lora
  if not ad then error("additional_target: the model has no LoRA adapter", 0) end
  local list = type(targets) == "table" and targets or {}
  if type(targets) == "string" then for n in targets:gmatch("[^,%s]+") do list[#list + 1] = n end end
  local mods, found = {}, {}
  local function consider(mod)
    for _, tg in ipairs(list) do
      if mod:sub(-#tg) == tg then mods[mod] = true; found[tg] = true end -- PEFT: key.endswith(target)
    end
  end
  local seen = {}
  for _, n in ipairs(model.names) do
    local mod = n:match("^(.*)%.weight$") or n:match("^(.*)%.bias$")
    if mod and not seen[mod] then seen[mod] = true; consider(mod) end
  end
  if model.arch.tied and not seen["lm_head"] then consider("lm_head") end -- a module there, tied to the embedding
  for _, tg in ipairs(list) do
    if not found[tg] then error(fmt("additional_target: no module named '%s' in this %s model", tg, model.arch.name), 0) end
  end
  for mod in pairs(mods) do
    if ad:has(mod) then
      error(fmt("additional_target: %s is also a LoRA target (lora_target); a module is either adapted or trained whole",
        mod), 0)
    end
  end
  if model.arch.tied and (mods["lm_head"] or mods["model.embed_tokens"]) then
    model.params["lm_head.weight"] = model.params["model.embed_tokens.weight"]
    model.names[#model.names + 1] = "lm_head.weight"
    table.sort(model.names)
    model.arch.tied, model.config.tie_word_embeddings = false, false
    print("[lfl] additional_target: the tied embedding and head are trained as two modules (PEFT's modules_to_save "
      .. "copies); a merged model is saved with tie_word_embeddings: false")
  end
  local names, params = {}, {}
  local sorted = {}
  for mod in pairs(mods) do sorted[#sorted + 1] = mod end
  table.sort(sorted)
  for _, mod in ipairs(sorted) do
    for _, suffix in ipairs({".weight", ".bias"}) do
      local n = mod .. suffix
      local w = model.params[n]
      if w then
        if Q4[w:dtype()] or GGML[w:dtype()] or GPTQ[w:dtype()] then
          error(fmt("additional_target: %s is a quantized (%s) weight, which cannot be trained whole", n, w:dtype()), 0)
        end
        local p = w:detach()
        if HALF[p:dtype()] and not opts.pure_bf16 then p = p:to("f32") else p = p:clone() end
        model.params[n] = p
        names[#names + 1] = n
        params[#params + 1] = p:requires_grad()
      end
    end
  end
  ad.extra_names, ad.extra_params, ad.save_targets = names, params, list
  return names, params
end

function M.lora_parameters(x)
  local ad = is_adapter(x) and x or x.lora
  if not ad then return {}, {} end
  return ad:parameters()
end

-- LoRA+ (and plain) optimizer groups: A at lr; B and 1-D params at lr * ratio.
function M.lora_groups(model, lr, weight_decay, loraplus_ratio, lr_embedding)
  local names, params = M.lora_parameters(model)
  local ga, gb = {params = {}, names = {}, lr = lr, weight_decay = weight_decay},
                 {params = {}, names = {}, lr = lr * (loraplus_ratio or 1), weight_decay = weight_decay}
  -- modules_to_save (additional_target): LlamaFactory's LoRA+ optimizer puts an
  -- embedding in its own group at loraplus_lr_embedding and 1-D weights with
  -- B at lr * ratio without decay; otherwise HF's rule leaves biases and norms
  -- without weight decay
  local ge = {params = {}, names = {}, lr = lr_embedding or 1e-6, weight_decay = weight_decay}
  local gn = {params = {}, names = {}, lr = lr * (loraplus_ratio or 1), weight_decay = 0}
  for i, n in ipairs(names) do
    local g
    if n:find("%.lora_[AB]%.weight$") or n:find("%.lora_magnitude_vector$") then
      local is_b = n:find("lora_B", 1, true) or params[i]:dim() == 1
      g = (loraplus_ratio and is_b) and gb or ga
    else
      local nodecay = params[i]:dim() == 1 or n:find("norm") or n:find("bias")
      if loraplus_ratio and n:find("embed_tokens", 1, true) then g = ge
      elseif nodecay then g = gn
      else g = ga end
    end
    g.params[#g.params + 1] = params[i]
    g.names[#g.names + 1] = n
  end
  local groups = {ga}
  for _, g in ipairs({gb, ge, gn}) do if #g.params > 0 then groups[#groups + 1] = g end end
  return groups
end

-- save_adapter(model | adapter, dir, base_name): the model's active adapter,
-- or the adapter given, in PEFT's layout
function M.save_adapter(model, dir, base_name)
  local ad = is_adapter(model) and model or model.lora
  if not ad then error("save_adapter: the model has no LoRA adapter", 2) end
  lfl.fs.mkdir(dir)
  local names, params = ad:parameters()
  -- a vision-language model's language model: PEFT's module names inside the wrapper
  local out = (not is_adapter(model) and M.peft_names(model, "out")) or ad.peft_out
  local W = out and require("lfl.model.wrapper")
  local tbl = {}
  for i, n in ipairs(names) do tbl[out and W.adapter_key(n, out) or n] = params[i]:detach() end
  lfl.safetensors.save(dir .. "/adapter_model.safetensors", tbl, {format = "pt"})
  local shorts, seen = {}, {}
  for _, mod in ipairs(ad.modules) do
    local s = ad.full_target_names and (out and out(mod) or mod) or mod:match("([%w_]+)$")
    if not seen[s] then seen[s] = true; shorts[#shorts + 1] = s end
  end
  table.sort(shorts)
  -- every field PEFT's LoraConfig writes (peft 0.21), at PEFT's defaults where
  -- lfl has no such feature, so PEFT and tools reading the config see what they expect
  local null, obj = lfl.json.null, lfl.json.object
  local cfg = {peft_type = "LORA", task_type = "CAUSAL_LM", base_model_name_or_path = base_name or (not is_adapter(model) and model.path) or ad.base_model or "",
    r = ad.r, lora_alpha = ad.alpha, lora_dropout = ad.config_dropout or ad.dropout, target_modules = shorts, bias = "none",
    fan_in_fan_out = false, use_rslora = ad.use_rslora, use_dora = ad.use_dora, init_lora_weights = true,
    inference_mode = true, modules_to_save = ad.save_targets or null, revision = null, peft_version = null,
    alora_invocation_tokens = null, alpha_pattern = obj(), arrow_config = null, auto_mapping = null,
    corda_config = null, ensure_weight_tying = false, eva_config = null, exclude_modules = null,
    kasa_config = null, layer_replication = null, layers_pattern = null, layers_to_transform = null,
    loftq_config = obj(), lora_bias = false, lora_ga_config = null, megatron_config = null,
    megatron_core = "megatron.core", monteclora_config = null, qalora_group_size = 16, rank_pattern = obj(),
    target_parameters = null, trainable_token_indices = null, use_bdlora = null, use_qalora = false,
    velora_config = null}
  require("lfl.model").write_atomic(dir .. "/adapter_config.json", lfl.json.encode(cfg, {indent = true}))
  return dir
end

-- load_adapter(model, dir, name): a PEFT folder as adapter `name` ("default"),
-- attached and made active (replacing an adapter of that name)
function M.load_adapter(model, dir, name)
  local f = io.open(dir .. "/adapter_config.json", "rb")
  if not f then error(dir .. ": no adapter_config.json", 0) end
  local cfg = lfl.json.decode(f:read("*a"), dir .. "/adapter_config.json")
  f:close()
  if cfg.peft_type == "OFT" then
    -- an OFT adapter (lfl.train.oft) is the model's single live adapter (model.oft): for chat,
    -- predict, export and training, not as a named reference / reward adapter
    if name ~= nil and name ~= "default" then
      error(fmt("%s: an OFT adapter cannot be loaded as the '%s' adapter (OFT adapters are applied to the model "
        .. "itself; DPO/KTO references and PPO reward adapters must be LoRA)", dir, tostring(name)), 0)
    end
    return require("lfl.train.oft").load(model, dir)
  end
  if cfg.peft_type ~= "LORA" then
    error(fmt("%s: peft_type %s is not supported (LORA, OFT)", dir, tostring(cfg.peft_type)), 0)
  end
  if cfg.fan_in_fan_out == true then
    error(fmt("%s/adapter_config.json: fan_in_fan_out (Conv1D-style transposed weights) is not supported", dir), 0)
  end
  for _, k in ipairs({"rank_pattern", "alpha_pattern"}) do
    if type(cfg[k]) == "table" and next(cfg[k]) ~= nil then
      error(fmt("%s/adapter_config.json: %s (per-module rank or alpha) is not supported", dir, k), 0)
    end
  end
  if type(cfg.r) ~= "number" or type(cfg.lora_alpha) ~= "number" then
    error(fmt("%s/adapter_config.json: r and lora_alpha must be numbers", dir), 0)
  end
  local ts = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
  local r, alpha = cfg.r, cfg.lora_alpha
  local dropout = type(cfg.lora_dropout) == "number" and cfg.lora_dropout or 0
  if type(r) ~= "number" or r < 1 or r % 1 ~= 0 then error(fmt("%s/adapter_config.json: r must be a positive integer", dir), 0) end
  local ad = lfl.adapter.new{name = name or "default", r = r, alpha = alpha, use_rslora = cfg.use_rslora == true,
    use_dora = cfg.use_dora == true, dropout = dropout}
  ad.base_model = type(cfg.base_model_name_or_path) == "string" and cfg.base_model_name_or_path or nil
  local ads = {} -- installed only once the whole adapter checks out
  ad.peft_out = M.peft_names(model, "out")
  local saves = {} -- modules_to_save: {decoder name = tensor}
  local mts = type(cfg.modules_to_save) == "table" and #cfg.modules_to_save > 0
  for k, v in pairs(ts) do
    k = M.peft_key(model, k, "in")
    local mod, kind = k:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
    local dmod = k:match("^base_model%.model%.(.+)%.lora_magnitude_vector$")
    local m = mod or dmod
    local whole = not m and mts and k:match("^base_model%.model%.(.+)$")
    if whole and (whole:match("%.weight$") or whole:match("%.bias$")) then
      if not model.params[whole] and not (whole == "lm_head.weight" and model.arch.tied) then
        error(fmt("%s: modules_to_save tensor '%s' is not in this model", dir, whole), 0)
      end
      saves[whole] = v
    elseif not m then
      error(fmt("%s: unexpected key '%s' in adapter_model.safetensors (lfl loads lora_A/lora_B weights, DoRA "
        .. "magnitudes and modules_to_save; lora_bias is not supported)", dir, k), 0)
    end
    if m then
    if not model.params[m .. ".weight"] then error(fmt("%s: adapter targets '%s', which this model does not have", dir, m), 0) end
    ads[m] = ads[m] or {}
    local e = ads[m]
    if kind == "A" then e.A = v:float() elseif kind == "B" then e.B = v:float() else e.magnitude = v:float() end
    end
  end
  local mods = {}
  for m in pairs(ads) do mods[#mods + 1] = m end
  table.sort(mods) -- the first bad module in a stable order
  for _, m in ipairs(mods) do
    local e = ads[m]
    if not e.A or not e.B then error(fmt("%s: module %s lacks lora_A or lora_B", dir, m), 0) end
    if ad.use_dora and not e.magnitude then error(fmt("%s: use_dora is set but %s has no lora_magnitude_vector", dir, m), 0) end
    if not ad.use_dora and e.magnitude then error(fmt("%s: %s has a lora_magnitude_vector but use_dora is false", dir, m), 0) end
    local w = model.params[m .. ".weight"]:size()
    local a, b = e.A:size(), e.B:size()
    if #a ~= 2 or #b ~= 2 or a[1] ~= r or a[2] ~= w[2] or b[1] ~= w[1] or b[2] ~= r then
      error(fmt("%s: %s has lora_A [%s] and lora_B [%s], expected [%d,%d] and [%d,%d] (r = %d, weight [%d,%d])", dir, m,
        table.concat(a, ","), table.concat(b, ","), r, w[2], w[1], r, r, w[1], w[2]), 0)
    end
    if e.magnitude and (e.magnitude:dim() ~= 1 or e.magnitude:size(1) ~= w[1]) then
      error(fmt("%s: %s.lora_magnitude_vector has shape [%s], expected [%d]", dir, m,
        table.concat(e.magnitude:size(), ","), w[1]), 0)
    end
    ad:set(m, e.A, e.B, e.magnitude)
  end
  if next(saves) and name ~= nil and name ~= "default" then
    -- its whole modules would replace the shared base's under the model's own adapter
    error(fmt("%s: an adapter with modules_to_save cannot be loaded as the '%s' adapter (a reference or reward "
      .. "adapter); merge it into its base first (lfl export)", dir, tostring(name)), 0)
  end
  model.lora = ad -- attached (shapes checked against the model) and active
  if next(saves) then
    -- modules_to_save: the trained copies replace the model's (M.add_modules_to_save's layout)
    M.add_modules_to_save(model, cfg.modules_to_save)
    for i, n in ipairs(ad.extra_names) do
      local v = saves[n]
      if not v then error(fmt("%s: adapter_config.json lists modules_to_save, but %s is not saved", dir, n), 0) end
      local p = ad.extra_params[i]
      if v:numel() ~= p:numel() then
        error(fmt("%s: %s has %d values, the model's %d", dir, n, v:numel(), p:numel()), 0)
      end
      lfl.no_grad(function() p:copy_(v:to(p:dtype()):view(p:size())) end)
      p:requires_grad(false)
    end
  end
  return ad
end

-- W += scaling * B A (DoRA: W' = m * (W + sBA) / ||W + sBA||_row) for the
-- active adapter, which is then removed (PEFT's merge_and_unload); in C. An
-- OFT adapter (model.oft) is merged too (lfl.train.oft.merge).
function M.merge(model)
  if model.oft then require("lfl.train.oft").merge(model) end
  local ad = model.lora
  if not ad then return model end
  for _, mod in ipairs(ad.modules) do
    local w = model.params[mod .. ".weight"]
    if w and Q4[w:dtype()] then
      error(fmt("merge: %s.weight is bitsandbytes %s (a QLoRA base): adapters cannot be merged into a quantized model; "
        .. "load the base unquantized and merge there (lfl export)", mod, w:dtype()), 0)
    end
    if w and GGML[w:dtype()] then
      error(fmt("merge: %s.weight is a GGUF %s block weight (loaded with gguf_blocks): adapters cannot be merged "
        .. "into it; load the GGUF without gguf_blocks (dequantized) and merge there (lfl export)", mod, w:dtype()), 0)
    end
  end
  -- a GPTQ/AWQ linear kept quantized takes the merge dequantized (LlamaFactory
  -- merges into the dequantized base of such a model): a float weight from here on
  for _, mod in ipairs(ad.modules) do
    local n = mod .. ".weight"
    local w = model.params[n]
    if w and GPTQ[w:dtype()] then
      model.params[n] = w:to((model.dtype == "bf16" or model.dtype == "f16") and model.dtype or "f32")
    end
  end
  model:merge_adapter(ad.name)
  model:remove_adapter(ad.name)
  return model
end

function M.set_enabled(model, on) if model.lora then model.lora.enabled = on end end

-- ---------------------------------------------------------------- PiSSA

-- PiSSA (PEFT's init_lora_weights "pissa" / "pissa_niter_K"): for each adapted
-- W [out, in], the top-r SVD W ~ U_r S_r V_r^T (exact when niter == -1, else
-- randomized with niter power iterations), S' = S_r / scaling,
-- A = diag(sqrt(S')) V_r^T, B = U_r diag(sqrt(S')); the base weight becomes the
-- residual W - scaling B A (so the adapted model starts equal to the original).
-- The initial A0, B0 are kept for the conversion to a plain LoRA on save.
function M.pissa_init(model, niter)
  local ad = model.lora
  assert(ad, "pissa_init: the model has no LoRA adapter")
  niter = niter or 16
  if ad.use_dora then error("pissa_init: PiSSA cannot be combined with DoRA", 0) end
  ad.pissa = {niter = niter, init = {}}
  ad.init_lora_weights = niter == -1 and "pissa" or fmt("pissa_niter_%d", niter)
  local targets = {}
  lfl.no_grad(function()
    for _, mod in ipairs(ad.modules) do
      local key = mod .. ".weight"
      local dt = model.params[key]:dtype()
      local w = model.params[key]:float():contiguous()
      local r = math.min(ad.r, w:size(1), w:size(2))
      local U, S, Vt
      if niter == -1 then
        U, S, Vt = lfl.linalg.svd(w)
        U, S, Vt = U:narrow(2, 1, r), S:narrow(1, 1, r), Vt:narrow(1, 1, r)
      else
        local V
        U, S, V = lfl.linalg.svd_lowrank(w, r, niter)
        Vt = V:transpose(1, 2)
      end
      local sq = (S * (1 / ad.scaling)):sqrt()
      local A = (Vt * sq:view(-1, 1)):contiguous()
      local B = (U * sq:view(1, -1)):contiguous()
      if r < ad.r then -- a matrix thinner than the rank: pad with zero directions
        A = lfl.cat({A, lfl.zeros(ad.r - r, A:size(2))}, 1)
        B = lfl.cat({B, lfl.zeros(B:size(1), ad.r - r)}, 2)
      end
      local A0 = ad:get(mod)
      ad.pissa.init[mod] = {A = A:clone(), B = B:clone()}
      local adt = A0:dtype() -- pure_bf16 keeps A and B in bf16
      if adt ~= "f32" then A, B = A:to(adt), B:to(adt) end
      targets[mod] = {A:requires_grad(), B:requires_grad()}
      -- the residual goes back to the base's dtype (a bf16 base stays bf16)
      local res = (w - lfl.matmul(B:float(), A:float()) * ad.scaling):contiguous()
      model.params[key] = HALF[dt] and res:to(dt) or res
    end
  end)
  for mod, f in pairs(targets) do ad:set(mod, f[1], f[2]) end
  return ad
end

-- The PEFT conversion of a trained PiSSA adapter to a plain LoRA on the ORIGINAL
-- weights (save_pretrained with path_initial_model_for_weight_conversion): rank
-- 2r with A = [A'; A0], B = [B', -B0], lora_alpha doubled (x sqrt 2 with rsLoRA)
-- so the scaling is unchanged and scaling B A = scaling (B'A' - B0 A0).
function M.pissa_converted(model)
  local ad = model.lora
  if not ad or not ad.pissa then error("pissa_convert: the adapter was not initialized with PiSSA", 0) end
  local conv = lfl.adapter.new{name = ad.name .. "_converted", r = 2 * ad.r,
    alpha = ad.use_rslora and ad.alpha * sqrt(2) or 2 * ad.alpha, use_rslora = ad.use_rslora, dropout = ad.dropout}
  lfl.no_grad(function()
    for _, mod in ipairs(ad.modules) do
      local A, B = ad:get(mod)
      local i0 = ad.pissa.init[mod]
      conv:set(mod, lfl.cat({A:detach():float(), i0.A}, 1):contiguous(),
               lfl.cat({B:detach():float(), -i0.B}, 2):contiguous())
    end
  end)
  conv.base_model = model.path
  return conv
end

function M.save_pissa_converted(model, dir, base_name)
  return M.save_adapter(M.pissa_converted(model), dir, base_name or model.path)
end

-- The initial PiSSA adapter (A0, B0), as LlamaFactory writes to pissa_init/
-- in a plain LoRA config.
function M.save_pissa_init(model, dir, base_name)
  local ad = model.lora
  local init = lfl.adapter.new{name = ad.name .. "_init", r = ad.r, alpha = ad.alpha, use_rslora = ad.use_rslora,
    dropout = ad.dropout}
  for mod, e in pairs(ad.pissa.init) do init:set(mod, e.A, e.B) end
  return M.save_adapter(init, dir, base_name or model.path)
end

-- ---------------------------------------------------------------- freeze / full

-- LLaMA Pro (use_llama_pro): the blocks `lfl llama_pro` (LlamaFactory's
-- scripts/llama_pro.py) inserted after every stride-th layer, stride = L / n:
-- layers stride-1, 2 stride-1, ... (model/adapter.py, find_expanded_modules).
function M.llama_pro_layers(num_layers, n)
  if n <= 0 or num_layers % n ~= 0 then
    error(fmt("use_llama_pro: `num_layers` %d should be divisible by `num_layer_trainable` %d (freeze_trainable_layers)",
      num_layers, n), 0)
  end
  local stride, set = math.floor(num_layers / n), {}
  for l = stride - 1, num_layers + stride - 2, stride do set[l] = true end
  return set
end

-- full: every parameter trains. freeze: the last (or first, when n < 0) |n|
-- layers train, plus named modules (freeze_trainable_modules, default "all"
-- = every module of those layers) and freeze_extra_modules (e.g. "embed_tokens,norm").
function M.select_trainable(model, method, opts)
  opts = opts or {}
  local train = {}
  if method == "full" then
    for _, n in ipairs(model.names) do train[n] = true end
  elseif method == "freeze" then
    local L = model.arch.layers
    local n = opts.freeze_trainable_layers or 2
    local layers = {}
    if opts.use_llama_pro then layers = M.llama_pro_layers(L, n)
    elseif n > 0 then for l = math.max(0, L - n), L - 1 do layers[l] = true end
    else for l = 0, math.min(L, -n) - 1 do layers[l] = true end end
    local mods = opts.freeze_trainable_modules or "all"
    local want = {}
    if mods ~= "all" then for m in tostring(mods):gmatch("[^,%s]+") do want[m] = true end end
    local extra = {}
    for m in tostring(opts.freeze_extra_modules or ""):gmatch("[^,%s]+") do extra[m] = true end
    for _, name in ipairs(model.names) do
      local l, rest = name:match("^model%.layers%.(%d+)%.(.*)$")
      if l and layers[tonumber(l)] then
        local ok = mods == "all"
        for w in pairs(want) do if rest:find(w, 1, true) then ok = true end end
        if ok then train[name] = true end
      elseif not l then
        for e in pairs(extra) do if name:find(e, 1, true) then train[name] = true end end
      end
    end
  else
    error(fmt("finetuning_type '%s' is not a selection method (full, freeze)", tostring(method)), 0)
  end
  local names, params = {}, {}
  for _, n in ipairs(model.names) do
    if train[n] then
      if GPTQ[model.params[n]:dtype()] then
        error(fmt("finetuning_type %s: %s is a GPTQ/AWQ 4-bit weight (kept quantized), which cannot be trained, as "
          .. "LlamaFactory trains no quantized weight in full or freeze fine-tuning; use finetuning_type lora",
          method, n), 0)
      end
      if GGML[model.params[n]:dtype()] then
        error(fmt("finetuning_type %s: %s is a GGUF %s block weight (the model was loaded with gguf_blocks), which "
          .. "cannot be trained, as LlamaFactory trains no quantized weight in full or freeze fine-tuning; use "
          .. "finetuning_type lora, or gguf_blocks: false to dequantize the file", method, n, model.params[n]:dtype()), 0)
      end
      names[#names + 1] = n
      -- weights loaded from safetensors are read-only mmaps: the optimizer updates
      -- in place, so a trained parameter gets its own memory. In a 16-bit model
      -- (bf16) it is an f32 master copy, unless opts.pure_bf16 keeps it 16-bit;
      -- the frozen rest stays 16-bit.
      local p = model.params[n]:detach()
      if HALF[p:dtype()] and not opts.pure_bf16 then p = p:to("f32") else p = p:clone() end
      model.params[n] = p
      params[#params + 1] = p:requires_grad()
    end
  end
  if #names == 0 then error("freeze: no parameter selected for training", 0) end
  return names, params
end

return M
