-- The "lfm2" tool format of LlamaFactory's tool_utils.py (LFM2 / LFM2.5):
-- the tool list as one JSON array between <|tool_list_start|> and
-- <|tool_list_end|>, calls in Python syntax:
-- <|tool_call_start|>[f(city="Paris", n=2)]<|tool_call_end|>.
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local pyexpr = require "lfl.text.tools.pyexpr"
local U = tools.util
local concat, find, sub = table.concat, string.find, string.sub

local M = {}

M.PROMPT = "List of tools: <|tool_list_start|>{tool_text}<|tool_list_end|>"

function M.tool_formatter(list)
  local out = {}
  for i, tool in ipairs(list) do out[i] = U.unwrap_or_self(tool) end
  return U.pyformat(M.PROMPT, {tool_text = U.dumps(J.list(out))})
end

-- strings are written between double quotes as they are (no escaping), as
-- LlamaFactory does
function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.args_dict(c)
    local kw = {}
    for _, k in ipairs(J.keys(args)) do
      local v = args[k]
      kw[#kw + 1] = type(v) == "string" and (k .. '="' .. v .. '"') or (k .. "=" .. U.dumps(v))
    end
    out[i] = U.pystr(c.name) .. "(" .. concat(kw, ", ") .. ")"
  end
  return "<|tool_call_start|>[" .. concat(out, ", ") .. "]<|tool_call_end|>"
end

local NAME_VALUES = {["true"] = true, ["false"] = false, null = J.null}

-- the text between the markers parsed as a call or a list of calls; keyword
-- arguments become the arguments (positional ones are dropped), true / false /
-- null are accepted as values; anything else that is not a literal leaves the
-- content as it is
function M.tool_extractor(content)
  local s0, e0 = find(content, "<|tool_call_start|>", 1, true)
  if not s0 then return content end
  local s1 = find(content, "<|tool_call_end|>", e0 + 1, true)
  if not s1 then return content end
  local tree = pyexpr.parse(U.strip(sub(content, e0 + 1, s1 - 1)))
  if not tree then return content end
  local nodes
  if tree.k == "list" then nodes = tree.elts
  elseif tree.k == "call" then nodes = {tree}
  else return content end
  local results = {}
  for _, node in ipairs(nodes) do
    if node.k ~= "call" or node.func.k ~= "name" then return content end
    local args = J.odict()
    for _, kw in ipairs(node.keywords) do
      local v
      if kw.value.k == "name" then
        v = NAME_VALUES[kw.value.id]
        if v == nil then return content end
      else
        v = pyexpr.literal(kw.value)
        if v == nil then return content end
      end
      J.set(args, kw.arg, v)
    end
    results[#results + 1] = {name = node.func.id, arguments = U.dumps(args)}
  end
  if #results == 0 then return content end
  return results
end

return M
