-- A model as one GGUF file that llama.cpp loads (lfl export export_format=gguf):
-- the architecture keys from the HF config, the tokenizer (tokenizer.ggml.*)
-- and chat template taken over from a GGUF base, llama.cpp's tensor names, the
-- q/k rows of llama-family models permuted as convert_hf_to_gguf.py does (the
-- inverse of lfl.model.gguf's unpermute), and the weights in f32, f16, bf16,
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

-- The model types written, with their llama.cpp architecture; anything else is
-- refused by name rather than written with guessed names or keys.
M.ARCHS = {llama = {arch = "llama", permuted = true}}

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

-- the architecture keys, as convert_hf_to_gguf.py's LlamaModel writes them
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
    elseif ty ~= "default" and ty ~= nil then
      error(fmt("%s: rope scaling '%s' cannot be written to GGUF by lfl yet (linear and yarn can)", where,
        tostring(ty)), 0)
    end
  end
  if cfg.sliding_window then
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
  local spec = M.ARCHS[cfg.model_type]
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
    if not (src and require("lfl.model.hf_files").is_gguf(src)) then
      error(fmt("%s: the tokenizer for a GGUF export is taken from a GGUF base; %s is not one (an HF folder's " ..
        "tokenizer.json is not converted yet)", path, tostring(src)), 0)
    end
    local meta = lfl.gguf.read(src).metadata
    for _, e in ipairs(tokenizer_kv(src, meta, n_vocab, path)) do kv[#kv + 1] = e end
    copy_from = src
  end
  lfl.gguf.write(path, {kv = kv, copy_from = copy_from, tensors = tensors})
  return {path = path, types = types, n_tensors = #tensors}
end

return M
