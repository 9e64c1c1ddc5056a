-- LlamaFactory's slot-style chat templates (data/template.py, formatter.py):
-- a template is a set of formatters whose slots are strings with {{content}}
-- (and {{idx}}) placeholders, BOS/EOS markers and literal special tokens.
-- encode_multiturn/encode_oneturn follow Template._encode, Llama2Template
-- (system fused into the first user turn), ReasoningTemplate (<think>
-- handling) and Glm47ReasoningTemplate exactly, at the string level: each
-- message becomes a list of pieces (non-empty strings, T.BOS, T.EOS,
-- T.token(x)); encode_ids turns those into token ids with a tokenizer, piece by
-- piece as LlamaFactory does. A template's multimodal plugin is recorded
-- (mm_plugin); lfl has none, so images, videos and audios are refused.
--
--   local T = require "lfl.text.template"
--   local tpl = T.get("qwen3")                      -- recipes/templates/qwen3.lua
--   local mine = T.new{ format_user = "<u>{{content}}</u>", format_assistant = {"{{content}}", T.EOS} }
--   for _, pair in ipairs(tpl:encode_multiturn(messages, system, tools)) do ... pair[1], pair[2] ... end
local J = require "lfl.text.pyjson"
local tools_mod = require "lfl.text.tools"
local fmt, concat, find, sub = string.format, table.concat, string.find, string.sub

local M = {}

-- ---- slot markers ----

local Marker = {__name = "slot marker"}
Marker.__tostring = function(m)
  if m.token then return "{token:" .. m.token .. "}" end
  return "{" .. (m.name or m.kind) .. "}"
end
M.BOS = setmetatable({kind = "bos_token"}, Marker)
M.EOS = setmetatable({kind = "eos_token"}, Marker)
local token_cache = {}
-- a special token emitted by id (LlamaFactory's {"token": "<x>"} slot)
function M.token(s)
  local m = token_cache[s]
  if not m then m = setmetatable({kind = "token", token = s}, Marker); token_cache[s] = m end
  return m
end
function M.is_marker(x) return getmetatable(x) == Marker end
local set_cache = {}
-- LlamaFactory's set slot {"name"}: {"bos_token"} is T.BOS, {"eos_token"} T.EOS;
-- a set naming anything else emits nothing (ids, Jinja), as in LlamaFactory
function M.special(name)
  if name == "bos_token" then return M.BOS end
  if name == "eos_token" then return M.EOS end
  local m = set_cache[name]
  if not m then m = setmetatable({kind = "set", name = name}, Marker); set_cache[name] = m end
  return m
end
local function is_inert(p) return getmetatable(p) == Marker and p.kind == "set" end

local function check_slot(s, where)
  if type(s) ~= "string" and getmetatable(s) ~= Marker then
    error(fmt("template: %s: a slot must be a string, T.BOS, T.EOS, T.token(...) or T.special(...), got %s", where,
      type(s)), 3)
  end
end

local function has_placeholder(slots)
  for _, s in ipairs(slots) do
    if type(s) == "string" and s:find("{{[%a_][%w_]*}}") then return true end
  end
  return false
end

-- ---- formatters ----

local Formatter = {}
Formatter.__index = Formatter

local function slots_of(spec, where)
  if type(spec) == "string" then return {spec} end
  local slots = {}
  if type(spec.slots) == "table" then spec = spec.slots end
  for i, s in ipairs(spec) do check_slot(s, where); slots[i] = s end
  return slots
end

-- kind: "empty" (prefix), "string", "function", "tools"
local function formatter(kind, spec, where, tool_format)
  local f = setmetatable({kind = kind, slots = {}, tool_format = tool_format}, Formatter)
  if spec ~= nil then
    if kind ~= "tools" then f.slots = slots_of(spec, where) end
    if type(spec) == "table" and spec.tool_format then f.tool_format = spec.tool_format end
  end
  if kind == "empty" and has_placeholder(f.slots) then
    error(fmt("template: %s: Empty formatter should not contain any placeholder.", where), 3)
  end
  if (kind == "string" or kind == "function") and not has_placeholder(f.slots) then
    error(fmt("template: %s: A placeholder is required in the string formatter.", where), 3)
  end
  if kind == "function" or kind == "tools" then
    f.tool_format = f.tool_format or "default"
    f.tools = tools_mod.get(f.tool_format)
  end
  return f
end

-- plain-text replacement of the first occurrence (Python's str.replace(old, new, 1))
local function replace1(s, old, new)
  local a, b = find(s, old, 1, true)
  if not a then return s end
  return sub(s, 1, a - 1) .. new .. sub(s, b + 1)
end

-- StringFormatter.apply: kwargs is a list of {name, value} in call order
local function apply_string(slots, kwargs)
  local out = {}
  for i, s in ipairs(slots) do
    if type(s) == "string" then
      for _, kv in ipairs(kwargs) do
        if type(kv[2]) ~= "string" then error(fmt("Expected a string, got %s", tostring(kv[2])), 0) end
        s = replace1(s, "{{" .. kv[1] .. "}}", kv[2])
      end
    end
    out[i] = s
  end
  return out
end

local function escape_pattern(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

-- first  w0 (.*?) w1  match in s (DOTALL): start, end, inner text
local function find_between(s, w0, w1, init)
  local a, b = find(s, w0, init or 1, true)
  if not a then return nil end
  local c, d = find(s, w1, b + 1, true)
  if not c then return nil end
  return a, d, sub(s, b + 1, c - 1)
end

local function replace_all(s, old, new)
  if old == "" then return s end
  return (s:gsub(escape_pattern(old), (new:gsub("%%", "%%%%"))))
end

-- Formatter:apply(content, opts) -> slots (a new list)
function Formatter:apply(content, opts)
  local kind = self.kind
  if kind == "empty" then
    local out = {}
    for i, s in ipairs(self.slots) do out[i] = s end
    return out
  elseif kind == "string" then
    local kw = {{"content", content}}
    if opts and opts.idx then kw[2] = {"idx", opts.idx} end
    return apply_string(self.slots, kw)
  elseif kind == "tools" then
    local list = tools_mod.parse_tools(content)
    if #list == 0 then return {""} end
    return {self.tools.tool_formatter(list, opts)}
  end
  -- function: tool calls (JSON text) -> the tool format's assistant text
  local thought_words = opts and opts.thought_words
  local tool_call_words = opts and opts.tool_call_words
  local function_str
  local tc_a, tc_b, tc_inner
  if tool_call_words and #tool_call_words == 2 then
    tc_a, tc_b, tc_inner = find_between(content, tool_call_words[1], tool_call_words[2])
  end
  if not tc_a then
    local th_a, th_b
    if thought_words and #thought_words == 2 then th_a, th_b = find_between(content, thought_words[1], thought_words[2]) end
    local json_part = content
    local thought
    if th_a then
      thought = sub(content, th_a, th_b)
      json_part = replace_all(content, thought, "")
    end
    function_str = self.tools.function_formatter(tools_mod.parse_calls(json_part))
    if thought then function_str = thought .. function_str end
  else
    local whole = sub(content, tc_a, tc_b)
    local thought_content = replace_all(content, whole, "")
    function_str = thought_content .. self.tools.function_formatter(tools_mod.parse_calls(tc_inner))
  end
  return apply_string(self.slots, {{"content", function_str}})
end

-- parse tool calls back out of model output (the tool format's extractor)
function Formatter:extract(content)
  if not self.tools then
    error("template: this template's format_tools is a plain string formatter, which cannot extract tool calls "
      .. "(LlamaFactory raises NotImplementedError)", 2)
  end
  return self.tools.tool_extractor(content)
end

-- ---- templates ----

local Template = {}
Template.__index = Template
M.Template = Template

-- LlamaFactory's Template, Llama2Template, ReasoningTemplate and
-- Glm47ReasoningTemplate (a ReasoningTemplate whose empty thought is only the
-- closing tag)
local classes = {default = true, llama2 = true, reasoning = true, glm47_reasoning = true}
local reasoning_classes = {reasoning = true, glm47_reasoning = true}

local function bool_opt(v, default)
  if v == nil then return default end
  return v and true or false
end

-- mm_plugin: "base" (text only) or {name = "qwen2_vl", image_token = ..., video_token = ...,
-- audio_token = ...}: LlamaFactory's multimodal plugin and its placeholder tokens
local function mm_plugin_of(v, name)
  if v == nil or v == "base" then return {name = "base"} end
  if type(v) == "string" then return {name = v} end
  if type(v) ~= "table" or type(v.name) ~= "string" then
    error(fmt("template %s: mm_plugin must be \"base\" or {name = ..., image_token = ...}", name), 3)
  end
  return v
end

-- new{...}: the fields of LlamaFactory's register_template. Formatters are a
-- string (one slot), a list of slots, or {slots..., tool_format = "qwen"}.
function M.new(spec)
  if type(spec) ~= "table" then error("template.new: expected a table", 2) end
  local name = spec.name or "custom"
  local where = function(k) return name .. "." .. k end
  local efficient_eos = bool_opt(spec.efficient_eos, false)
  local default_slots = efficient_eos and {"{{content}}"} or {"{{content}}", M.EOS}
  local t = setmetatable({name = name}, Template)
  t.format_user = formatter("string", spec.format_user or {"{{content}}"}, where("format_user"))
  t.format_assistant = formatter("string", spec.format_assistant or default_slots, where("format_assistant"))
  t.format_system = formatter("string", spec.format_system or {"{{content}}"}, where("format_system"))
  if spec.format_function then
    t.format_function = formatter("function", spec.format_function, where("format_function"))
  else
    t.format_function = formatter("function", t.format_assistant.slots, where("format_function"), "default")
  end
  t.format_observation = formatter("string", spec.format_observation or spec.format_user or {"{{content}}"},
    where("format_observation"))
  local ft = spec.format_tools
  if type(ft) == "table" and getmetatable(ft) == nil and ft[1] ~= nil then
    -- a plain string formatter (phi4_mini): the tools' JSON text goes into its slot as it is
    t.format_tools = formatter("string", ft, where("format_tools"))
  else
    t.format_tools = formatter("tools", ft, where("format_tools"), type(ft) == "string" and ft or nil)
  end
  t.format_prefix = formatter("empty", spec.format_prefix, where("format_prefix"))
  t.default_system = spec.default_system or ""
  t.stop_words = spec.stop_words or {}
  t.thought_words = spec.thought_words or {"<think>\n", "\n</think>\n\n"}
  t.tool_call_words = spec.tool_call_words or {"<tool_call>", "</tool_call>"}
  t.efficient_eos = efficient_eos
  t.replace_eos = bool_opt(spec.replace_eos, false)
  t.replace_jinja_template = bool_opt(spec.replace_jinja_template, false)
  t.enable_thinking = bool_opt(spec.enable_thinking, true)
  t.preserve_thinking = bool_opt(spec.preserve_thinking, false)
  t.mm_plugin = mm_plugin_of(spec.mm_plugin, name)
  t.template_class = spec.template_class or "default"
  if not classes[t.template_class] then
    error(fmt("template %s: template_class must be default, llama2, reasoning or glm47_reasoning, got %s", name,
      tostring(t.template_class)), 2)
  end
  if type(t.default_system) ~= "string" then error(fmt("template %s: default_system must be a string", name), 2) end
  return t
end

-- a copy with some fields changed (e.g. tpl:with{enable_thinking = false})
function Template:with(changes)
  local c = setmetatable({}, Template)
  for k, v in pairs(self) do c[k] = v end
  for k, v in pairs(changes) do
    if k == "tool_format" then
      -- data_args.tool_format: replaces the function and tools formatters
      local slots = c.efficient_eos and {"{{content}}"} or {"{{content}}", M.EOS}
      c.format_function = formatter("function", slots, c.name .. ".format_function", v)
      c.format_tools = formatter("tools", nil, c.name .. ".format_tools", v)
    else
      c[k] = v
    end
  end
  return c
end

local function check_messages(messages)
  if type(messages) ~= "table" then error("template: messages must be a list", 3) end
  for i, m in ipairs(messages) do
    if type(m) ~= "table" or type(m.role) ~= "string" then
      error(fmt("template: message %d needs a string 'role'", i), 3)
    end
    if m.role ~= "function" and type(m.content) ~= "string" then
      error(fmt("template: message %d (%s) needs a string 'content'", i, m.role), 3)
    end
  end
end

local function append(dst, src) for _, x in ipairs(src) do dst[#dst + 1] = x end end

-- LlamaFactory drops empty strings (and sets naming neither BOS nor EOS) when
-- converting slots to ids; so do we
local function clean(pieces)
  local out = {}
  for _, p in ipairs(pieces) do
    if p ~= "" and not is_inert(p) then out[#out + 1] = p end
  end
  return out
end

local function tools_text(self, tools, opts)
  if tools == nil or tools == "" or tools == J.null then return "" end
  if self.format_tools.kind == "string" and type(tools) ~= "string" then tools = J.encode(tools, {ensure_ascii = false}) end
  return self.format_tools:apply(tools, opts)[1]
end

local function truthy_str(s) return s ~= nil and s ~= "" end

-- Template._encode / Llama2Template._encode: one list of pieces per message
function Template:_encode(messages, system, tools, opts)
  check_messages(messages)
  opts = opts or {}
  if not truthy_str(system) then system = self.default_system end
  local has_tools = tools ~= nil and tools ~= "" and tools ~= J.null
  local llama2 = self.template_class == "llama2"
  local encoded = {}
  for i, m in ipairs(messages) do
    local el = {}
    local system_text = ""
    if i == 1 then
      append(el, self.format_prefix:apply())
      if truthy_str(system) or has_tools then
        local text = system .. tools_text(self, tools, opts)
        local sys_slots = self.format_system:apply(text)
        if llama2 then system_text = sys_slots[1] else append(el, sys_slots) end
      end
    end
    local role, content = m.role, m.content
    if role == "user" then
      if llama2 then
        append(el, self.format_user:apply(system_text .. content))
      else
        append(el, self.format_user:apply(content, {idx = tostring(math.floor((i - 1) / 2))}))
      end
    elseif role == "assistant" then
      append(el, self.format_assistant:apply(content))
    elseif role == "observation" then
      append(el, self.format_observation:apply(content))
    elseif role == "function" then
      if type(content) ~= "string" then content = J.encode(content, {ensure_ascii = false}) end
      if llama2 then
        append(el, self.format_function:apply(content))
      else
        append(el, self.format_function:apply(content,
          {thought_words = self.thought_words, tool_call_words = self.tool_call_words}))
      end
    else
      error(fmt("Unexpected role: %s", tostring(role)), 0)
    end
    encoded[i] = clean(el)
  end
  return encoded
end

-- "<think>\n" .. "\n</think>\n\n" .. content; GLM-4.7's empty thought is the
-- closing tag alone, a non-empty one is wrapped in both tags
function Template:add_thought(content)
  if self.template_class == "glm47_reasoning" then
    if content == nil or content == "" then return self.thought_words[2] end
    return self.thought_words[1] .. content .. self.thought_words[2]
  end
  return self.thought_words[1] .. self.thought_words[2] .. (content or "")
end

-- a ReasoningTemplate (or a subclass): <think> handling, enable_thinking
function Template:is_reasoning() return reasoning_classes[self.template_class] == true end

local MEDIA = {{"images", "image"}, {"videos", "video"}, {"audios", "audio"}}

-- Refuses images/videos/audios (opts.images, ... : lists) as LlamaFactory's
-- base plugin does for text templates; a multimodal template's plugin (its
-- image/video/audio placeholders expanded into features) is not implemented,
-- so it refuses them too, naming the plugin. Text-only conversations pass.
function Template:check_media(opts)
  if not opts then return end
  for _, kv in ipairs(MEDIA) do
    local list = opts[kv[1]]
    if type(list) == "table" and #list > 0 then
      local plugin = self.mm_plugin
      if plugin.name == "base" or plugin[kv[2] .. "_token"] == nil then
        error(fmt("template %s: This model does not support %s input. Please check whether the correct `template` "
          .. "is used.", self.name, kv[2]), 0)
      end
      error(fmt("template %s: %d %s input(s) given, but LlamaFactory's %s multimodal plugin is not implemented in lfl: "
        .. "only text-only conversations can be encoded with this template", self.name, #list, kv[2], plugin.name), 0)
    end
  end
end

-- re.sub(w0 (.*?) w1, "", content, DOTALL).lstrip("\n")
function Template:remove_thought(content)
  local out, pos = {}, 1
  while true do
    local a, b = find_between(content, self.thought_words[1], self.thought_words[2], pos)
    if not a then break end
    out[#out + 1] = sub(content, pos, a - 1)
    pos = b + 1
  end
  out[#out + 1] = sub(content, pos)
  return (concat(out):gsub("^\n+", ""))
end

local function copy_messages(messages)
  local out = {}
  for i, m in ipairs(messages) do
    local c = {}
    for k, v in pairs(m) do c[k] = v end
    out[i] = c
  end
  return out
end

local function has_thought(self, content)
  local w0 = self.thought_words[1]:gsub("^%s+", ""):gsub("%s+$", "")
  local w1 = self.thought_words[2]:gsub("^%s+", ""):gsub("%s+$", "")
  return find(content, w0, 1, true) ~= nil or find(content, w1, 1, true) ~= nil
end

-- messages: list of {role = "user"|"assistant"|"observation"|"function", content = string};
-- system: string or nil; tools: JSON text or a Lua list of tool schemas.
-- opts.discarding_history_cot (reasoning templates), opts.date (llama3 tools),
-- opts.images / videos / audios (lists; refused, see check_media).
-- Returns {{prompt_pieces, response_pieces}, ...}.
function Template:encode_multiturn(messages, system, tools, opts)
  opts = opts or {}
  self:check_media(opts)
  if self:is_reasoning() then
    messages = copy_messages(messages)
    if self.enable_thinking == false then
      for i = 2, #messages, 2 do messages[i].content = self:remove_thought(messages[i].content) end
    end
    if opts.discarding_history_cot then
      for i = 2, #messages - 2, 2 do messages[i].content = self:remove_thought(messages[i].content) end
    end
    local enc = self:_encode(messages, system, tools, opts)
    local turns = {}
    if opts.discarding_history_cot then
      turns = {#messages - 1}
    else
      for i = 1, #messages, 2 do turns[#turns + 1] = i end
    end
    for _, i in ipairs(turns) do
      if messages[i + 1] and not has_thought(self, messages[i + 1].content) then
        if not self.enable_thinking then
          enc[i][#enc[i] + 1] = self:add_thought()
        else
          table.insert(enc[i + 1], 1, self:add_thought())
        end
      end
    end
    local pairs_ = {}
    for i = 1, #enc, 2 do pairs_[#pairs_ + 1] = {enc[i], enc[i + 1] or {}} end
    return pairs_
  end
  local enc = self:_encode(messages, system, tools, opts)
  local pairs_ = {}
  for i = 1, #enc, 2 do pairs_[#pairs_ + 1] = {enc[i], enc[i + 1] or {}} end
  return pairs_
end

-- (all messages but the last, the last message) as two piece lists
function Template:encode_oneturn(messages, system, tools, opts)
  self:check_media(opts)
  if self:is_reasoning() then
    messages = copy_messages(messages)
    if not self.preserve_thinking then
      for i = 2, #messages - 2, 2 do messages[i].content = self:remove_thought(messages[i].content) end
    end
    if self.enable_thinking == false then
      messages[#messages].content = self:remove_thought(messages[#messages].content)
    end
  end
  local enc = self:_encode(messages, system, tools, opts)
  local prompt = {}
  for i = 1, #enc - 1 do append(prompt, enc[i]) end
  local response = enc[#enc]
  if self:is_reasoning() and not has_thought(self, messages[#messages].content) then
    if not self.enable_thinking then
      prompt[#prompt + 1] = self:add_thought()
    else
      table.insert(response, 1, self:add_thought())
    end
  end
  return prompt, response
end

-- parse tool calls out of model output with this template's tool format
function Template:extract_tool(content) return self.format_tools:extract(content) end

-- the EOS the tokenizer must use with this template (fix_special_tokens)
function Template:eos_token(tokenizer_eos)
  if self.replace_eos then
    if not self.stop_words[1] then error("Stop words are required to replace the EOS token.", 2) end
    return self.stop_words[1]
  end
  return tokenizer_eos or "<|endoftext|>"
end

-- stop words that must become additional special tokens (fix_special_tokens)
function Template:extra_stop_words()
  local out = {}
  for i = self.replace_eos and 2 or 1, #self.stop_words do out[#out + 1] = self.stop_words[i] end
  return out
end

-- ids generation stops on: EOS (after fix_special_tokens) and every stop word
function Template:stop_token_ids(tok)
  local ids, seen = {}, {}
  local function add(id) if id ~= nil and not seen[id] then seen[id] = true; ids[#ids + 1] = id end end
  if self.replace_eos and self.stop_words[1] then add(tok:token_to_id(self.stop_words[1])) else add(tok.eos_id) end
  for _, w in ipairs(self.stop_words) do add(tok:token_to_id(w)) end
  return ids
end

-- pieces -> one string, markers rendered with the given token strings
-- (a marker whose token is nil is dropped, as LlamaFactory drops BOS for
-- tokenizers without one)
function M.join(pieces, specials)
  specials = specials or {}
  local out = {}
  for _, p in ipairs(pieces) do
    if type(p) == "string" then out[#out + 1] = p
    elseif p == M.BOS then out[#out + 1] = specials.bos_token
    elseif p == M.EOS then out[#out + 1] = specials.eos_token
    elseif p.token then out[#out + 1] = p.token end
  end
  return concat(out)
end

-- pieces -> token ids with tok:encode(text, {add_special_tokens = false}),
-- tok.bos_id / tok.eos_id (BOS dropped when nil) and tok:token_to_id(s);
-- opts.eos_id overrides the EOS id (templates with replace_eos).
function M.pieces_to_ids(tok, pieces, opts)
  local ids = {}
  local eos_id = opts and opts.eos_id or tok.eos_id
  for _, p in ipairs(pieces) do
    if type(p) == "string" then
      if p ~= "" then
        for _, id in ipairs(tok:encode(p, {add_special_tokens = false})) do ids[#ids + 1] = id end
      end
    elseif p == M.BOS then
      if tok.bos_id ~= nil then ids[#ids + 1] = tok.bos_id end
    elseif p == M.EOS then
      if eos_id ~= nil then ids[#ids + 1] = eos_id end
    elseif not is_inert(p) then
      local id = tok:token_to_id(p.token)
      if id == nil then error("template: tokenizer has no token " .. p.token, 2) end
      ids[#ids + 1] = id
    end
  end
  return ids
end

-- encode_multiturn at the token level: {{prompt_ids, response_ids}, ...}
function Template:encode_ids(tok, messages, system, tools, opts)
  local eos_id = opts and opts.eos_id
  if eos_id == nil and self.replace_eos then
    local eos = self:eos_token()
    eos_id = tok:token_to_id(eos)
    if eos_id == nil then
      error(fmt("template %s: EOS must become %s, which the tokenizer does not have (LlamaFactory adds it as a new "
        .. "token: resize the vocabulary), or pass opts.eos_id", self.name, eos), 2)
    end
  end
  local out = {}
  for i, pair in ipairs(self:encode_multiturn(messages, system, tools, opts)) do
    out[i] = {M.pieces_to_ids(tok, pair[1], {eos_id = eos_id}), M.pieces_to_ids(tok, pair[2], {eos_id = eos_id})}
  end
  return out
end

-- ---- Jinja chat_template derived from the slots (fix_jinja_template) ----

local function jinja_escape(s) return (s:gsub("'", "\\'")) end

local function slots_to_jinja(slots, specials, placeholder)
  local items = {}
  for _, s in ipairs(slots) do
    if type(s) == "string" then
      local a, b = find(s, "{{content}}", 1, true)
      local first = a and sub(s, 1, a - 1) or s
      if first ~= "" then items[#items + 1] = "'" .. jinja_escape(first) .. "'" end
      if a then
        items[#items + 1] = placeholder or "content"
        -- Python's split keeps everything after the first placeholder up to the next one
        local rest = sub(s, b + 1)
        local c = find(rest, "{{content}}", 1, true)
        if c then rest = sub(rest, 1, c - 1) end
        if rest ~= "" then items[#items + 1] = "'" .. jinja_escape(rest) .. "'" end
      end
    elseif s == M.BOS then
      if specials.bos_token then items[#items + 1] = "'" .. specials.bos_token .. "'" end
    elseif s == M.EOS then
      if specials.eos_token then items[#items + 1] = "'" .. specials.eos_token .. "'" end
    elseif not is_inert(s) then
      error("Dict is not supported.", 0)
    end
  end
  return concat(items, " + ")
end

-- specials: {bos_token = "<s>", eos_token = "</s>"} (nil when the tokenizer has none)
function Template:jinja_template(specials)
  specials = specials or {}
  local prefix = slots_to_jinja(self.format_prefix:apply(), specials)
  local system = slots_to_jinja(self.format_system.slots, specials, "system_message")
  local user = slots_to_jinja(self.format_user.slots, specials)
  local assistant = slots_to_jinja(self.format_assistant.slots, specials)
  local out = {}
  if prefix ~= "" then out[#out + 1] = "{{ " .. prefix .. " }}" end
  if self.default_system ~= "" then
    out[#out + 1] = "{% set system_message = '" .. jinja_escape(self.default_system) .. "' %}"
  end
  out[#out + 1] = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    .. "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% endif %}"
  if self.template_class == "llama2" then
    out[#out + 1] = "{% for message in loop_messages %}"
      .. "{% if loop.index0 == 0 and system_message is defined %}"
      .. "{% set content = " .. system .. " + message['content'] %}"
      .. "{% else %}{% set content = message['content'] %}{% endif %}"
  else
    out[#out + 1] = "{% if system_message is defined %}{{ " .. system .. " }}{% endif %}"
      .. "{% for message in loop_messages %}{% set content = message['content'] %}"
  end
  out[#out + 1] = "{% if message['role'] == 'user' %}{{ " .. user .. " }}"
    .. "{% elif message['role'] == 'assistant' %}{{ " .. assistant .. " }}{% endif %}{% endfor %}"
  return concat(out)
end

-- ---- the Ollama Modelfile LlamaFactory's export writes (get_ollama_modelfile) ----

-- slots -> Ollama template text: {{content}} becomes {{ <placeholder> }}, BOS /
-- EOS the tokenizer's strings (the EOS after replace_eos), a {token} slot is
-- refused as LlamaFactory refuses dict slots
local function slots_to_ollama(self, slots, sp, placeholder)
  local out = {}
  for _, slot in ipairs(slots) do
    if type(slot) == "string" then
      local a, b = slot:find("{{content}}", 1, true)
      if a then
        if a > 1 then out[#out + 1] = slot:sub(1, a - 1) end
        out[#out + 1] = "{{ " .. placeholder .. " }}"
        -- Python's split: the text up to a second {{content}}, if any
        local rest = slot:sub(b + 1)
        local c = rest:find("{{content}}", 1, true)
        if c then rest = rest:sub(1, c - 1) end
        if rest ~= "" then out[#out + 1] = rest end
      elseif slot ~= "" then
        out[#out + 1] = slot
      end
    elseif slot == M.BOS then
      if sp.bos_token then out[#out + 1] = sp.bos_token end
    elseif slot == M.EOS then
      if sp.eos_token then out[#out + 1] = sp.eos_token end
    elseif is_inert(slot) then -- a set slot naming neither BOS nor EOS: nothing
    else
      error(fmt("template %s: an Ollama template cannot hold a {token} slot (LlamaFactory: Dict is not supported)",
        self.name), 0)
    end
  end
  return concat(out)
end

-- The Modelfile of an exported model (FROM ., TEMPLATE, SYSTEM, a stop
-- parameter per stop token, num_ctx 4096) for tokenizer tok (its BOS / EOS ids
-- and strings; replace_eos makes the first stop word EOS, as LlamaFactory's
-- fix_special_tokens does). LlamaFactory lists the stop ids from a Python set;
-- here EOS comes first, then the stop words in order.
function Template:ollama_modelfile(tok)
  local sp = {bos_token = tok.bos_id and tok:id_to_token(tok.bos_id) or nil,
              eos_token = self.replace_eos and self:eos_token() or (tok.eos_id and tok:id_to_token(tok.eos_id)) or nil}
  local prefix = slots_to_ollama(self, self.format_prefix:apply(), sp, "content")
  local system = slots_to_ollama(self, self.format_system.slots, sp, ".System")
  local user = slots_to_ollama(self, self.format_user.slots, sp, ".Content")
  local assistant = slots_to_ollama(self, self.format_assistant.slots, sp, ".Content")
  local out = {"# ollama modelfile auto-generated by llamafactory\n\n",
    'FROM .\n\nTEMPLATE """', prefix, "{{ if .System }}", system, "{{ end }}",
    '{{ range .Messages }}{{ if eq .Role "user" }}', user,
    '{{ else if eq .Role "assistant" }}', assistant, '{{ end }}{{ end }}"""\n\n'}
  if self.default_system ~= "" then out[#out + 1] = 'SYSTEM """' .. self.default_system .. '"""\n\n' end
  local seen = {}
  local function stop(s) if s and not seen[s] then seen[s] = true; out[#out + 1] = 'PARAMETER stop "' .. s .. '"\n' end end
  stop(sp.eos_token)
  for _, w in ipairs(self.stop_words) do stop(w) end
  out[#out + 1] = "PARAMETER num_ctx 4096\n"
  return concat(out)
end

-- ---- slots reverse-engineered from a Jinja chat_template (parse_template) ----

local function ucodes(s)
  local out = {}
  for c in s:gmatch("[%z\1-\127\192-\255][\128-\191]*") do out[#out + 1] = c end
  return out
end

-- s[n:] in code points
local function usub_from(s, n)
  if n <= 0 then return s end
  local cs = ucodes(s)
  return concat(cs, "", n + 1)
end

local function ulen(s) return #ucodes(s) end

-- LlamaFactory's find_diff: the characters of long_str skipped while matching short_str
local function find_diff(short_str, long_str)
  local a, b = ucodes(short_str), ucodes(long_str)
  local i, j, diff = 1, 1, {}
  while i <= #a and j <= #b do
    if a[i] == b[j] then i = i + 1; j = j + 1
    else diff[#diff + 1] = b[j]; j = j + 1 end
  end
  return concat(diff)
end

-- from_chat_template(src, {prefix = decode(encode("")), special_tokens = {bos_token = ...}}):
-- what LlamaFactory does when no template is named but the tokenizer has a
-- chat_template: render probe conversations with a literal "{{content}}" and
-- cut the slots out of the results.
function M.from_chat_template(src, opts)
  opts = opts or {}
  local jinja = require "lfl.text.jinja"
  local prefix = opts.prefix or ""
  local tpl = jinja.compile(src, {name = "chat_template"})
  local function render(msgs, agp)
    local o = {add_generation_prompt = agp}
    for k, v in pairs(opts.special_tokens or {}) do o[k] = v end
    local list = {}
    for i, m in ipairs(msgs) do list[i] = J.odict("role", m[1], "content", m[2]) end
    return jinja.apply_chat_template(tpl, list, o)
  end
  local plen = ulen(prefix)
  local system_slot = usub_from(render({{"system", "{{content}}"}}, false), plen)
  local user_slot_empty_system = usub_from(render({{"system", ""}, {"user", "{{content}}"}}, true), plen)
  local user_slot = usub_from(render({{"user", "{{content}}"}}, true), plen)
  local assistant_slot = usub_from(render({{"user", "{{content}}"}, {"assistant", "{{content}}"}}, false),
    plen + ulen(user_slot))
  local class = find(assistant_slot, "<think>", 1, true) and "reasoning" or "default"
  assistant_slot = replace_all(replace_all(assistant_slot, "<think>", ""), "</think>", ""):gsub("^\n+", "")
  local default_system = ""
  if ulen(user_slot) > ulen(user_slot_empty_system) then
    default_system = find_diff(user_slot_empty_system, user_slot)
    local sole_system = replace1(system_slot, "{{content}}", default_system)
    user_slot = usub_from(user_slot, ulen(sole_system))
  end
  return M.new{
    name = opts.name or "parsed",
    format_user = {user_slot},
    format_assistant = {assistant_slot},
    format_system = {system_slot},
    format_function = {assistant_slot, tool_format = "default"},
    format_observation = {user_slot},
    format_tools = {tool_format = "default"},
    format_prefix = prefix ~= "" and {prefix} or nil,
    default_system = default_system,
    stop_words = {},
    template_class = class,
  }
end

-- ---- loading by name ----

local loaded = {}      -- name -> template
local loaded_from = {} -- name -> the recipe file it came from (a user file dropped later wins)
local registered = {}  -- name -> template given by register()

local function valid_name(name)
  return type(name) == "string" and name:match("^[%w_%.%-]+$") ~= nil
end

-- get(name): the template recipe recipes/templates/<name>.lua that lfl.recipes
-- finds (LFL_PATH entries, then ~/.lfl/recipes, then the bundled ones). A
-- recipe returns a template spec (or a template).
function M.get(name)
  if type(name) == "table" and getmetatable(name) == Template then return name end
  if not valid_name(name) then error(fmt("template: bad template name %s", tostring(name)), 2) end
  local R = require("lfl.recipes")
  local path = R.find("templates", name)
  if loaded[name] and (loaded[name] == registered[name] or loaded_from[name] == path) then return loaded[name] end
  if not path then
    error(fmt("template: unknown template '%s' (add %s.lua to ~/.lfl/recipes/templates/ or an LFL_PATH " ..
      "entry's recipes/templates/)", name, name), 0) -- a user's setting: no Lua position
  end
  local ok, spec = pcall(R.run, path)
  if not ok then error("template " .. name .. ": " .. tostring(spec), 2) end
  local t = spec
  if getmetatable(spec) ~= Template then
    if type(spec) ~= "table" then error(fmt("template %s: the recipe must return a table", name), 2) end
    local s = {}
    for k, v in pairs(spec) do s[k] = v end
    s.name = s.name or name
    t = M.new(s)
  end
  loaded[name], loaded_from[name] = t, path
  return t
end

-- register(name, spec_or_template): make a template defined in a recipe
-- reachable by name (T.get(name), `template = "name"` in a recipe)
function M.register(name, spec)
  if not valid_name(name) then error(fmt("template: bad template name %s", tostring(name)), 2) end
  local t = spec
  if getmetatable(spec) ~= Template then
    local s = {}
    for k, v in pairs(spec) do s[k] = v end
    s.name = s.name or name
    t = M.new(s)
  end
  loaded[name], registered[name] = t, t
  return t
end

-- forget loaded templates (after editing a recipe)
function M.reload() loaded, loaded_from, registered = {}, {}, {}; require("lfl.recipes").reload() end

-- names of the bundled and user templates
function M.list() return require("lfl.recipes").names("templates") end

return M
