-- A Jinja2 interpreter covering what Hugging Face chat templates use, with the
-- environment transformers sets up (ImmutableSandboxedEnvironment with
-- trim_blocks, lstrip_blocks, loopcontrols; tojson = json.dumps(ensure_ascii=False),
-- raise_exception, strftime_now, namespace, dict). Templates are lexed, parsed and
-- compiled once to a tree of Lua closures; render() then only runs closures.
-- Values follow Python: lists/dicts are Lua tables (order kept by lfl.pyjson),
-- None is pyjson.null, integral floats are boxed, strings are UTF-8 and measured,
-- indexed and sliced in code points. Errors name the template and line.
-- The parts: pyvalue (Python values), methods (str/dict/list methods), lexer,
-- parser, filters (filters and tests), runtime (compiler and globals); this
-- file is the public API.
local J = require "lfl.text.pyjson"
local P = require "lfl.text.jinja.pyvalue"
local L = require "lfl.text.jinja.lexer"
local parser = require "lfl.text.jinja.parser"
local R = require "lfl.text.jinja.runtime"
local F = require "lfl.text.jinja.filters"
local fmt, concat, sub, find = string.format, table.concat, string.sub, string.find
local null, is_dict, dkeys = J.null, J.is_dict, J.keys
local eq, is_plain, pytype, state, strip_impl = P.eq, P.is_plain, P.pytype, P.state, P.strip_impl
local tostr, truthy = P.tostr, P.truthy
local tokenize = L.tokenize
local compile_body, run_body, globals = R.compile_body, R.run_body, R.globals

local M = {}
M.null = null
M.error, M.undefined, M.pytype, M.repr, M.str = P.rt_error, P.undef, P.pytype, P.repr, P.tostr
M.truthy, M.eq, M.iter_list, M.getattr, M.getitem = P.truthy, P.eq, P.iter_list, P.getattr, P.getitem
M.tokenize = tokenize
M.filters, M.tests, M.globals = F.filters, F.tests, globals

-- ---------------------------------------------------------------------------
-- API
-- ---------------------------------------------------------------------------

local Template = {}
Template.__index = Template

-- compile(source, {name = "chat_template"}) -> template with :render(vars)
function M.compile(src, opts)
  opts = opts or {}
  if type(src) ~= "string" then error("jinja.compile: template source must be a string, got " .. type(src), 2) end
  local name = opts.name or "template"
  local toks = tokenize(src, name)
  local ast = parser.parse(toks, name)
  local saved = state.name
  state.name = name
  local ok, body = pcall(compile_body, ast)
  state.name = saved
  if not ok then error(body, 0) end
  return setmetatable({name = name, body = body, source = src}, Template)
end

-- render(vars): vars is a table of template variables (use pyjson.null for None)
function Template:render(vars)
  local root = {}
  for k, v in pairs(globals) do root[k] = v end
  for k, v in pairs(vars or {}) do root[k] = v end
  local saved_name, saved_line = state.name, state.line
  state.name, state.line = self.name, 0
  local buf = {}
  local ok, err = pcall(run_body, self.body, root, buf)
  state.name, state.line = saved_name, saved_line
  if not ok then
    if type(err) == "string" and not err:match("^jinja: ") then
      err = fmt("jinja: %s: %s", self.name, err)
    end
    error(err, 0)
  end
  return concat(buf)
end

local cache = setmetatable({}, {__mode = "v"})

-- render(source, vars): compile (cached by source) and render
function M.render(src, vars, opts)
  local t = cache[src]
  if not t then t = M.compile(src, opts); cache[src] = t end
  return t:render(vars)
end

local reasoning_fields = {"reasoning_content", "thinking", "reasoning"}

-- transformers' message normalisation: drop None-valued keys, alias reasoning fields
local function normalize_message(m)
  if not is_plain(m) or not is_dict(m) then
    error("apply_chat_template: chat messages should be dicts, got " .. pytype(m), 0)
  end
  local out, order = {}, {}
  for _, k in ipairs(dkeys(m)) do
    local v = m[k]
    if v ~= null then out[k] = v; order[#order + 1] = k end
  end
  local reasoning
  for _, k in ipairs(reasoning_fields) do
    if out[k] ~= nil then reasoning = out[k]; break end
  end
  if reasoning ~= nil then
    -- {"thinking": r, **message, "reasoning_content": r}
    local o2 = {}
    if out.thinking == nil then o2[1] = "thinking"; out.thinking = reasoning end
    for _, k in ipairs(order) do o2[#o2 + 1] = k end
    if m.reasoning_content == nil or m.reasoning_content == null then o2[#o2 + 1] = "reasoning_content" end
    out.reasoning_content = reasoning
    order = o2
  end
  return J.dict(out, order)
end

-- apply_chat_template(template, messages, opts) -> string, as transformers'
-- tokenizer.apply_chat_template(messages, tokenize=False, ...). opts: tools,
-- documents, add_generation_prompt, special tokens (bos_token, eos_token, ...)
-- and any extra template variables (enable_thinking, ...).
function M.apply_chat_template(template, messages, opts)
  opts = opts or {}
  if type(template) == "string" then
    local t = cache[template]
    if not t then t = M.compile(template, {name = "chat_template"}); cache[template] = t end
    template = t
  end
  if type(messages) ~= "table" or #messages == 0 then
    error("apply_chat_template: cannot apply a chat template to an empty conversation", 2)
  end
  local chat = {}
  for i, m in ipairs(messages) do chat[i] = normalize_message(m) end
  local vars = {}
  for k, v in pairs(opts) do vars[k] = v end
  vars.continue_final_message = nil
  vars.messages = J.list(chat)
  if vars.tools == nil then vars.tools = null end
  if vars.documents == nil then vars.documents = null end
  vars.add_generation_prompt = opts.add_generation_prompt and truthy(opts.add_generation_prompt) or false
  -- continue_final_message: render the last message open-ended (assistant prefill)
  local cfm = opts.continue_final_message
  if not cfm then return template:render(vars) end
  if vars.add_generation_prompt then
    error("apply_chat_template: continue_final_message and add_generation_prompt are not compatible", 2)
  end
  local field = type(cfm) == "string" and cfm or "content"
  local last = chat[#chat]
  local final = last[field]
  if final == nil then
    error(fmt('apply_chat_template: continue_final_message is set but the final message has no "%s" to continue', field), 2)
  end
  local fields = {field}
  local is_reasoning = false
  for _, r in ipairs(reasoning_fields) do if r == field then is_reasoning = true end end
  if is_reasoning then
    fields = {}
    for _, r in ipairs(reasoning_fields) do if last[r] ~= nil and eq(last[r], final) then fields[#fields + 1] = r end end
  end
  local src = template.source or ""
  local mentioned = false
  for _, f in ipairs(fields) do if find(src, f, 1, true) then mentioned = true end end
  if not mentioned then
    error(fmt('apply_chat_template: continue_final_message is set to "%s" but this is not an accepted field in the chat_template', field), 2)
  end
  local TAG = "CONTINUE_FINAL_MESSAGE_TAG "
  local copy = J.copy(last)
  chat[#chat] = copy
  if type(final) == "table" then
    local done = false
    for i = #final, 1, -1 do
      local block = final[i]
      if type(block) == "table" and type(block.text) == "string" then
        local nb = J.copy(block)
        local nf = J.copy(final)
        final = block.text
        nb.text = block.text .. TAG
        nf[i] = nb
        copy[field] = nf
        done = true
        break
      end
    end
    if not done then error("apply_chat_template: continue_final_message is set but there is no text to continue", 2) end
  else
    for _, f in ipairs(fields) do copy[f] = tostr(copy[f]) .. TAG end
  end
  local out = template:render(vars)
  local tag = strip_impl(TAG, nil, true, true)
  local fs = strip_impl(tostr(final), nil, true, true)
  if not find(out, fs, 1, true) or not find(out, tag, 1, true) then
    error("apply_chat_template: continue_final_message is set but the final message does not appear in the chat "
      .. "after applying the chat template", 2)
  end
  local loc, p = nil, 0
  while true do
    p = find(out, tag, p + 1, true)
    if not p then break end
    loc = p
  end
  if sub(out, loc, loc + #TAG - 1) == TAG then return sub(out, 1, loc - 1) end
  return strip_impl(sub(out, 1, loc - 1), nil, false, true)
end

return M
