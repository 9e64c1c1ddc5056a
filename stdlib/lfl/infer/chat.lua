-- lfl.chat(model, messages, opts): one assistant reply to a conversation.
-- Returns the text (and finish_reason, usage), or with opts.stream an iterator
-- of text deltas. The tokenizer and chat template come from opts (tokenizer =,
-- template = name or Template) or from the model (its folder / GGUF); a model
-- without a named template uses the tokenizer's chat_template when it has one
-- (as LlamaFactory does) and "default" otherwise. Sampling options are
-- LlamaFactory's defaults (temperature 0.95, top_p 0.7, top_k 50,
-- max_new_tokens 1024) unless given; temperature 0 or do_sample = false is greedy.
local lfl = lfl
local gen = require("lfl.infer.generate")

local M = {}

local read_file = lfl.read_file

-- the chat_template string of a model (GGUF metadata or tokenizer_config.json), or nil
local function chat_template_src(model)
  if model.gguf_metadata then return model.gguf_metadata["tokenizer.chat_template"] end
  local s = model.path and read_file(model.path .. "/tokenizer_config.json")
  if not s then return nil end
  local ok, cfg = pcall(lfl.json.decode, s)
  if ok and type(cfg) == "table" and type(cfg.chat_template) == "string" then return cfg.chat_template end
  return nil
end

-- tokenizer of a model (cached on it)
function M.tokenizer(model, tok)
  if tok then return tok end
  if not model.tokenizer then
    if not model.path then error("lfl.chat: the model has no path to load a tokenizer from; pass opts.tokenizer", 0) end
    model.tokenizer = lfl.tokenizer.load(model.path)
  end
  return model.tokenizer
end

-- template from a name, a Template, or the model's tokenizer (cached on the model)
function M.template(model, tok, tpl)
  if type(tpl) == "table" then return tpl end
  if type(tpl) == "string" then return lfl.template.get(tpl) end
  if model.template then return model.template end
  local src = chat_template_src(model)
  if src then
    local specials = {}
    if tok.bos_id then specials.bos_token = tok:id_to_token(tok.bos_id) end
    if tok.eos_id then specials.eos_token = tok:id_to_token(tok.eos_id) end
    local ok, t = pcall(lfl.template.from_chat_template, src, {special_tokens = specials})
    if ok then
      -- the chat template's end-of-turn token stops generation too
      if tok.eos_id then t.stop_words = {tok:id_to_token(tok.eos_id)} end
      model.template = t
      return t
    end
  end
  model.template = lfl.template.get("default")
  return model.template
end

function M.chat(model, messages, opts)
  opts = gen.with_defaults(opts)
  local tok = M.tokenizer(model, opts.tokenizer)
  local tpl = M.template(model, tok, opts.template)
  if not opts.stream then return gen.reply(model, tok, tpl, messages, opts) end
  local co = coroutine.create(function()
    local user = opts.on_text
    opts.on_text = function(delta)
      if user and user(delta) == false then return false end
      return coroutine.yield(delta) ~= false
    end
    gen.reply(model, tok, tpl, messages, opts)
  end)
  -- for delta in lfl.chat(model, msgs, {stream = true}) do io.write(delta) end
  return function()
    if coroutine.status(co) == "dead" then return nil end
    local ok, delta = coroutine.resume(co)
    if not ok then error(delta, 0) end
    return delta
  end
end

return setmetatable(M, {__call = function(_, ...) return M.chat(...) end})
