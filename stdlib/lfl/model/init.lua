-- Models: load a Hugging Face folder (config.json + safetensors, sharded or
-- not) into a Model (config + named parameters with HF names), run the generic
-- decoder forward (stdlib/lfl/decoder.lua), compute the causal-LM loss, save
-- back to an HF folder that transformers loads.
local lfl = lfl
local decoder = require("lfl.model.decoder")
local convert = require("lfl.model.convert")
local fmt, concat = string.format, table.concat

local M = {}
-- A Model is a C userdata (lua/l_model.c, core/model/): the parameter store,
-- path and adapters live in C; config, arch and other Lua fields in the
-- object's own table. Lua methods are added to its methods table here.
local Model = lfl._model.Model.methods
M.Model = Model

local read_file = lfl.read_file

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read_json(path)
  local s, err = read_file(path)
  if not s then error(fmt("%s: cannot read: %s", path, err), 0) end
  return lfl.json.decode(s, path)
end
M.read_json = read_json

-- Parameters of an HF folder: {name = tensor} (mmapped, stored dtype)
local function load_weights(dir)
  local params, order = {}, {}
  local function add_file(path)
    local ts = lfl.safetensors.load(path)
    for k, v in pairs(ts) do
      if params[k] then error(fmt("%s: tensor '%s' appears in two shards", path, k), 0) end
      params[k] = v
      order[#order + 1] = k
    end
  end
  local index = dir .. "/model.safetensors.index.json"
  if exists(index) then
    local idx = read_json(index)
    if type(idx.weight_map) ~= "table" then error(index .. ": no weight_map object", 0) end
    local files, seen = {}, {}
    for name, file in pairs(idx.weight_map) do
      if not seen[file] then seen[file] = true; files[#files + 1] = file end
    end
    table.sort(files)
    for _, file in ipairs(files) do
      local path = dir .. "/" .. file
      if not exists(path) then error(fmt("%s: shard %s named in the index is missing", index, file), 0) end
      add_file(path)
    end
    for name, file in pairs(idx.weight_map) do
      if not params[name] then error(fmt("%s: tensor '%s' is not in %s", index, name, file), 0) end
    end
  elseif exists(dir .. "/model.safetensors") then
    add_file(dir .. "/model.safetensors")
  else
    error(fmt("%s: no model.safetensors or model.safetensors.index.json", dir), 0)
  end
  table.sort(order)
  return params, order
end

-- opts.dtype: "f32" (default) or "f64" turns every floating parameter into
-- that type. "bf16" / "f16" keep weight matrices in 16 bits: bf16/f16 ones stay
-- as stored (mmapped, no copy), f32/f64 ones are rounded to opts.dtype; the ops
-- widen them to f32 block by block. Vectors (norm weights, biases) become f32.
-- opts.quantize: QLoRA's 4-bit or 8-bit base (M.check_quantize).
-- A saved bitsandbytes model (lfl.model.bnb_checkpoint) keeps its 4-/8-bit
-- linears (m.quantization, m.prequantized) unless opts.dequantize (export).
-- A GPTQ/AWQ 4-bit checkpoint's linears stay quantized too (gptq4, lfl.model.ptq);
-- opts.dequantize makes them float weights at load as well.
function M.load(path, opts)
  opts = opts or {}
  -- a Hub id ("org/name") that is not a local path is fetched into the HF cache
  if not exists(path) and not exists(path .. "/config.json") then path = lfl.hub.resolve(path, opts.hub) end
  if path:match("%.gguf$") then return require("lfl.model.gguf").load(path, opts) end
  local cfg_path = path .. "/config.json"
  local cfg, wrap = require("lfl.model.wrapper").unwrap(read_json(cfg_path), cfg_path) -- a vision-language checkpoint's text part
  decoder.resolve(cfg, cfg_path) -- an unsupported architecture or a bad size is reported before any weight is read
  local params = load_weights(path)
  if wrap then params = require("lfl.model.wrapper").split(params, wrap, cfg) end
  -- a saved bitsandbytes model (load_in_4bit / load_in_8bit): its linears stay in their 4-/8-bit state
  local bnb = require("lfl.model.bnb_checkpoint")
  local bq = bnb.config(cfg, cfg_path)
  local nbnb, bnb_dtype
  if bq then
    local want = M.check_quantize(opts.quantize)
    if want and (want.bits ~= bq.bits or want.type ~= bq.type or (want.bits == 4 and want.double_quant ~= bq.double_quant)) then
      local function say(x) return x.bits == 8 and "8-bit LLM.int8" or fmt("4-bit %s%s", x.type,
        x.double_quant and " with double quantization" or "") end
      error(fmt("%s is already a bitsandbytes %s checkpoint; the quantization asked for (%s) differs: drop it "
        .. "(quantization_bit, quantization_type, double_quantization) or make it match", path, say(bq), say(want)), 0)
    end
    params, nbnb, bnb_dtype = bnb.convert(bq, params, path)
    if opts.dequantize then
      -- export: the base the adapters merge into and the weights written are float (bitsandbytes' dequantization)
      for name, t in pairs(params) do
        local dt = t:dtype()
        if dt == "nf4" or dt == "fp4" or dt == "int8" then params[name] = t:to("f32") end
      end
      print(fmt("[lfl] %s: bitsandbytes %s checkpoint, %d linears dequantized to float", path,
        bq.bits == 8 and "8-bit" or "4-bit " .. bq.type, nbnb))
    end
    local c = {}
    for k, v in pairs(cfg) do if k ~= "quantization_config" then c[k] = v end end
    cfg = c
    if opts.quantize then
      local o = {}
      for k, v in pairs(opts) do if k ~= "quantize" then o[k] = v end end
      opts = o
    end
  end
  local ptq = require("lfl.model.ptq")
  local q = ptq.config(cfg, cfg_path)
  local nq, nkept
  if q then
    params, nq, nkept = ptq.convert(q, params, path, not opts.dequantize)
    -- a saved copy is a float model (kept gptq4 weights are dequantized as they are written)
    local c = {}
    for k, v in pairs(cfg) do if k ~= "quantization_config" then c[k] = v end end
    cfg = c
  end
  local m = M.from_params(cfg, params, opts, cfg_path)
  if q then m.ptq = {method = q.method, bits = q.bits, group_size = q.group_size, linears = nq, kept = nkept} end
  if bq and not opts.dequantize then
    m.quantization = {bits = bq.bits, type = bq.type, double_quant = bq.double_quant, threshold = bq.threshold}
    m.prequantized = {method = "bitsandbytes", linears = nbnb, dtype = bnb_dtype}
  end
  m.path = path
  if wrap then
    m.wrap = wrap
    print(fmt("[lfl] %s: the language model of a %s checkpoint; its %d vision tensors (vision tower, projector) " ..
      "are kept as they are and saved back (text-only training)", path, wrap.outer.model_type, wrap.aside_count))
  end
  if exists(path .. "/generation_config.json") then m.generation_config = read_json(path .. "/generation_config.json") end
  return m
end

local FLOAT = {f32 = true, f64 = true, bf16 = true, f16 = true}
local HALF = {bf16 = true, f16 = true}
local Q4 = {nf4 = true, fp4 = true, int8 = true} -- bitsandbytes' kinds (QLoRA's base)

function M.check_dtype(dt)
  if dt == "fp32" or dt == "float32" then return "f32" end
  if dt == "bfloat16" then return "bf16" end
  if dt == "fp16" or dt == "float16" then return "f16" end
  if not FLOAT[dt] then error(fmt("model: dtype '%s' is not supported (f32, bf16, f16, f64)", tostring(dt)), 0) end
  return dt
end

-- The dtype a floating parameter gets in a model of dtype `want` (see M.load);
-- non-floating tensors keep theirs.
function M.param_dtype(t, want)
  local dt = t:dtype()
  if not FLOAT[dt] then return dt end
  if not HALF[want] then return want end
  if t:dim() < 2 then return "f32" end
  if HALF[dt] then return dt end
  return want
end

-- QLoRA (opts.quantize = {type = "nf4"|"fp4", double_quant = bool}, or
-- {type = "int8"}: LLM.int8, transformers' load_in_8bit): the decoder layers'
-- linear weights are stored in bitsandbytes' 4-bit or 8-bit format as they
-- load, as transformers' bitsandbytes integration does it (every linear but
-- lm_head; embeddings and norms are not linears). Returns the checked
-- options, or nil.
function M.check_quantize(q)
  if q == nil then return nil end
  if type(q) ~= "table" then error(fmt("model: quantize must be a table {type =, double_quant =}, got %s", type(q)), 0) end
  if q.type == "int8" then
    if q.double_quant ~= nil then
      error("model: quantize.double_quant applies to nf4/fp4, not int8 (LLM.int8 keeps an f32 absmax per row)", 0)
    end
    -- transformers' BitsAndBytesConfig default llm_int8_threshold (LlamaFactory keeps it):
    -- the outlier bound of LLM.int8's eval-mode matmul (lfl.int8_linear_lt)
    return {bits = 8, type = "int8", threshold = 6.0}
  end
  if q.type ~= "nf4" and q.type ~= "fp4" then
    error(fmt("model: quantize.type must be nf4, fp4 or int8, got %s", tostring(q.type)), 0)
  end
  if type(q.double_quant) ~= "boolean" then
    error(fmt("model: quantize.double_quant must be true or false, got %s", tostring(q.double_quant)), 0)
  end
  return {bits = 4, type = q.type, double_quant = q.double_quant}
end

-- t quantized as the checked options q (M.check_quantize) say
function M.quantize_weight(t, q)
  if q.bits == 8 then return lfl.quantize_8bit(t) end
  return lfl.quantize_4bit(t, q.type, q.double_quant)
end

-- whether parameter `name` (tensor t) is one of the linear weights QLoRA quantizes:
-- the 2-D weights of the decoder layers but their norms' (Cohere's per-head q/k norms are 2-D)
function M.quantizes(name, t)
  return t:dim() == 2 and name:match("^model%.layers%.%d+%..+%.weight$") ~= nil and not name:find("norm", 1, true)
    and not name:find(".router.weight_predictor.", 1, true) -- a MoD router [1, H]
end

-- The first (by name) of params' "model.layers.<i>." tensors whose layer i
-- is not below `layers`, and that i; nil when there is none.
function M.layer_past(params, layers)
  local bad, bad_i
  for name in pairs(params) do
    local i = name:match("^model%.layers%.(%d+)%.")
    i = i and tonumber(i)
    if i and i >= layers and (not bad or name < bad) then bad, bad_i = name, i end
  end
  return bad, bad_i
end

-- where: what the config came from (its path), for errors
function M.from_params(cfg, params, opts, where)
  opts = opts or {}
  -- a recipe's rope_scaling ({type =, max_length =}: lfl.model.rope.apply_recipe_scaling)
  if opts.rope_scaling then
    print("[lfl] " .. require("lfl.model.rope").apply_recipe_scaling(cfg, opts.rope_scaling.type,
      opts.rope_scaling.max_length, where))
  end
  local arch = decoder.resolve(cfg, where)
  params = convert.to_decoder(cfg, params) -- remote-code layouts (InternLM2, Baichuan) -> llama names
  -- DeepSeek-V3's multi-token prediction layers follow the decoder's; transformers
  -- does not load them either (only next-token training and decoding use the model)
  if (arch.extra_layers or 0) > 0 then
    local dropped = 0
    for name in pairs(params) do
      local li = tonumber(name:match("^model%.layers%.(%d+)%."))
      if li and li >= arch.layers and li < arch.layers + arch.extra_layers then params[name], dropped = nil, dropped + 1 end
    end
    if dropped > 0 then
      print(fmt("[lfl] note: %d tensors of the multi-token prediction layer%s (layers %d..%d) are not used, as in " ..
        "transformers", dropped, arch.extra_layers > 1 and "s" or "", arch.layers, arch.layers + arch.extra_layers - 1))
    end
  end
  -- a layer the config does not count would be silently unused: wrong data
  local bad, i = M.layer_past(params, arch.layers)
  if bad then
    error(fmt("%s: tensor '%s' belongs to layer %d, but num_hidden_layers is %d (layers 0..%d): the checkpoint " ..
      "and the config disagree", where or "model", bad, i, arch.layers, arch.layers - 1), 0)
  end
  local want = M.check_dtype(opts.dtype or "f32")
  local q = M.check_quantize(opts.quantize)
  -- a mixture-of-depths checkpoint (opts.mixture_of_depths = "load"): its
  -- routers stay f32, as the MoD package runs them
  local mod = require("lfl.model.mod").for_checkpoint(cfg, params, opts.mixture_of_depths, where)
  local m = lfl._model.new()
  for name, t in pairs(params) do
    if mod and name:find(".router.weight_predictor.", 1, true) then
      m.params[name] = t:dtype() ~= "f32" and t:to("f32") or t
    elseif Q4[t:dtype()] or t:dtype() == "gptq4" then
      -- quantized by the GGUF loader, a bitsandbytes checkpoint's state or a GPTQ/AWQ linear kept (lfl.model.ptq);
      -- a bare I8 tensor has no row scales
      if t:dtype() == "int8" and not pcall(lfl.int8_state, t) then
        error(fmt("%s: tensor '%s' is int8 without bitsandbytes row scales (SCB); lfl reads int8 weights from "
          .. "bitsandbytes 8-bit checkpoints only", where or "model", name), 0)
      end
      m.params[name] = t
    elseif q and M.quantizes(name, t) then
      -- from the stored dtype: no f32 copy
      m.params[name] = M.quantize_weight(t, q)
    else
      local to = M.param_dtype(t, want)
      m.params[name] = to ~= t:dtype() and t:to(to) or t
    end
  end
  m.quantization = q
  m.config, m.arch, m.dtype = cfg, arch, want
  m.mod = mod
  decoder.check(m, where)
  return m
end

-- lfl.model.new(): an empty Model to fill by hand (m.params[name] = tensor)
function M.new() return lfl._model.new() end

-- parameters(), named_parameters() (sorted names and the m.params view),
-- num_parameters() (tied weights once), to(dtype | device), the adapter
-- methods (add_adapter, set_adapter, adapter, adapter_names, remove_adapter,
-- merge_adapter, unmerge_adapter) are C methods of the userdata.

-- forward(ids [B, T] i64, opts) -> logits [B, T, V] (or hidden states with
-- opts.hidden = true). opts.position_ids, opts.segments for packed rows.
-- opts.adapter: a name runs that attached adapter, false the base model, for
-- this call only (DPO's reference, PPO's reward adapter, multi-adapter serving).
function Model:forward(ids, opts)
  opts = opts or {}
  if opts.adapter ~= nil then return self:with_adapter(opts.adapter, decoder.forward, self, ids, opts) end
  return decoder.forward(self, ids, opts)
end

-- runs fn(...) with adapter `name` active (false / nil: none) and restores the
-- active one, also when fn raises
function Model:with_adapter(name, fn, ...)
  local prev = self.lora
  self:set_adapter(name or nil)
  local res = {pcall(fn, ...)}
  self:set_adapter(prev and prev.name or nil)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

-- Causal-LM loss as transformers computes it: predict token t+1 from t, labels
-- -100 ignored, mean over the rest. Uses the fused linear + cross-entropy.
-- opts.token_weight = {kind = "dft"}, {kind = "eaft", alpha = a} or {kind =
-- "asft", alpha = a, reference = {kind = "model" | "frozen", model =} or {kind =
-- "adapter_off"}}: LlamaFactory's DFT / EAFT / ASFT variants.
function Model:loss(ids, labels, opts)
  opts = opts or {}
  if opts.adapter ~= nil then return self:with_adapter(opts.adapter, decoder.loss, self, ids, labels, opts) end
  return decoder.loss(self, ids, labels, opts)
end

lfl._model.Model.__tostring = function(self)
  local c, a = self.config, self.arch
  return fmt("Model(%s: %d layers, hidden %d, heads %d/%d, head_dim %d, vocab %d, %.1fM params%s%s)",
    a.name, a.layers, a.hidden, a.heads, a.kv_heads, a.head_dim, a.vocab, self:num_parameters() / 1e6,
    self.path and (", from " .. self.path) or "", a.tied and ", tied embeddings" or "")
end

local TORCH_DTYPE = {f32 = "float32", bf16 = "bfloat16", f16 = "float16", f64 = "float64"}
-- the config.json spelling of the decoder's activations (transformers' ACT2FN names)
local HF_ACT = {silu = "silu", gelu = "gelu", gelu_tanh = "gelu_pytorch_tanh"}

-- Writes an HF folder that transformers and lfl.model.load take: config.json
-- (torch_dtype = the model's dtype), safetensors shards of at most
-- opts.shard_size bytes (default 5 GB) with an index when there are several,
-- the tokenizer files and generation_config.json (lfl.model.hf_files).
-- opts.tokenizer: where the tokenizer comes from (an HF folder or a GGUF file;
-- default the model's own path), false for none. The tokenizer is written
-- first, so a GGUF whose tokenizer cannot be saved stops before any weight is.
-- Returns dir, the names of the tokenizer / generation files written, and
-- the names of all files written (what an export pushes to the Hub).
function Model:save(dir, opts)
  opts = opts or {}
  if self.gguf_blocks then
    for _, name in ipairs(self.names) do
      local dt = self.params[name]:dtype()
      if require("lfl.model.gguf").BLOCKS[dt] then
        error(fmt("save: %s is a GGUF %s block weight (the model was loaded with gguf_blocks), which safetensors "
          .. "cannot hold; load the GGUF without gguf_blocks (dequantized) to save or export it", name, dt), 0)
      end
    end
  end
  local hf_files = require("lfl.model.hf_files")
  local limit = opts.shard_size or 5e9
  lfl.fs.mkdir(dir)
  local extra = {}
  local tok_src = opts.tokenizer
  if tok_src == nil then tok_src = self.path end
  if tok_src then
    local meta = tok_src == self.path and self.gguf_metadata or nil
    for _, f in ipairs(hf_files.write_tokenizer(tok_src, dir, meta)) do extra[#extra + 1] = f end
  end
  local shards, cur, size = {}, {}, 0
  local names, params = convert.from_decoder(self.config, self.names, self.params) -- back to the family's layout
  -- opts.tensors(names, params) -> names, params: what is written instead (a GPTQ export's packed linears)
  if opts.tensors then names, params = opts.tensors(names, params) end
  if self.wrap then names, params = require("lfl.model.wrapper").join(self.wrap, names, params) end
  for _, name in ipairs(names) do
    local t = params[name]
    -- a GPTQ/AWQ linear kept quantized is written as the float weight it stands for
    if t:dtype() == "gptq4" then
      t = t:to(HALF[self.dtype] and self.dtype or "f32")
    end
    local nb = t:numel() * M.elem_size(t)
    if size > 0 and size + nb > limit then shards[#shards + 1] = cur; cur, size = {}, 0 end
    cur[name] = t
    size = size + nb
  end
  shards[#shards + 1] = cur
  local written = {}
  if #shards == 1 then
    lfl.safetensors.save(dir .. "/model.safetensors", shards[1], {format = "pt"})
    written[1] = "model.safetensors"
  else
    local map, total = {}, 0
    for i, sh in ipairs(shards) do
      local file = fmt("model-%05d-of-%05d.safetensors", i, #shards)
      lfl.safetensors.save(dir .. "/" .. file, sh, {format = "pt"})
      written[#written + 1] = file
      for name, t in pairs(sh) do map[name] = file; total = total + t:numel() * M.elem_size(t) end
    end
    M.write_atomic(dir .. "/model.safetensors.index.json",
      lfl.json.encode({metadata = {total_size = total}, weight_map = map}, {indent = true}))
    written[#written + 1] = "model.safetensors.index.json"
  end
  local cfg = {}
  for k, v in pairs(self.config) do cfg[k] = v end
  if self.wrap then cfg = require("lfl.model.wrapper").outer_config(self.wrap, cfg) end
  -- what the weights are (transformers 4 reads torch_dtype, 5 reads dtype)
  local td = TORCH_DTYPE[self.dtype or "f32"]
  if td then
    cfg.torch_dtype = td
    if cfg.dtype ~= nil then cfg.dtype = td end
  end
  if not self.wrap and cfg.hidden_act == nil and cfg.hidden_activation == nil and self.arch and HF_ACT[self.arch.act] then
    cfg.hidden_act = HF_ACT[self.arch.act]
  end
  -- opts.config: keys set over the model's (a GPTQ export's quantization_config and dtype)
  for k, v in pairs(opts.config or {}) do
    cfg[k] = v
    if k == "torch_dtype" and cfg.dtype ~= nil then cfg.dtype = v end
  end
  M.write_atomic(dir .. "/config.json", lfl.json.encode(cfg, {indent = true}))
  written[#written + 1] = "config.json"
  if opts.generation_config ~= false then
    local g = hf_files.write_generation_config(self, dir)
    if g then extra[#extra + 1] = g end
  end
  if self.tokenizer_files then
    for _, f in ipairs(self.tokenizer_files) do
      lfl.fs.copy(f, dir)
      written[#written + 1] = f:match("[^/]+$")
    end
  end
  for _, f in ipairs(extra) do written[#written + 1] = f end
  return dir, extra, written
end

-- bytes per element of a plain tensor
function M.elem_size(t)
  local dt = t:dtype()
  return (dt == "f64" or dt == "i64") and 8 or dt:match("16") and 2 or (dt == "u8" or dt == "bool") and 1 or 4
end

-- text to path through a temporary file renamed into place (lfl.fs.write)
function M.write_atomic(path, text) lfl.fs.write(path, text) end

return M
