-- Models from GGUF files: metadata -> an HF-style config, ggml tensor names ->
-- Hugging Face names, llama.cpp's q/k row permutation reversed, a family's
-- norm weight offset (gemma's +1) undone, block types dequantized on load, or,
-- with opts.gguf_blocks, the decoder's linear weights kept in their blocks.
local lfl = lfl
local fmt = string.format

local M = {}

local HALF = {bf16 = true, f16 = true}
local registry -- lfl.model.registry, loaded on first use

-- What is family-specific comes from the arch.gguf table of the model family
-- module (recipes/models/<family>.lua) whose gguf.arch is the file's
-- general.architecture: the HF class, whether llama.cpp permuted the q/k rows
-- (convert_hf_to_gguf's LlamaModel and the models copying its modify_tensors),
-- per-family tensor names, extra config keys and a norm weight offset.
local function family(arch_name, path)
  registry = registry or require("lfl.model.registry")
  local a = registry.arch_of_gguf(arch_name)
  if not a then
    error(fmt("%s: GGUF architecture '%s' is not supported (supported: %s)", path, tostring(arch_name),
      table.concat(registry.gguf_archs(), ", ")), 0)
  end
  return a
end

local LAYER_NAMES = {
  attn_norm = "input_layernorm", ffn_norm = "post_attention_layernorm",
  attn_q = "self_attn.q_proj", attn_k = "self_attn.k_proj", attn_v = "self_attn.v_proj",
  attn_output = "self_attn.o_proj", attn_qkv = "self_attn.qkv_proj",
  attn_q_norm = "self_attn.q_norm", attn_k_norm = "self_attn.k_norm",
  ffn_gate = "mlp.gate_proj", ffn_up = "mlp.up_proj", ffn_down = "mlp.down_proj",
  post_attention_norm = "post_attention_layernorm", post_ffw_norm = "post_feedforward_layernorm",
}

-- the Hugging Face name of a ggml tensor name in a model of this model_type
-- (the family's gguf.names, or `names` when given: those of the file's
-- architecture, override the common layer names). A "*" in the result stands
-- for the expert number of a fused [n_expert, rows, cols] tensor.
function M.hf_name(name, model_type, names)
  if name == "token_embd.weight" then return "model.embed_tokens.weight" end
  local on = name:match("^output_norm%.(%a+)$")
  if on then return "model.norm." .. on end
  if name == "output.weight" then return "lm_head.weight" end
  local l, rest, suffix = name:match("^blk%.(%d+)%.([%w_]+)%.(%w+)$")
  if not l then return nil end
  registry = registry or require("lfl.model.registry")
  if not names then
    local g = model_type and registry.arch(model_type).gguf
    names = g and g.names
  end
  -- a name with its suffix ("exp_probs_b.bias") maps to the whole HF name
  local whole = names and names[rest .. "." .. suffix]
  if whole then return fmt("model.layers.%s.%s", l, whole) end
  local hf = names and names[rest] or LAYER_NAMES[rest]
  if not hf then return nil end
  return fmt("model.layers.%s.%s.%s", l, hf, suffix)
end

-- GGUF stores floats as f32: 1e-5 reads back as 9.99999974737875e-06. The
-- shortest decimal that rounds to the same f32 is what config.json had.
local function f32(x) return lfl.tensor({x}):_at(1) end
function M.f32_decimal(x)
  if type(x) ~= "number" or x ~= x or x == math.floor(x) or f32(x) ~= x then return x end
  for p = 1, 9 do
    local d = tonumber(fmt("%." .. p .. "g", x))
    if f32(d) == x then return d end
  end
  return x
end

-- rope_scaling from {arch}.rope.scaling.* (convert_hf_to_gguf writes linear and
-- yarn this way; Llama 3.1's llama3 scaling travels as a rope_freqs tensor instead)
local function rope_scaling(meta, path, key)
  local ty = meta[key("rope.scaling.type")]
  local factor = meta[key("rope.scaling.factor")] or meta[key("rope.scale_linear")]
  if ty == nil and factor and factor ~= 1 then ty = "linear" end
  if ty == nil or ty == "none" then return nil end
  if ty ~= "linear" and ty ~= "yarn" then
    error(fmt("%s: rope scaling type '%s' (%s) is not supported (linear, yarn)", path, tostring(ty),
      key("rope.scaling.type")), 0)
  end
  if type(factor) ~= "number" then error(fmt("%s: %s is missing", path, key("rope.scaling.factor")), 0) end
  local r = {rope_type = ty, type = ty, factor = M.f32_decimal(factor)}
  if ty == "yarn" then
    r.original_max_position_embeddings = meta[key("rope.scaling.original_context_length")]
    local af = meta[key("rope.scaling.attn_factor")]
    if af and af ~= 1 then r.attention_factor = M.f32_decimal(af) end
  end
  return r
end

-- llama.cpp's rope factors of llama3 rope scaling (convert_hf_to_gguf's
-- generate_extra_tensors in conversion/llama.py): per frequency 1 above the
-- high-frequency wavelength, `factor` below the low one, 1 / ((1 - s) / factor
-- + s) in between, s = (L / wavelen - low) / (high - low). -> Lua array
function M.llama3_factors(rs, theta, dim)
  local L, lo, hi, f = rs.original_max_position_embeddings or 8192, rs.low_freq_factor or 1.0,
    rs.high_freq_factor or 4.0, rs.factor or 8.0
  local out = {}
  for i = 1, dim / 2 do
    local freq = f32(1.0 / f32(theta ^ f32((2 * (i - 1)) / dim)))
    local w = 2 * math.pi / freq
    if w < L / hi then out[i] = 1
    elseif w > L / lo then out[i] = f
    else
      local sm = (L / w - lo) / (hi - lo)
      out[i] = 1 / ((1 - sm) / f + sm)
    end
  end
  return out
end

-- The llama3 rope_scaling that gives a GGUF's rope_freqs.weight (Llama 3.1 /
-- 3.2 files carry their scaling only as that tensor). The factors fix the
-- ratios low / L and high / L (s is linear in 1 / wavelen), not L itself: with
-- low_freq_factor 1 (every Llama 3.x) L and high follow; the result is checked
-- by recomputing the factors. With fewer than two smoothed entries Llama's
-- high_freq_factor 4 is assumed; factors of another shape are an error naming
-- the tensor.
local function llama3_from_factors(t, theta, dim, path)
  local n = t:numel()
  if t:dim() ~= 1 or n ~= dim / 2 then
    error(fmt("%s: rope_freqs.weight has %d values, expected head_dim / 2 = %d", path, n, dim / 2), 0)
  end
  local fv, factor = {}, 1
  local d = t:to("f32"):contiguous()
  for i = 1, n do fv[i] = d[i]; factor = math.max(factor, fv[i]) end
  if factor == 1 then return nil end -- all ones: no scaling
  local pts = {}
  for i = 1, n do
    local v = fv[i]
    if math.abs(v - 1) > 1e-6 and math.abs(v - factor) > 1e-6 * factor then
      local freq = f32(1.0 / f32(theta ^ f32((2 * (i - 1)) / dim)))
      pts[#pts + 1] = {freq / (2 * math.pi), (1 / v - 1 / factor) / (1 - 1 / factor)}
    end
  end
  local rs = {rope_type = "llama3", factor = M.f32_decimal(factor), low_freq_factor = 1.0, high_freq_factor = 4.0}
  if #pts == 0 then
    -- every factor is 1 or `factor`: any L with the ones' wavelengths below L / 4
    -- and the others' above L gives them; Llama's 8192 when it fits
    local lo_w, hi_w = 0, math.huge
    for i = 1, n do
      local w = 2 * math.pi / f32(1.0 / f32(theta ^ f32((2 * (i - 1)) / dim)))
      if fv[i] == 1 then lo_w = math.max(lo_w, 4 * w) else hi_w = math.min(hi_w, w) end
    end
    rs.original_max_position_embeddings = (8192 > lo_w and 8192 < hi_w) and 8192 or math.floor((lo_w + hi_w) / 2)
  elseif #pts == 1 then
    -- one smoothed entry: with Llama's high_freq_factor 4, L = wavelen * (1 + 3 s)
    local L = (1 + 3 * pts[1][2]) / pts[1][1]
    if math.abs(L - math.floor(L + 0.5)) < 1e-3 * L then L = math.floor(L + 0.5) end
    rs.original_max_position_embeddings = L
  else
    local x1, s1, x2, s2 = pts[1][1], pts[1][2], pts[#pts][1], pts[#pts][2]
    local a = (s2 - s1) / (x2 - x1)
    local b = s1 - a * x1
    local L, hi = -a / b, (b - 1) / b
    -- config.json had round numbers: take them when they are within the f32 noise
    if math.abs(L - math.floor(L + 0.5)) < 1e-3 * L then L = math.floor(L + 0.5) end
    local hr = math.floor(hi * 1000 + 0.5) / 1000
    if math.abs(hi - hr) < 1e-4 * hi then hi = hr end
    rs.high_freq_factor, rs.original_max_position_embeddings = hi, L
  end
  local back, ok = M.llama3_factors(rs, theta, dim), true
  for i = 1, n do ok = ok and math.abs(back[i] - fv[i]) <= 1e-5 * math.max(1, fv[i]) end
  if not ok then
    error(fmt("%s: rope_freqs.weight (per-frequency rope factors up to %g) does not match llama3 rope scaling, " ..
      "the only kind lfl reads from it", path, factor), 0)
  end
  return rs
end

-- HF config from GGUF metadata (and, for the family's config function, the
-- file's tensors by ggml name when known: which blocks have experts)
function M.config(meta, path, tensors)
  local arch = meta["general.architecture"]
  local fam = family(arch, path)
  local g = fam.gguf
  local function key(name) return arch .. "." .. name end
  local function k(name, default)
    local v = meta[key(name)]
    if v == nil then
      if default == nil then error(fmt("%s: metadata key %s.%s is missing", path, arch, name), 0) end
      return default
    end
    return v
  end
  -- the sizes everything is built from: positive integers, or an error naming
  -- the metadata key (a head count of 0 once reached a reshape as -2^63)
  local function count(name, default)
    local v = k(name, default)
    if type(v) ~= "number" or v ~= math.floor(v) or v < 1 or v >= 2 ^ 53 then
      local shown = type(v) == "table" and "a list (per-layer values are not supported)" or tostring(v)
      error(fmt("%s: metadata %s.%s is %s, expected an integer >= 1", path, arch, name, shown), 0)
    end
    return v
  end
  local hidden, heads = count("embedding_length"), count("attention.head_count")
  local kv = count("attention.head_count_kv", heads)
  if heads % kv ~= 0 then
    error(fmt("%s: metadata %s.attention.head_count %d is not a multiple of %s.attention.head_count_kv %d", path,
      arch, heads, arch, kv), 0)
  end
  if meta[key("attention.key_length")] == nil and hidden % heads ~= 0 then
    error(fmt("%s: metadata %s.embedding_length %d is not divisible by %s.attention.head_count %d (and there is " ..
      "no %s.attention.key_length)", path, arch, hidden, arch, heads, arch), 0)
  end
  local cfg = {
    model_type = fam.model_type, architectures = g.hf_class and {g.hf_class} or nil,
    hidden_size = hidden, num_hidden_layers = count("block_count"), intermediate_size = count("feed_forward_length"),
    num_attention_heads = heads, num_key_value_heads = kv,
    max_position_embeddings = k("context_length", 2048), rope_theta = k("rope.freq_base", 10000.0),
    rms_norm_eps = k("attention.layer_norm_rms_epsilon", 1e-6),
    head_dim = count("attention.key_length", hidden / heads),
    vocab_size = meta[arch .. ".vocab_size"] or (meta["tokenizer.ggml.tokens"] and #meta["tokenizer.ggml.tokens"]),
    bos_token_id = meta["tokenizer.ggml.bos_token_id"], eos_token_id = meta["tokenizer.ggml.eos_token_id"],
    pad_token_id = meta["tokenizer.ggml.padding_token_id"],
  }
  local sw = meta[arch .. ".attention.sliding_window"]
  if sw then cfg.sliding_window = sw end
  cfg.rope_scaling = rope_scaling(meta, path, key)
  if g.config then g.config(cfg, meta, key, k, tensors or {}) end
  for name, v in pairs(cfg) do cfg[name] = M.f32_decimal(v) end
  return cfg
end

-- Reverses llama.cpp's permute(w, n_head): rows grouped per head as
-- [n_head, head_dim/2, 2, in] go back to HF's [n_head, 2, head_dim/2, in].
local function unpermute(w, n_head)
  local s = w:size()
  local rows, cols = s[1], s[2]
  local hd = rows / n_head
  return w:reshape(n_head, hd / 2, 2, cols):transpose(2, 3):reshape(rows, cols)
end
M.unpermute = unpermute

-- the GGUF block kinds a linear can keep (core/ops/ggml_gemm.c)
local BLOCKS = {q4_0 = true, q4_1 = true, q5_0 = true, q5_1 = true, q8_0 = true, q4_k = true, q5_k = true, q6_k = true}
M.BLOCKS = BLOCKS

-- opts.gguf_blocks = true keeps every decoder-layer linear weight stored in a
-- block kind as the file stores it (mmapped; q/k rows unpermuted block row by
-- block row into their own copy): no dequantized copy, the linears read the
-- blocks tile by tile (training, prefill) or with int8 dot products (decoding).
-- Such weights are frozen: LoRA-type methods only. Embeddings, norms and
-- lm_head are dequantized as without it (the head's blocks are kept besides,
-- for the logits of forward: m.head_blocks, lfl.model.decoder.head_weight).
function M.load(path, opts)
  opts = opts or {}
  local meta = lfl.gguf.read(path).metadata
  local g = {tensors = lfl.gguf.tensors(path)} -- {name = tensor in its stored (block) type}
  local cfg = M.config(meta, path, g.tensors)
  local fg = family(meta["general.architecture"], path).gguf
  -- a block past block_count would be silently unused: wrong data
  local past, past_i
  for name in pairs(g.tensors) do
    local i = tonumber(name:match("^blk%.(%d+)%.") or "")
    if i and i >= cfg.num_hidden_layers and (not past or name < past) then past, past_i = name, i end
  end
  if past then
    error(fmt("%s: tensor '%s' belongs to block %d, but metadata %s.block_count is %d (blocks 0..%d): the file " ..
      "is inconsistent", path, past, past_i, meta["general.architecture"], cfg.num_hidden_layers,
      cfg.num_hidden_layers - 1), 0)
  end
  -- Llama 3.1 / 3.2's rope scaling travels as per-frequency factors
  local rf = g.tensors["rope_freqs.weight"]
  if rf then
    g.tensors["rope_freqs.weight"] = nil
    if cfg.rope_scaling then
      error(fmt("%s: both rope_freqs.weight and rope scaling metadata (%s): the file is inconsistent", path,
        cfg.rope_scaling.rope_type), 0)
    end
    cfg.rope_scaling = llama3_from_factors(rf, cfg.rope_theta, cfg.head_dim, path)
  end
  -- the family's rewrites of the file's tensors (DeepSeek's split kv_b)
  if fg.tensors then fg.tensors(g.tensors, cfg, path) end
  local params = {}
  local model = require("lfl.model")
  local want = model.check_dtype(opts.dtype or "f32")
  local quant = model.check_quantize(opts.quantize)
  local half = HALF[want]
  local keep = opts.gguf_blocks
  if keep and quant then
    error(fmt("%s: gguf_blocks keeps the file's blocks and quantize re-quantizes them to %s: choose one", path,
      quant.type), 0)
  end
  local function place(name, hf, t)
    -- block types dequantize (per tensor, via f32) to f32, or to bf16 in a
    -- 16-bit model; the model's dtype rules (model.param_dtype) do the rest
    local to = "f32"
    if half and t:dim() >= 2 then to = HALF[t:dtype()] and t:dtype() or want end
    local permute = fg.permuted and (hf:match("self_attn%.q_proj%.weight$") and cfg.num_attention_heads or
      hf:match("self_attn%.k_proj%.weight$") and cfg.num_key_value_heads)
    local w
    if keep and BLOCKS[t:dtype()] and model.quantizes(hf, t) then
      w = permute and lfl.ggml_unpermute_rows(t, permute) or t -- stays in its blocks
    elseif quant and not permute and model.quantizes(hf, t) then
      w = model.quantize_weight(t, quant) -- QLoRA: straight from the blocks
    else
      w = t:to(to)
      if permute then w = unpermute(w, permute) end
      if fg.norm_offset and hf:match("norm%.weight$") then w = w - fg.norm_offset end
      w = w:contiguous()
      if quant and model.quantizes(hf, w) then w = model.quantize_weight(w, quant) end
    end
    params[hf] = w
  end
  for name, t in pairs(g.tensors) do
    -- the file's family names its tensors (a llama file can hold a Mixtral)
    local hf = M.hf_name(name, cfg.model_type, fg.names or {})
    if not hf then error(fmt("%s: tensor '%s' has no Hugging Face counterpart for %s", path, name, cfg.model_type), 0) end
    if hf:find("*", 1, true) then
      -- llama.cpp fuses a layer's experts into one [n_expert, rows, cols]
      -- tensor; the decoder reads one 2-D weight per expert. The fused tensor
      -- is dequantized and cut into contiguous copies (kept blocks would need
      -- per-expert block views: with gguf_blocks the experts dequantize too).
      local s = t:size()
      if t:dim() ~= 3 or s[1] ~= cfg.num_experts and s[1] ~= cfg.num_local_experts and s[1] ~= cfg.n_routed_experts then
        error(fmt("%s: tensor '%s' has shape [%s], expected [n_expert, rows, cols] with n_expert from %s.expert_count",
          path, name, table.concat(s, ", "), meta["general.architecture"]), 0)
      end
      local to = half and (HALF[t:dtype()] and t:dtype() or want) or "f32"
      local all = t:to(to)
      for e = 0, s[1] - 1 do
        place(name, (hf:gsub("%*", tostring(e))), all:narrow(1, e + 1, 1):reshape(s[2], s[3]):contiguous())
      end
    else
      place(name, hf, t)
    end
  end
  cfg.tie_word_embeddings = params["lm_head.weight"] == nil
  local m = require("lfl.model").from_params(cfg, params, opts, path)
  m.path = path
  m.gguf_blocks = keep and true or nil
  -- the head (the tied embedding or output.weight) also stays as the file's
  -- blocks for the logits of a forward (decoding reads it once a token: 113 MB
  -- in f32 against 30 MB in q8_0); the dequantized parameter stays for the
  -- embedding lookup, the fused training loss and any training of it
  local hsrc = g.tensors[cfg.tie_word_embeddings and "token_embd.weight" or "output.weight"]
  local hname = cfg.tie_word_embeddings and "model.embed_tokens.weight" or "lm_head.weight"
  if keep and hsrc and BLOCKS[hsrc:dtype()] and hsrc:dim() == 2 then
    m.head_blocks = {weight = hsrc, name = hname, ptr = m.params[hname]:data_ptr()}
  end
  -- the scalars (chat template, names, sizes) stay; the vocabulary arrays
  -- (tokens, merges, scores: ~150k Lua values for a 49k vocabulary) are the
  -- tokenizer's business and would make every Lua GC cycle traverse them
  local kept = {}
  for k, v in pairs(meta) do
    if type(v) ~= "table" or #v <= 1024 then kept[k] = v end
  end
  m.gguf_metadata = kept
  return m
end

return M
