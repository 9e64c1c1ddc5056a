-- Gemma 3 text (Google): model_type gemma3_text (Gemma3ForCausalLM: the 270M
-- and 1B checkpoints; of the larger image-text ones, model_type gemma3, lfl
-- loads and trains the language model: lfl.model.wrapper). Gemma 2 plus (1 + w) RMSNorms on q and k, sliding-window
-- layers with their own rotary base (rope_local_base_freq) and the global
-- layers' rope with rope_scaling; no soft-capping in the released configs.
-- config.json comes in two spellings: the Hub's (rope_theta,
-- rope_local_base_freq, rope_scaling, sliding_window_pattern) and
-- transformers 5's (rope_parameters.{full_attention, sliding_attention},
-- layer_types); both are read.
local fmt = string.format
local null = lfl.json.null

local function given(v) return v ~= nil and v ~= null end

local function number_key(cfg, key, where)
  local v = cfg[key]
  if not given(v) then return nil end
  if type(v) ~= "number" then error(fmt("%s: %s is %s, expected a number", where, key, tostring(v)), 0) end
  return v
end

-- the sliding window pattern: every pattern-th layer (1-based) is global
local function pattern(cfg, where)
  local p = cfg.sliding_window_pattern
  if not given(p) then return 6 end -- transformers' default
  if type(p) ~= "number" or p < 1 or p ~= math.floor(p) then
    error(fmt("%s: sliding_window_pattern is %s, expected an integer >= 1", where, tostring(p)), 0)
  end
  return p
end

-- "sliding_attention" or "full_attention" for layer l (1-based)
local function layer_type(cfg, l, where)
  if given(cfg.layer_types) then
    local lt = cfg.layer_types
    if type(lt) ~= "table" or #lt ~= cfg.num_hidden_layers then
      error(fmt("%s: layer_types must list one type per layer (%d)", where, cfg.num_hidden_layers), 0)
    end
    if lt[l] ~= "sliding_attention" and lt[l] ~= "full_attention" then
      error(fmt("%s: layer_types[%d] is %s, expected \"sliding_attention\" or \"full_attention\"", where, l,
        tostring(lt[l])), 0)
    end
    return lt[l]
  end
  return l % pattern(cfg, where) ~= 0 and "sliding_attention" or "full_attention"
end

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return o
end

-- rope settings of each layer type as rope.lua reads them ({rope_parameters = {...}})
local function ropes(cfg, where)
  local rp = cfg.rope_parameters
  local full, slide
  if type(rp) == "table" and (given(rp.full_attention) or given(rp.sliding_attention)) then
    full = given(rp.full_attention) and copy(rp.full_attention) or {rope_type = "default"}
    slide = given(rp.sliding_attention) and copy(rp.sliding_attention) or {rope_type = "default"}
  else
    local rs = cfg.rope_scaling
    if given(rs) and type(rs) ~= "table" then
      error(fmt("%s: rope_scaling is %s, expected an object or null", where, tostring(rs)), 0)
    end
    full = given(rs) and copy(rs) or {rope_type = "default"}
    full.rope_theta = number_key(cfg, "rope_theta", where)
    slide = {rope_type = "default", rope_theta = number_key(cfg, "rope_local_base_freq", where)}
  end
  -- transformers' defaults: 1e6 global, 1e4 local
  if not given(full.rope_theta) then full.rope_theta = 1000000.0 end
  if not given(slide.rope_theta) then slide.rope_theta = 10000.0 end
  for name, r in pairs({full_attention = full, sliding_attention = slide}) do
    if type(r.rope_theta) ~= "number" then
      error(fmt("%s: the %s rope_theta is %s, expected a number", where, name, tostring(r.rope_theta)), 0)
    end
  end
  local function view(r) return setmetatable({rope_parameters = r}, {__index = cfg}) end
  return {full_attention = view(full), sliding_attention = view(slide)}
end

local ck = {
  {name = "Gemma-3-270M", hub = "google/gemma-3-270m", size = "270M"},
  {name = "Gemma-3-270M-Instruct", hub = "google/gemma-3-270m-it", size = "270M"},
  {name = "Gemma-3-1B", hub = "google/gemma-3-1b-pt", size = "1B"},
  {name = "Gemma-3-1B-Instruct", hub = "google/gemma-3-1b-it", size = "1B"},
}
-- image-text checkpoints: their language model (text-only training; the vision
-- tower is kept and saved back untouched)
for _, s in ipairs({"4B", "12B", "27B"}) do
  ck[#ck + 1] = {name = "Gemma-3-" .. s, hub = "google/gemma-3-" .. s:lower() .. "-pt", size = s}
  ck[#ck + 1] = {name = "Gemma-3-" .. s .. "-Instruct", hub = "google/gemma-3-" .. s:lower() .. "-it", size = s}
end

return {
  family = "gemma3",
  title = "Gemma 3 (text)",
  model_type = "gemma3_text",
  arch = {
    model_type = "gemma3_text",
    traits = {norm_plus_one = true, embed_scale = true, act = "gelu_tanh", post_norms = true, qk_norm = true,
              tied = true},
    window = function(cfg, l, sw)
      if sw and layer_type(cfg, l, "config.json") == "sliding_attention" then return sw end
      return nil
    end,
    resolve = function(cfg, a)
      local where = "config.json"
      if cfg.use_bidirectional_attention == true then
        error(where .. ": use_bidirectional_attention true (EmbeddingGemma) is not supported: lfl's decoder is causal",
          0)
      end
      local s = number_key(cfg, "query_pre_attn_scalar", where) or 256
      if s <= 0 then error(fmt("%s: query_pre_attn_scalar is %s, expected a positive number", where, tostring(s)), 0) end
      a.scale = s ^ -0.5
      a.ropes = ropes(cfg, where)
      for l = 1, a.layers do a.rope_of[l] = layer_type(cfg, l, where) end
    end,
    -- llama.cpp's gemma3 (convert_hf_to_gguf's Gemma3Model, conversion/gemma.py):
    -- every norm weight, q/k norms included, stored with the +1 added; the
    -- global rope base as rope.freq_base with the rope scaling, the local one as
    -- rope.freq_base_swa (llama.cpp's fixed 10000 when absent). The file has no
    -- layer pattern or query scale: llama.cpp takes every 6th layer as global
    -- unless attention.sliding_window_pattern says otherwise (a number, or one
    -- flag per layer, true = sliding), and scales by 1/sqrt(head_dim), or by
    -- 1/sqrt(hidden / heads) for its 27B (62 blocks); lfl does the same.
    gguf = {
      arch = "gemma3", hf_class = "Gemma3ForCausalLM", norm_offset = 1,
      names = {ffn_norm = "pre_feedforward_layernorm"},
      config = function(cfg, meta, key)
        local swa_key = key("attention.sliding_window_pattern")
        local p = meta[swa_key]
        if type(p) == "table" then
          if #p ~= cfg.num_hidden_layers then
            error(fmt("GGUF metadata %s lists %d layers, expected %d", swa_key, #p, cfg.num_hidden_layers), 0)
          end
          cfg.layer_types = {}
          for i, v in ipairs(p) do cfg.layer_types[i] = v and "sliding_attention" or "full_attention" end
        elseif p ~= nil then
          cfg.sliding_window_pattern = p
        else
          cfg.sliding_window_pattern = 6
        end
        cfg.rope_local_base_freq = meta[key("rope.freq_base_swa")] or 10000.0
        cfg.query_pre_attn_scalar = cfg.num_hidden_layers == 62 and cfg.hidden_size / cfg.num_attention_heads or
          cfg.head_dim
        cfg.final_logit_softcapping = meta[key("final_logit_softcapping")]
      end,
    },
  },
  template = "gemma3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
