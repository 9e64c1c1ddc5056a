-- Tool-calling formats of LlamaFactory's tool_utils.py: for each format, the
-- tool formatter (tool list -> text placed in the system prompt), the function
-- formatter (tool calls -> assistant text) and the extractor (assistant text ->
-- tool calls, its inverse). Output strings match LlamaFactory byte for byte
-- (json.dumps with ensure_ascii=False, key order kept). A call is
-- {name = "fn", arguments = '<json text>'} as LlamaFactory's FunctionCall.
local J = require "lfl.text.pyjson"
local jinja = require "lfl.text.jinja"
local fmt, concat, find, sub = string.format, table.concat, string.find, string.sub
local pystr = jinja.str

local M = {}

local function strip(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function dumps(v, indent) return J.encode(v, {ensure_ascii = false, indent = indent}) end

local function get(t, k, default)
  if type(t) ~= "table" then error(fmt("tools: expected an object, got %s", jinja.pytype(t)), 0) end
  local v = t[k]
  if v == nil then
    if default ~= nil then return default end
    error(fmt("tools: missing key '%s'", tostring(k)), 0)
  end
  return v
end

local function unwrap(tool) -- {"type": "function", "function": {...}} -> {...}
  if get(tool, "type", false) == "function" then return get(tool, "function", "") end
  return tool
end

local function wrap(tool)
  if get(tool, "type", false) == "function" then return tool end
  return J.odict("type", "function", "function", tool)
end

-- Python's "..." .format for the prompts below ({x} fields, {{ }} escapes)
local function pyformat(s, vals)
  return (s:gsub("{{", "\1"):gsub("}}", "\2"):gsub("{([%w_]+)}", function(k) return vals[k] end)
    :gsub("\1", "{"):gsub("\2", "}"))
end

local DEFAULT_TOOL_PROMPT = "You have access to the following tools:\n{tool_text}"
  .. "Use the following format if using a tool:\n"
  .. "```\n"
  .. "Action: tool name (one of [{tool_names}])\n"
  .. "Action Input: the input to the tool, in a JSON format representing the kwargs "
  .. '(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n'
  .. "```\n"

local GLM4_TOOL_PROMPT = "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
  .. "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tool_text}"

local LLAMA3_TOOL_PROMPT = "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
  .. "You have access to the following functions. To call a function, please respond with JSON for a function call. "
  .. 'Respond in the format {{"name": function name, "parameters": dictionary of argument name and its value}}. '
  .. "Do not use variables.\n\n{tool_text}"

local QWEN_TOOL_PROMPT = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
  .. "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
  .. "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
  .. '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
  .. '"arguments": <args-json-object>}}\n</tool_call>'

M.prompts = {default = DEFAULT_TOOL_PROMPT, glm4 = GLM4_TOOL_PROMPT, llama3 = LLAMA3_TOOL_PROMPT, qwen = QWEN_TOOL_PROMPT}

-- json.loads that returns nil instead of raising
local function try_decode(s)
  local ok, v = pcall(J.decode, s)
  if ok then return v end
  return nil
end

local function call_args_json(v) return dumps(v) end

-- ---- default (ReAct style) ----

local default = {}

function default.tool_formatter(tools)
  local tool_text, names = {}, {}
  for _, tool in ipairs(tools) do
    tool = unwrap(tool)
    local params = get(tool, "parameters")
    local required = get(params, "required", J.list({}))
    local param_text = {}
    local props = get(params, "properties")
    for _, name in ipairs(J.keys(props)) do
      local param = props[name]
      local req, enum, items = "", "", ""
      for _, r in ipairs(jinja.iter_list(required)) do if r == name then req = ", required" end end
      local e = get(param, "enum", J.null)
      if jinja.truthy(e) then
        local parts = {}
        for i, x in ipairs(e) do
          if type(x) ~= "string" then error(fmt("tools: sequence item %d: expected str instance, %s found", i - 1, jinja.pytype(x)), 0) end
          parts[i] = x
        end
        enum = fmt(", should be one of [%s]", concat(parts, ", "))
      end
      local it = get(param, "items", J.null)
      if jinja.truthy(it) then items = ", where each item should be " .. pystr(get(it, "type", "")) end
      param_text[#param_text + 1] = fmt("  - %s (%s%s): %s%s%s\n", pystr(name), pystr(get(param, "type", "")), req,
        pystr(get(param, "description", "")), enum, items)
    end
    tool_text[#tool_text + 1] = fmt("> Tool Name: %s\nTool Description: %s\nTool Args:\n%s\n", pystr(get(tool, "name")),
      pystr(get(tool, "description", "")), concat(param_text))
    names[#names + 1] = pystr(get(tool, "name"))
  end
  return pyformat(DEFAULT_TOOL_PROMPT, {tool_text = concat(tool_text), tool_names = concat(names, ", ")})
end

function default.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do out[i] = fmt("Action: %s\nAction Input: %s", c.name, c.arguments) end
  return concat(out, "\n")
end

-- Action:\s*([a-zA-Z0-9_]+)\s*Action Input:\s*(.+?)(?=\s*Action:|\s*$)  (DOTALL, findall)
function default.tool_extractor(content)
  local results = {}
  local pos = 1
  local n = #content
  while pos <= n do
    local a, b = find(content, "Action:", pos, true)
    if not a then break end
    local matched = false
    local _, ws = find(content, "^%s*", b + 1)
    local name_s = ws + 1
    local name = content:match("^[%w_]+", name_s)
    if name then
      -- the name may give back characters so that "Action Input:" can follow
      for len = #name, 1, -1 do
        local _, e2 = find(content, "^%s*Action Input:", name_s + len)
        if e2 then
          local _, e3 = find(content, "^%s*", e2 + 1)
          local arg_s = e3 + 1
          -- lazy (.+?): the shortest non-empty run followed by \s*Action: or \s*$
          local arg_e
          for p = arg_s + 1, n + 1 do
            local rest_s = p
            local _, e4 = find(content, "^%s*", rest_s)
            if e4 == n or sub(content, e4 + 1, e4 + 7) == "Action:" then arg_e = p - 1; break end
          end
          if arg_e and arg_e >= arg_s then
            local tool_name = strip(sub(content, name_s, name_s + len - 1))
            local input = strip(sub(content, arg_s, arg_e))
            input = input:gsub('^"+', ""):gsub('"+$', ""):gsub("^`+", ""):gsub("`+$", "")
            local args = try_decode(input)
            if args == nil then return content end
            results[#results + 1] = {name = tool_name, arguments = call_args_json(args)}
            pos = arg_e + 1
            matched = true
          end
          break
        end
      end
    end
    if not matched then pos = a + 1 end
  end
  if #results == 0 then return content end
  return results
end

-- ---- glm4 ----

local glm4 = {}

function glm4.tool_formatter(tools)
  local parts = {}
  for _, tool in ipairs(tools) do
    tool = unwrap(tool)
    parts[#parts + 1] = fmt("\n\n## %s\n\n%s\n在调用上述函数时，请使用 Json 格式表示调用的参数。", pystr(get(tool, "name")),
      dumps(tool, 4))
  end
  return pyformat(GLM4_TOOL_PROMPT, {tool_text = concat(parts)})
end

function glm4.function_formatter(calls)
  if #calls > 1 then error("GLM-4 does not support parallel functions.", 0) end
  return calls[1].name .. "\n" .. calls[1].arguments
end

function glm4.tool_extractor(content)
  local nl = find(content, "\n", 1, true)
  if not nl then return content end
  local name, input = sub(content, 1, nl - 1), sub(content, nl + 1)
  local args = try_decode(strip(input))
  if args == nil then return content end
  return {{name = name, arguments = call_args_json(args)}}
end

-- ---- llama3 ----

local llama3 = {}

-- opts.date: the "Today Date" (LlamaFactory uses datetime.now(), format "%d %b %Y")
function llama3.tool_formatter(tools, opts)
  local date = opts and opts.date or os.date("%d %b %Y")
  local parts = {}
  for _, tool in ipairs(tools) do parts[#parts + 1] = dumps(wrap(tool), 4) .. "\n\n" end
  return pyformat(LLAMA3_TOOL_PROMPT, {date = date, tool_text = concat(parts)})
end

function llama3.function_formatter(calls)
  local objs = {}
  for i, c in ipairs(calls) do objs[i] = J.odict("name", c.name, "parameters", J.decode(c.arguments)) end
  if #objs == 1 then return dumps(objs[1]) end
  return dumps(J.list(objs))
end

local function extract_json_calls(content, args_key)
  local v = try_decode(strip(content))
  if v == nil then return content end
  if not J.is_list(v) or getmetatable(v) ~= nil then v = {v} end
  local out = {}
  for i, tool in ipairs(v) do
    if type(tool) ~= "table" or not J.is_dict(tool) or tool.name == nil or tool[args_key] == nil then return content end
    out[i] = {name = tool.name, arguments = call_args_json(tool[args_key])}
  end
  return out
end

function llama3.tool_extractor(content) return extract_json_calls(content, "parameters") end

-- ---- mistral ----

local mistral = {}

function mistral.tool_formatter(tools)
  local wrapped = {}
  for i, tool in ipairs(tools) do wrapped[i] = wrap(tool) end
  return "[AVAILABLE_TOOLS] " .. dumps(J.list(wrapped)) .. "[/AVAILABLE_TOOLS]"
end

function mistral.function_formatter(calls)
  local objs = {}
  for i, c in ipairs(calls) do objs[i] = J.odict("name", c.name, "arguments", J.decode(c.arguments)) end
  return dumps(J.list(objs))
end

function mistral.tool_extractor(content) return extract_json_calls(content, "arguments") end

-- ---- qwen ----

local qwen = {}

function qwen.tool_formatter(tools)
  local parts = {}
  for _, tool in ipairs(tools) do parts[#parts + 1] = "\n" .. dumps(wrap(tool)) end
  return pyformat(QWEN_TOOL_PROMPT, {tool_text = concat(parts)})
end

function qwen.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    out[i] = "<tool_call>\n" .. dumps(J.odict("name", c.name, "arguments", J.decode(c.arguments))) .. "\n</tool_call>"
  end
  return concat(out, "\n")
end

-- <tool_call>(.+?)</tool_call>(?=\s*<tool_call>|\s*$)  (DOTALL, findall)
function qwen.tool_extractor(content)
  local bodies = {}
  local pos = 1
  while true do
    local a, b = find(content, "<tool_call>", pos, true)
    if not a then break end
    local q = b + 2 -- (.+?) needs at least one character
    local found
    while true do
      local c, d = find(content, "</tool_call>", q, true)
      if not c then break end
      local _, e = find(content, "^%s*", d + 1)
      if e == #content or sub(content, e + 1, e + 11) == "<tool_call>" then found = {b + 1, c - 1, d}; break end
      q = c + 1
    end
    if found then
      bodies[#bodies + 1] = sub(content, found[1], found[2])
      pos = found[3] + 1
    else
      pos = a + 1
    end
  end
  if #bodies == 0 then return content end
  local out = {}
  for i, body in ipairs(bodies) do
    local tool = try_decode(strip(body))
    if tool == nil then return content end
    if type(tool) ~= "table" or tool.name == nil or tool.arguments == nil then return content end
    out[i] = {name = tool.name, arguments = call_args_json(tool.arguments)}
  end
  return out
end

M.formats = {default = default, glm4 = glm4, llama3 = llama3, mistral = mistral, qwen = qwen}

-- the later formats live one per file in lfl/text/tools/ and load on first use
local LAZY = {gemma4 = true, glm4_moe = true, lfm2 = true, ling = true, minimax1 = true, minimax2 = true,
  qwen3_5 = true, seed_oss = true}

-- tool.get("function", tool) if tool.get("type") == "function" else tool
local function unwrap_or_self(tool)
  if get(tool, "type", false) == "function" then return get(tool, "function", tool) end
  return tool
end

-- a call's arguments as a dict (the XML formats iterate arguments.items())
local function args_dict(call)
  local args = J.decode(call.arguments)
  if not J.is_dict(args) then
    error(fmt("tool call %s: its arguments must be a JSON object, got %s", tostring(call.name), call.arguments), 0)
  end
  return args
end

-- helpers shared with those files
M.util = {strip = strip, dumps = dumps, get = get, unwrap = unwrap, wrap = wrap, unwrap_or_self = unwrap_or_self,
  args_dict = args_dict, pyformat = pyformat, try_decode = try_decode, pystr = pystr}

-- get("qwen") -> {tool_formatter, function_formatter, tool_extractor}
function M.get(name)
  name = name or "default"
  local f = M.formats[name]
  if not f and LAZY[name] then
    f = require("lfl.text.tools." .. name)
    M.formats[name] = f
  end
  if not f then
    local known = {}
    for k in pairs(M.formats) do known[#known + 1] = k end
    for k in pairs(LAZY) do if not M.formats[k] then known[#known + 1] = k end end
    table.sort(known)
    error(fmt("tools: unknown tool format '%s' (known: %s)", tostring(name), concat(known, ", ")), 2)
  end
  return f
end

-- names of every tool format
function M.names()
  local out = {}
  for k in pairs(M.formats) do out[#out + 1] = k end
  for k in pairs(LAZY) do if not M.formats[k] then out[#out + 1] = k end end
  table.sort(out)
  return out
end

-- Tool list from a JSON string or a Lua list (LlamaFactory passes JSON text)
function M.parse_tools(tools)
  if type(tools) == "string" then
    local ok, v = pcall(J.decode, tools)
    if not ok then error("Invalid JSON format in tool description: " .. tools, 0) end
    return v
  end
  return tools
end

-- Tool calls of a function message: JSON text of {"name", "arguments"} or a list of them
function M.parse_calls(content)
  local v = content
  if type(content) == "string" then
    local ok, d = pcall(J.decode, content)
    if not ok then error(fmt("Invalid JSON format in function message: %s.", content), 0) end
    v = d
  end
  if not J.is_list(v) then v = {v} end
  local calls = {}
  for i, tc in ipairs(v) do
    if type(tc) ~= "table" or tc.name == nil or tc.arguments == nil then
      error("function message: each call needs 'name' and 'arguments'", 0)
    end
    calls[i] = {name = tc.name, arguments = call_args_json(tc.arguments)}
  end
  return calls
end

return M
