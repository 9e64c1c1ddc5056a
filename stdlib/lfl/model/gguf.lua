-- Models from GGUF files: metadata -> an HF-style config, ggml tensor names ->
-- Hugging Face names, llama.cpp's q/k row permutation reversed, gemma's +1 on
-- norm weights undone, block types dequantized on load.
local lfl = lfl
local fmt = string.format

local M = {}

-- GGUF architecture -> HF model_type
local ARCH = {llama = "llama", mistral = "mistral", qwen2 = "qwen2", qwen3 = "qwen3", gemma = "gemma",
              gemma2 = "gemma2", phi3 = "phi3", olmo = "olmo", olmo2 = "olmo2", starcoder2 = "starcoder2"}
local HF_CLASS = {llama = "LlamaForCausalLM", mistral = "MistralForCausalLM", qwen2 = "Qwen2ForCausalLM",
                  qwen3 = "Qwen3ForCausalLM", gemma = "GemmaForCausalLM", gemma2 = "Gemma2ForCausalLM",
                  phi3 = "Phi3ForCausalLM", olmo = "OlmoForCausalLM", olmo2 = "Olmo2ForCausalLM",
                  starcoder2 = "Starcoder2ForCausalLM"}
-- archs whose q/k rows llama.cpp permuted when converting (convert_hf_to_gguf's
-- LlamaModel, and OlmoModel which copies its modify_tensors)
local PERMUTED = {llama = true, mistral = true, olmo = true}
local HALF = {bf16 = true, f16 = true}

local LAYER_NAMES = {
  attn_norm = "input_layernorm", ffn_norm = "post_attention_layernorm",
  attn_q = "self_attn.q_proj", attn_k = "self_attn.k_proj", attn_v = "self_attn.v_proj",
  attn_output = "self_attn.o_proj", attn_qkv = "self_attn.qkv_proj",
  attn_q_norm = "self_attn.q_norm", attn_k_norm = "self_attn.k_norm",
  ffn_gate = "mlp.gate_proj", ffn_up = "mlp.up_proj", ffn_down = "mlp.down_proj",
  post_attention_norm = "post_attention_layernorm", post_ffw_norm = "post_feedforward_layernorm",
}

function M.hf_name(name, model_type)
  if name == "token_embd.weight" then return "model.embed_tokens.weight" end
  local on = name:match("^output_norm%.(%a+)$")
  if on then return "model.norm." .. on end
  if name == "output.weight" then return "lm_head.weight" end
  local l, rest, suffix = name:match("^blk%.(%d+)%.([%w_]+)%.(%w+)$")
  if not l then return nil end
  local hf = LAYER_NAMES[rest]
  if model_type == "gemma2" and rest == "ffn_norm" then hf = "pre_feedforward_layernorm" end
  if model_type == "phi3" and rest == "ffn_up" then hf = "mlp.gate_up_proj" end
  if model_type == "starcoder2" and rest == "ffn_up" then hf = "mlp.c_fc" end
  if model_type == "starcoder2" and rest == "ffn_down" then hf = "mlp.c_proj" end
  if not hf then return nil end
  return fmt("model.layers.%s.%s.%s", l, hf, suffix)
end

-- HF config from GGUF metadata
function M.config(meta, path)
  local arch = meta["general.architecture"]
  local mt = ARCH[arch]
  if not mt then error(fmt("%s: GGUF architecture '%s' is not supported", path, tostring(arch)), 0) end
  local function k(key, default)
    local v = meta[arch .. "." .. key]
    if v == nil then
      if default == nil then error(fmt("%s: metadata key %s.%s is missing", path, arch, key), 0) end
      return default
    end
    return v
  end
  local hidden, heads = k("embedding_length"), k("attention.head_count")
  local cfg = {
    model_type = mt, architectures = {HF_CLASS[mt]},
    hidden_size = hidden, num_hidden_layers = k("block_count"), intermediate_size = k("feed_forward_length"),
    num_attention_heads = heads, num_key_value_heads = k("attention.head_count_kv", heads),
    max_position_embeddings = k("context_length", 2048), rope_theta = k("rope.freq_base", 10000.0),
    rms_norm_eps = k("attention.layer_norm_rms_epsilon", 1e-6),
    head_dim = k("attention.key_length", hidden / heads),
    vocab_size = meta[arch .. ".vocab_size"] or (meta["tokenizer.ggml.tokens"] and #meta["tokenizer.ggml.tokens"]),
    bos_token_id = meta["tokenizer.ggml.bos_token_id"], eos_token_id = meta["tokenizer.ggml.eos_token_id"],
    pad_token_id = meta["tokenizer.ggml.padding_token_id"],
  }
  local sw = meta[arch .. ".attention.sliding_window"]
  if sw then cfg.sliding_window = sw end
  if mt == "starcoder2" then
    -- LayerNorm eps; convert writes no sliding window, and llama.cpp attends over everything
    cfg.norm_epsilon = k("attention.layer_norm_epsilon", 1e-5)
    cfg.rms_norm_eps = nil
  elseif mt == "olmo" then
    cfg.clip_qkv = meta[arch .. ".attention.clamp_kqv"]
  end
  if mt == "gemma2" then
    cfg.attn_logit_softcapping = meta[arch .. ".attn_logit_softcapping"]
    cfg.final_logit_softcapping = meta[arch .. ".final_logit_softcapping"]
    cfg.query_pre_attn_scalar = cfg.head_dim
  end
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

function M.load(path, opts)
  opts = opts or {}
  local meta = lfl.gguf.read(path).metadata
  local g = {tensors = lfl.gguf.tensors(path)} -- {name = tensor in its stored (block) type}
  local cfg = M.config(meta, path)
  local params = {}
  local want = require("lfl.model").check_dtype(opts.dtype or "f32")
  local half = HALF[want]
  for name, t in pairs(g.tensors) do
    local hf = M.hf_name(name, cfg.model_type)
    if not hf then error(fmt("%s: tensor '%s' has no Hugging Face counterpart for %s", path, name, cfg.model_type), 0) end
    -- block types dequantize (per tensor, via f32) to f32, or to bf16 in a
    -- 16-bit model; the model's dtype rules (model.param_dtype) do the rest
    local to = "f32"
    if half and t:dim() >= 2 then to = HALF[t:dtype()] and t:dtype() or want end
    local w = t:to(to)
    if PERMUTED[meta["general.architecture"]] then
      if hf:match("self_attn%.q_proj%.weight$") then w = unpermute(w, cfg.num_attention_heads)
      elseif hf:match("self_attn%.k_proj%.weight$") then w = unpermute(w, cfg.num_key_value_heads) end
    end
    if (cfg.model_type == "gemma" or cfg.model_type == "gemma2") and hf:match("norm%.weight$") then w = w - 1 end
    params[hf] = w:contiguous()
  end
  cfg.tie_word_embeddings = params["lm_head.weight"] == nil
  local m = require("lfl.model").from_params(cfg, params, opts)
  m.path = path
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
