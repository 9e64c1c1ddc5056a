-- A model as one GGUF file that llama.cpp loads (lfl export export_format=gguf):
-- the architecture keys from the HF config, the tokenizer (tokenizer.ggml.*)
-- and chat template taken over from a GGUF base or converted from an HF
-- folder's byte-level BPE tokenizer.json, llama.cpp's tensor names, the
-- q/k rows of llama-family models permuted as convert_hf_to_gguf.py does (the
-- inverse of lfl.model.gguf's unpermute; Qwen2/Qwen3 keep HF's order), and
-- the weights in f32, f16, bf16,
-- Q8_0 or Q4_K (Q5_0 for rows that are no multiple of 256, llama.cpp's fallback).
--
--   gguf_export.write(model, path, {quantization = "f16", tokenizer = true|false, name = ...})
--     -> {path = path, types = {[ggml name] = type}, n_tensors = n}
local lfl = lfl
local fmt = string.format

local M = {}

-- export_quantization -> llama.cpp's general.file_type (llama_ftype) and the
-- type of a weight matrix whose rows have ne0 elements
M.QUANTIZATIONS = {
  f32 = {file_type = 0, matrix = function() return "f32" end},
  f16 = {file_type = 1, matrix = function() return "f16" end},
  bf16 = {file_type = 32, matrix = function() return "bf16" end},
  q8_0 = {file_type = 7, matrix = function(ne0) return ne0 % 32 == 0 and "q8_0" or "f16" end},
  -- all-Q4_K is closest to llama.cpp's Q4_K_S (14); rows that K-quants cannot
  -- take fall back as llama_tensor_get_type does (Q4_K -> Q5_0)
  q4_k = {file_type = 14, matrix = function(ne0)
    return ne0 % 256 == 0 and "q4_k" or ne0 % 32 == 0 and "q5_0" or "f16" end},
}

-- HF module names in a decoder layer -> llama.cpp's (gguf-py's tensor_mapping)
local LAYER = {
  input_layernorm = "attn_norm", post_attention_layernorm = "ffn_norm",
  ["self_attn.q_proj"] = "attn_q", ["self_attn.k_proj"] = "attn_k", ["self_attn.v_proj"] = "attn_v",
  ["self_attn.o_proj"] = "attn_output", ["self_attn.q_norm"] = "attn_q_norm", ["self_attn.k_norm"] = "attn_k_norm",
  ["mlp.gate_proj"] = "ffn_gate", ["mlp.up_proj"] = "ffn_up", ["mlp.down_proj"] = "ffn_down",
}

-- The model types whose tensors and keys this writer maps completely (and the
-- tests check); their llama.cpp architecture and whether q/k are permuted come
-- from the family module's gguf table (recipes/models/<family>.lua), as the
-- reader's do. Anything else is refused by name, never written with guesses.
M.ARCHS = {llama = true, qwen2 = true, qwen3 = true}

function M.gguf_name(hf)
  if hf == "model.embed_tokens.weight" then return "token_embd.weight" end
  if hf == "model.norm.weight" then return "output_norm.weight" end
  if hf == "lm_head.weight" then return "output.weight" end
  local l, mod, suffix = hf:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
  local g = l and LAYER[mod]
  if not g then return nil end
  return fmt("blk.%s.%s.%s", l, g, suffix)
end

-- llama.cpp's permute(w, n_head): HF's rotate_half row order [n_head, 2, hd/2]
-- becomes the interleaved [n_head, hd/2, 2] its RoPE kernel expects
local function permute(w, n_head)
  local s = w:size()
  local rows, cols = s[1], s[2]
  local hd = rows / n_head
  return w:reshape(n_head, 2, hd / 2, cols):transpose(2, 3):reshape(rows, cols):contiguous()
end
M.permute = permute

local function rope_theta(cfg)
  return cfg.rope_theta or (type(cfg.rope_parameters) == "table" and cfg.rope_parameters.rope_theta) or 10000.0
end

-- the architecture keys, as convert_hf_to_gguf.py's LlamaModel (and Qwen2Model,
-- Qwen3Model, which add nothing here) writes them
local function arch_kv(cfg, arch, n_vocab, where)
  local kv = {}
  local function add(k, ty, v) if v ~= nil then kv[#kv + 1] = {arch .. "." .. k, ty, v} end end
  local heads = cfg.num_attention_heads
  local hd = cfg.head_dim or cfg.hidden_size / heads
  add("vocab_size", "u32", n_vocab)
  add("context_length", "u32", cfg.max_position_embeddings)
  add("embedding_length", "u32", cfg.hidden_size)
  add("block_count", "u32", cfg.num_hidden_layers)
  add("feed_forward_length", "u32", cfg.intermediate_size)
  add("rope.dimension_count", "u32", hd)
  add("attention.head_count", "u32", heads)
  add("attention.head_count_kv", "u32", cfg.num_key_value_heads or heads)
  add("rope.freq_base", "f32", rope_theta(cfg))
  add("attention.layer_norm_rms_epsilon", "f32", cfg.rms_norm_eps or 1e-6)
  if hd ~= cfg.hidden_size / heads then
    add("attention.key_length", "u32", hd)
    add("attention.value_length", "u32", hd)
  end
  local rs = cfg.rope_scaling or (type(cfg.rope_parameters) == "table" and cfg.rope_parameters.rope_type ~= "default"
    and cfg.rope_parameters) or nil
  if rs then
    local ty = rs.rope_type or rs.type
    if ty == "linear" then
      add("rope.scaling.type", "string", "linear")
      add("rope.scaling.factor", "f32", rs.factor)
    elseif ty == "yarn" then
      add("rope.scaling.type", "string", "yarn")
      add("rope.scaling.factor", "f32", rs.factor)
      add("rope.scaling.original_context_length", "u32", rs.original_max_position_embeddings)
      if rs.attention_factor then add("rope.scaling.attn_factor", "f32", rs.attention_factor) end
    elseif ty == "llama3" then
      -- no metadata: the scaling travels as the rope_freqs.weight tensor (M.write adds it)
    elseif ty ~= "default" and ty ~= nil then
      error(fmt("%s: rope scaling '%s' cannot be written to GGUF by lfl yet (linear, yarn and llama3 can)", where,
        tostring(ty)), 0)
    end
  end
  if cfg.sliding_window and cfg.use_sliding_window ~= false then
    error(fmt("%s: sliding-window attention (sliding_window %s) has no place in a llama GGUF", where,
      tostring(cfg.sliding_window)), 0)
  end
  return kv
end

-- tokenizer.* keys of a GGUF base, copied with their types (vocabulary,
-- scores, token types, merges, special ids, add_bos, chat template)
local function tokenizer_kv(src, meta, n_vocab, where)
  local keys = {}
  for k in pairs(meta) do
    if k:match("^tokenizer%.") then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local tokens = meta["tokenizer.ggml.tokens"]
  if not meta["tokenizer.ggml.model"] or type(tokens) ~= "table" then
    error(fmt("%s: the base %s has no tokenizer (tokenizer.ggml.model / tokens); llama.cpp cannot load a GGUF " ..
      "without one", where, src), 0)
  end
  if #tokens ~= n_vocab then
    error(fmt("%s: the embedding has %d rows but the tokenizer of %s has %d tokens (a resized vocabulary is not " ..
      "written to GGUF yet)", where, n_vocab, src, #tokens), 0)
  end
  local kv = {}
  for _, k in ipairs(keys) do kv[#kv + 1] = {k, "copy"} end
  return kv
end

-- convert_hf_to_gguf.py's does_token_look_special: added tokens some models
-- leave unmarked that llama.cpp must treat as control tokens
local function looks_special(s)
  return s == "<pad>" or s == "<mask>" or s == "<2mass>" or s == "[@BOS@]" or (s:sub(1, 2) == "<|" and s:sub(-2) == "|>")
    or (s:sub(1, 4) == "<\239\189\156" and s:sub(-4) == "\239\189\156>") or (s:sub(1, 7) == "<unused" and s:sub(-1) == ">")
end

local function has_bytelevel(p)
  if type(p) ~= "table" then return false end
  if p.type == "ByteLevel" then return true end
  for _, sub in ipairs(p.pretokenizers or {}) do if has_bytelevel(sub) then return true end end
  return false
end

-- tokenizer.* keys from an HF folder's tokenizer.json / tokenizer_config.json,
-- as convert_hf_to_gguf.py's _set_vocab_gpt2 and gguf-py's SpecialVocab write
-- them (byte-level BPE only): tokens with their types, merges, the
-- pre-tokenizer's llama.cpp name (found by hashing the probe text's ids,
-- lfl.model.gguf_pre), special ids, add_bos / add_eos and the chat template
local function hf_tokenizer_kv(dir, cfg, n_vocab, where)
  local read_json = require("lfl.model").read_json
  local tj = dir .. "/tokenizer.json"
  if not lfl.fs.exists(tj) then
    error(fmt("%s: %s has no tokenizer.json, which a GGUF export takes its tokenizer from", where, dir), 0)
  end
  local j = read_json(tj)
  local m = type(j.model) == "table" and j.model or {}
  if m.type ~= "BPE" or not has_bytelevel(j.pre_tokenizer) then
    error(fmt("%s: %s: a %s tokenizer%s is not converted to GGUF yet (byte-level BPE, llama.cpp's gpt2, is)", where,
      tj, tostring(m.type), m.type == "BPE" and " without a ByteLevel pre-tokenizer (SentencePiece-style)" or ""), 0)
  end
  local rev, added = {}, {}
  for tok, id in pairs(m.vocab or {}) do rev[id] = tok end
  for _, a in ipairs(j.added_tokens or {}) do rev[a.id] = a.content; added[a.id] = a end
  for id in pairs(rev) do
    if id >= n_vocab then
      error(fmt("%s: %s has token id %d, but the embedding has %d rows", where, tj, id, n_vocab), 0)
    end
  end
  local tokens, types = {}, {}
  for i = 0, n_vocab - 1 do
    local s = rev[i]
    if s == nil then
      tokens[i + 1], types[i + 1] = "[PAD" .. i .. "]", 5 -- UNUSED
    elseif added[i] then
      if added[i].special or looks_special(s) then
        tokens[i + 1], types[i + 1] = s, 3 -- CONTROL
      else
        tokens[i + 1], types[i + 1] = s:gsub("\226\150\129", " "), 4 -- USER_DEFINED, SentencePiece spaces undone
      end
    else
      tokens[i + 1], types[i + 1] = s, 1 -- NORMAL
    end
  end
  local merges = {}
  for i, mg in ipairs(m.merges or {}) do
    merges[i] = type(mg) == "table" and (mg[1] .. " " .. mg[2]) or mg
  end
  local tok = lfl.tokenizer.load(tj)
  local pre = require("lfl.model.gguf_pre")
  local hash = lfl.gguf.sha256("[" .. table.concat(tok:encode(pre.CHKTXT), ", ") .. "]")
  local pre_name = pre.BY_HASH[hash]
  if not pre_name then
    error(fmt("%s: %s: llama.cpp does not know this tokenizer's pre-tokenizer (probe hash %s is not in " ..
      "convert_hf_to_gguf.py's table), so it would tokenize differently", where, tj, hash), 0)
  end
  local kv = {
    {"tokenizer.ggml.model", "string", "gpt2"}, {"tokenizer.ggml.pre", "string", pre_name},
    {"tokenizer.ggml.tokens", "[string]", tokens}, {"tokenizer.ggml.token_type", "[i32]", types},
    {"tokenizer.ggml.merges", "[string]", merges},
  }
  local tc = lfl.fs.exists(dir .. "/tokenizer_config.json") and read_json(dir .. "/tokenizer_config.json") or {}
  local function id_of(v)
    if type(v) == "table" then v = v.content end
    return type(v) == "string" and tok:token_to_id(v) or nil
  end
  for _, e in ipairs({{"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"},
                      {"pad", "padding_token_id"}}) do
    local id = id_of(tc[e[1] .. "_token"])
    if id == nil then
      local c = cfg[e[1] .. "_token_id"]
      if type(c) == "table" then c = c[1] end
      id = type(c) == "number" and c or nil
    end
    if id then kv[#kv + 1] = {"tokenizer.ggml." .. e[2], "u32", id} end
  end
  for _, k in ipairs({"add_bos_token", "add_eos_token"}) do
    if type(tc[k]) == "boolean" then kv[#kv + 1] = {"tokenizer.ggml." .. k, "bool", tc[k]} end
  end
  local tpl = tc.chat_template
  if type(tpl) == "table" then -- a list of named templates: the default one
    local named = tpl
    tpl = nil
    for _, e in ipairs(named) do if e.name == "default" then tpl = e.template end end
  end
  if tpl == nil and lfl.fs.exists(dir .. "/chat_template.jinja") then tpl = lfl.fs.read(dir .. "/chat_template.jinja") end
  if type(tpl) == "string" then kv[#kv + 1] = {"tokenizer.chat_template", "string", tpl} end
  return kv
end

local function basename(p) return (p:match("([^/]+)$") or p):gsub("%.gguf$", "") end

function M.write(model, path, opts)
  opts = opts or {}
  local q = opts.quantization or "f16"
  local Q = M.QUANTIZATIONS[q]
  if not Q then
    local names = {}
    for k in pairs(M.QUANTIZATIONS) do names[#names + 1] = k end
    table.sort(names)
    error(fmt("%s: quantization '%s' is not one lfl writes (%s)", path, tostring(q), table.concat(names, ", ")), 0)
  end
  local cfg = model.config
  local spec = M.ARCHS[cfg.model_type] and require("lfl.model.registry").arch(cfg.model_type).gguf
  if not spec then
    local names = {}
    for k in pairs(M.ARCHS) do names[#names + 1] = k end
    table.sort(names)
    error(fmt("%s: exporting model_type '%s' to GGUF is not supported yet (lfl maps the tensors and keys of: %s)",
      path, tostring(cfg.model_type), table.concat(names, ", ")), 0)
  end
  local arch = spec.arch
  local params = model.params
  local emb = params["model.embed_tokens.weight"]
  if not emb then error(fmt("%s: the model has no model.embed_tokens.weight", path), 0) end
  local n_vocab = emb:size()[1]
  local names = {}
  for _, n in ipairs(model.names) do names[#names + 1] = n end
  local tensors, types = {}, {}
  local heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
  for _, hf in ipairs(names) do
    local t = params[hf]
    local g = M.gguf_name(hf)
    if not g then error(fmt("%s: parameter '%s' has no llama.cpp name for %s", path, hf, arch), 0) end
    if spec.permuted and hf:match("self_attn%.[qk]_proj%.bias$") then
      error(fmt("%s: '%s': q/k biases of a llama model are not written to GGUF (lfl's GGUF reader does not " ..
        "un-permute them)", path, hf), 0)
    end
    local dt = t:dtype()
    if not (dt == "f32" or dt == "f16" or dt == "bf16" or dt == "f64") then
      error(fmt("%s: parameter '%s' is %s; load the model unquantized to export it", path, hf, dt), 0)
    end
    if spec.permuted and hf:match("self_attn%.q_proj%.weight$") then t = permute(t, heads)
    elseif spec.permuted and hf:match("self_attn%.k_proj%.weight$") then t = permute(t, kv_heads) end
    -- vectors (norms, biases) stay f32 as in llama.cpp's own conversions
    local ty = t:dim() == 1 and "f32" or Q.matrix(t:size()[t:dim()])
    tensors[#tensors + 1] = {g, t, ty}
    types[g] = ty
  end
  -- llama3 rope scaling: llama.cpp's per-frequency factors, as convert_hf_to_gguf writes them
  local rs = cfg.rope_scaling or (type(cfg.rope_parameters) == "table" and cfg.rope_parameters) or nil
  if rs and (rs.rope_type or rs.type) == "llama3" then
    local hd = cfg.head_dim or cfg.hidden_size / heads
    local f = require("lfl.model.gguf").llama3_factors(rs, rope_theta(cfg), hd)
    tensors[#tensors + 1] = {"rope_freqs.weight", lfl.tensor(f), "f32"}
    types["rope_freqs.weight"] = "f32"
  end
  local kv = {
    {"general.architecture", "string", arch},
    {"general.type", "string", "model"},
    {"general.name", "string", opts.name or basename(path)},
    {"general.file_type", "u32", Q.file_type},
    {"general.quantization_version", "u32", 2},
  }
  for _, e in ipairs(arch_kv(cfg, arch, n_vocab, path)) do kv[#kv + 1] = e end
  local copy_from
  if opts.tokenizer ~= false then
    local src = model.path
    if not src then
      error(fmt("%s: the model has no path to take its tokenizer from ({tokenizer = false} writes none)", path), 0)
    end
    if require("lfl.model.hf_files").is_gguf(src) then
      local meta = lfl.gguf.read(src).metadata
      for _, e in ipairs(tokenizer_kv(src, meta, n_vocab, path)) do kv[#kv + 1] = e end
      copy_from = src
    else
      for _, e in ipairs(hf_tokenizer_kv(src, cfg, n_vocab, path)) do kv[#kv + 1] = e end
    end
  end
  lfl.gguf.write(path, {kv = kv, copy_from = copy_from, tensors = tensors})
  return {path = path, types = types, n_tensors = #tensors}
end

return M
