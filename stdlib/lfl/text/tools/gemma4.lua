-- The "gemma4" tool format of LlamaFactory's tool_utils.py (Gemma 4): tool
-- declarations and calls in Gemma's own notation, strings between <|"|> marks:
--   declaration:f{description:<|"|>...<|"|>,parameters:{properties:{...},required:[...],type:<|"|>OBJECT<|"|>}}
--   <|tool_call>call:f{city:<|"|>Paris<|"|>,n:2}<tool_call|>
local J = require "lfl.text.pyjson"
local jinja = require "lfl.text.jinja"
local tools = require "lfl.text.tools"
local U = tools.util
local concat, find, sub, upper = table.concat, string.find, string.sub, string.upper
local truthy, pystr = jinja.truthy, U.pystr

local M = {}

local Q = '<|"|>'

local function format_parameters(properties)
  local parts = {}
  for _, name in ipairs(J.keys(properties)) do
    local schema = properties[name]
    local item = {}
    if truthy(U.get(schema, "description", J.null)) then item[#item + 1] = "description:" .. Q .. pystr(schema.description) .. Q end
    if truthy(U.get(schema, "type", J.null)) then item[#item + 1] = "type:" .. Q .. upper(pystr(schema.type)) .. Q end
    parts[#parts + 1] = pystr(name) .. ":{" .. concat(item, ",") .. "}"
  end
  return concat(parts, ",")
end

function M.tool_formatter(list)
  local decls = {}
  for _, tool in ipairs(list) do
    local fd = U.unwrap_or_self(tool)
    local d = "declaration:" .. pystr(U.get(fd, "name")) .. "{description:" .. Q .. pystr(U.get(fd, "description", "")) .. Q
    local params = U.get(fd, "parameters", J.null)
    if truthy(params) then
      local pp = {}
      local props = U.get(params, "properties", J.null)
      if truthy(props) then pp[#pp + 1] = "properties:{" .. format_parameters(props) .. "}" end
      local req = U.get(params, "required", J.null)
      if truthy(req) then
        local r = {}
        for i, item in ipairs(jinja.iter_list(req)) do r[i] = Q .. pystr(item) .. Q end
        pp[#pp + 1] = "required:[" .. concat(r, ",") .. "]"
      end
      local ty = U.get(params, "type", J.null)
      if truthy(ty) then pp[#pp + 1] = "type:" .. Q .. upper(pystr(ty)) .. Q end
      d = d .. ",parameters:{" .. concat(pp, ",") .. "}"
    end
    local resp = U.get(fd, "response", J.null)
    if truthy(resp) then
      local rp = {}
      local desc = U.get(resp, "description", J.null)
      if truthy(desc) then rp[#rp + 1] = "description:" .. Q .. pystr(desc) .. Q end
      local rtype = upper(pystr(U.get(resp, "type", "")))
      if rtype == "OBJECT" then rp[#rp + 1] = "type:" .. Q .. rtype .. Q end
      d = d .. ",response:{" .. concat(rp, ",") .. "}"
    end
    decls[#decls + 1] = d .. "}"
  end
  return concat(decls, "\n")
end

local function sorted_keys(t)
  local ks = J.keys(t)
  table.sort(ks)
  return ks
end

local function format_argument(v, escape_keys)
  if type(v) == "string" then return Q .. v .. Q end
  if type(v) == "boolean" then return v and "true" or "false" end
  if v == J.null then return "null" end
  if J.is_dict(v) then
    local items = {}
    for _, k in ipairs(sorted_keys(v)) do
      items[#items + 1] = (escape_keys and (Q .. k .. Q) or k) .. ":" .. format_argument(v[k], escape_keys)
    end
    return "{" .. concat(items, ",") .. "}"
  end
  if J.is_list(v) then
    local items = {}
    for i, x in ipairs(v) do items[i] = format_argument(x, escape_keys) end
    return "[" .. concat(items, ",") .. "]"
  end
  return pystr(v)
end

function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.try_decode(c.arguments)
    if args == nil then args = c.arguments end
    local text = "<|tool_call>call:" .. pystr(c.name) .. "{"
    if J.is_dict(args) then
      local parts = {}
      for _, k in ipairs(sorted_keys(args)) do parts[#parts + 1] = k .. ":" .. format_argument(args[k], false) end
      text = text .. concat(parts, ",")
    elseif type(args) == "string" then
      text = text .. args
    else
      text = text .. format_argument(args, false)
    end
    out[i] = text .. "}<tool_call|>"
  end
  return concat(out)
end

-- re.sub(r'(^|[{\s,])([A-Za-z_][A-Za-z0-9_]*)(\s*:)', r'\1"\2"\3', s): bare keys quoted
local function quote_keys(s)
  local out, last, i, n = {}, 1, 1, #s
  while i <= n do
    local starts = {}
    if i == 1 then starts[1] = 1 end
    if find(sub(s, i, i), "^[{%s,]") then starts[#starts + 1] = i + 1 end
    local matched
    for _, j in ipairs(starts) do
      local _, id_e = find(s, "^[A-Za-z_][A-Za-z0-9_]*", j)
      if id_e then
        local _, c_e = find(s, "^%s*:", id_e + 1)
        if c_e then matched = {j, id_e, c_e}; break end
      end
    end
    if matched then
      local j, id_e, c_e = matched[1], matched[2], matched[3]
      out[#out + 1] = sub(s, last, j - 1) .. '"' .. sub(s, j, id_e) .. '"' .. sub(s, id_e + 1, c_e)
      last, i = c_e + 1, c_e + 1
    else
      i = i + 1
    end
  end
  out[#out + 1] = sub(s, last)
  return concat(out)
end

-- <|"|>text<|"|> -> a JSON string (non-overlapping, shortest first)
local function quote_strings(s)
  local out, pos = {}, 1
  while true do
    local a, b = find(s, Q, pos, true)
    if not a then break end
    local c, d = find(s, Q, b + 1, true)
    if not c then break end
    out[#out + 1] = sub(s, pos, a - 1) .. U.dumps(sub(s, b + 1, c - 1))
    pos = d + 1
  end
  out[#out + 1] = sub(s, pos)
  return concat(out)
end

local function parse_arguments(arg_text)
  local text = U.strip(arg_text)
  if text == "" then return J.odict() end
  local v = U.try_decode(quote_keys(quote_strings("{" .. text .. "}")))
  if v ~= nil then return v end
  v = U.try_decode(text)
  if v ~= nil then return v end
  return text
end

-- findall(<\|tool_call\>call:([^{\s]+)\{(.*?)\}<tool_call\|>)
function M.tool_extractor(content)
  local results, pos = {}, 1
  while true do
    local a, b = find(content, "<|tool_call>call:", pos, true)
    if not a then break end
    local j = b + 1
    while j <= #content and not find(sub(content, j, j), "^[{%s]") do j = j + 1 end
    if j > b + 1 and sub(content, j, j) == "{" then
      local c, d = find(content, "}<tool_call|>", j + 1, true)
      if not c then break end
      local args = parse_arguments(sub(content, j + 1, c - 1))
      if type(args) ~= "string" then args = U.dumps(args) end
      results[#results + 1] = {name = U.strip(sub(content, b + 1, j - 1)), arguments = args}
      pos = d + 1
    else
      pos = a + 1
    end
  end
  if #results == 0 then return content end
  return results
end

return M
