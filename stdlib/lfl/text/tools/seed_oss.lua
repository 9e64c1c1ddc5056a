-- The "seed_oss" tool format of LlamaFactory's tool_utils.py (Seed-OSS): the
-- tool list as one JSON array in a "Doubao" system text, calls as
-- <seed:tool_call>\n<function=name>\n<parameter=key>value</parameter>...</seed:tool_call>.
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local S = require "lfl.text.tools.scan"
local qwen3_5 = require "lfl.text.tools.qwen3_5"
local U = tools.util
local concat, find = table.concat, string.find

local M = {}

M.PROMPT = "system\nYou are Doubao, a helpful AI assistant. You may call one or more functions to assist with the user query."
  .. "Tool List:\nYou are authorized to use the following tools (described in JSON Schema format). Before performing "
  .. "any task, you must decide how to call them based on the descriptions and parameters of these tools.{tool_text}\n"
  .. "工具调用请遵循如下格式:\n<seed:tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>value_1"
  .. "</parameter>\n<parameter=example_parameter_2>This is the value for the second parameter\nthat can span\nmultiple "
  .. "lines</parameter>\n</function>\n</seed:tool_call>\n"

-- the list is dumped as given (wrapped or not)
function M.tool_formatter(list)
  return U.pyformat(M.PROMPT, {tool_text = "\n" .. U.dumps(J.list(list))})
end

function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.args_dict(c)
    local p = {"\n<seed:tool_call>\n<function=" .. U.pystr(c.name)}
    for _, k in ipairs(J.keys(args)) do
      local v = args[k]
      if type(v) ~= "string" then v = U.dumps(v) end
      p[#p + 1] = "\n<parameter=" .. k .. ">" .. v .. "</parameter>"
    end
    p[#p + 1] = "\n</function>\n</seed:tool_call>"
    out[i] = concat(p)
  end
  return concat(out, "\n")
end

-- findall(<seed:tool_call>\s*<function=\s*([^\s<]+)\s*(.*?)\s*</function>\s*</seed:tool_call>);
-- the name class lets ">" in, so a call written as <function=f> is read back as "f>"
-- exactly as LlamaFactory reads it
function M.tool_extractor(content)
  local results, pos = {}, 1
  while true do
    local a, b = find(content, "<seed:tool_call>", pos, true)
    if not a then break end
    local name, block, stop = S.function_block(content, b + 1, "[^%s<]", "</function>", "</seed:tool_call>")
    if name then
      results[#results + 1] = {name = U.strip(name), arguments = U.dumps(qwen3_5.parse_params(block, true))}
      pos = stop + 1
    else
      pos = a + 1
    end
  end
  if #results == 0 then return content end
  return results
end

return M
