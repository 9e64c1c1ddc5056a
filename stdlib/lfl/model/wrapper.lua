-- The text part of a vision-language checkpoint (Gemma 3 4B and larger,
-- Mistral Small 3.1 / Ministral 3, Llama 4: a config.json with text_config and
-- vision_config, weights under language_model.model.* / vision_tower.* /
-- multi_modal_projector.*). lfl trains the language model on text, as
-- LlamaFactory does with freeze_vision_tower and freeze_multi_modal_projector
-- (their defaults): the language model loads under the decoder's names, the
-- other tensors are kept aside untouched, and saving writes the whole
-- checkpoint back in its own layout; adapters carry the module names
-- transformers 5 gives the language model inside the wrapper
-- (model.language_model.layers.<i>...), so PEFT attaches them to the
-- vision-language model.
local fmt = string.format
local M = {}

-- the wrapper model_types lfl reads the language model of
M.WRAPPERS = {gemma3 = "Gemma3ForConditionalGeneration", mistral3 = "Mistral3ForConditionalGeneration",
              llama4 = "Llama4ForConditionalGeneration"}
-- the language model's model_type when text_config does not say
local TEXT_TYPE = {gemma3 = "gemma3_text", mistral3 = "mistral", llama4 = "llama4_text"}

M.GEMMA3_TEXT_DEFAULTS = {
  model_type = "gemma3_text", vocab_size = 262208, hidden_size = 2304, intermediate_size = 9216,
  num_hidden_layers = 26, num_attention_heads = 8, num_key_value_heads = 4, head_dim = 256,
  hidden_activation = "gelu_pytorch_tanh", max_position_embeddings = 131072, rms_norm_eps = 1e-6,
  pad_token_id = 0, eos_token_id = 1, bos_token_id = 2, tie_word_embeddings = true, query_pre_attn_scalar = 256,
  sliding_window = 4096,
}

-- cfg (config.json) -> the language model's config and the wrapper record
-- {outer = cfg}, or cfg itself and nil for a plain checkpoint. where: the
-- config's path, for errors.
function M.unwrap(cfg, where)
  if not M.WRAPPERS[cfg.model_type] then return cfg, nil end
  local tc = cfg.text_config
  if type(tc) ~= "table" then
    error(fmt("%s: model_type %s without a text_config (the language model's settings)", where or "config",
      tostring(cfg.model_type)), 0)
  end
  local text = {}
  -- the Hub's Gemma 3 configs list only what differs from Gemma3TextConfig's
  -- defaults (transformers 5.25), which fill the rest
  if cfg.model_type == "gemma3" then
    for k, v in pairs(M.GEMMA3_TEXT_DEFAULTS) do text[k] = v end
  end
  for k, v in pairs(tc) do text[k] = v end
  if text.model_type == nil then text.model_type = TEXT_TYPE[cfg.model_type] end
  return text, {outer = cfg}
end

-- language_model.model.X (the Hub's layout, also what transformers 5 saves) or
-- model.language_model.X (transformers 5's module names) -> model.X;
-- language_model.lm_head / lm_head -> lm_head; nil for the other tensors
local function text_name(name)
  local rest = name:match("^language_model%.model%.(.+)$") or name:match("^model%.language_model%.(.+)$")
  if rest then return "model." .. rest end
  if name == "language_model.lm_head.weight" or name == "lm_head.weight" then return "lm_head.weight" end
  return nil
end

-- {checkpoint name = tensor} -> the language model's {decoder name = tensor};
-- the rest goes to w.aside. The head is tied exactly when the checkpoint has
-- none (transformers 5 writes a tied wrapper without one).
function M.split(params, w, cfg)
  local out, aside, n = {}, {}, 0
  for name, t in pairs(params) do
    local tn = text_name(name)
    if tn then
      if out[tn] then error(fmt("model: tensors '%s' and another both hold the language model's '%s'", name, tn), 0) end
      out[tn] = t
    else
      aside[name] = t
      n = n + 1
    end
  end
  w.aside, w.aside_count = aside, n
  cfg.tie_word_embeddings = out["lm_head.weight"] == nil
  return out
end

-- the decoder's names and tensors back in the checkpoint's layout, with the
-- tensors kept aside: (sorted names, {name = tensor})
function M.join(w, names, params)
  local out, list = {}, {}
  for _, n in ipairs(names) do
    local hub = n == "lm_head.weight" and "language_model.lm_head.weight" or ("language_model." .. n)
    out[hub] = params[n]
    list[#list + 1] = hub
  end
  for n, t in pairs(w.aside) do out[n] = t; list[#list + 1] = n end
  table.sort(list)
  return list, out
end

-- the config.json to save: the wrapper's, with the language model's current
-- settings (a resized vocabulary, say) as its text_config
function M.outer_config(w, text)
  local cfg = {}
  for k, v in pairs(w.outer) do cfg[k] = v end
  local tc = {}
  for k, v in pairs(text) do tc[k] = v end
  cfg.text_config = tc
  return cfg
end

-- a decoder module path -> the same module inside the wrapper as transformers
-- 5 names it (PEFT's adapter keys), and back (either layout)
function M.module_out(mod)
  if mod == "lm_head" then return mod end
  local rest = mod:match("^model%.(.+)$")
  return rest and ("model.language_model." .. rest) or mod
end

function M.module_in(mod)
  local rest = mod:match("^model%.language_model%.(.+)$") or mod:match("^language_model%.model%.(.+)$")
  if rest then return "model." .. rest end
  if mod == "language_model.lm_head" then return "lm_head" end
  return mod
end

-- key "base_model.model.<module>.<suffix>" with the module renamed by fn
function M.adapter_key(key, fn)
  local head = "base_model.model."
  if key:sub(1, #head) ~= head then return key end
  local rest = key:sub(#head + 1)
  -- the module path is everything before the adapter's own parts
  -- (".weight" / ".bias" last: a module trained whole, PEFT's modules_to_save)
  for _, suffix in ipairs({".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector", ".oft_R.weight", ".weight",
                           ".bias"}) do
    if rest:sub(-#suffix) == suffix then return head .. fn(rest:sub(1, -#suffix - 1)) .. suffix end
  end
  return key
end

return M
