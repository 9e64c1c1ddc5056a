-- The "glm4_moe" tool format of LlamaFactory's tool_utils.py (GLM-4.5 / 4.6 /
-- 4.7): qwen-style tool list, calls as <tool_call>name\n<arg_key>k</arg_key>\n
-- <arg_value>v</arg_value>; the extractor is qwen's (JSON inside <tool_call>).
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local U = tools.util
local concat = table.concat

local M = {}

M.PROMPT = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
  .. "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
  .. "\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:"
  .. "\n<tool_call>{{function-name}}"
  .. "\n<arg_key>{{arg-key-1}}</arg_key>"
  .. "\n<arg_value>{{arg-value-1}}</arg_value>"
  .. "\n<arg_key>{{arg-key-2}}</arg_key>"
  .. "\n<arg_value>{{arg-value-2}}</arg_value>"
  .. "\n...\n</tool_call>\n"

function M.tool_formatter(list)
  local parts = {}
  for _, tool in ipairs(list) do parts[#parts + 1] = "\n" .. U.dumps(U.wrap(tool)) end
  return U.pyformat(M.PROMPT, {tool_text = concat(parts)})
end

function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.args_dict(c)
    local p = {"\n<tool_call>" .. U.pystr(c.name)}
    for _, k in ipairs(J.keys(args)) do
      local v = args[k]
      if type(v) ~= "string" then v = U.dumps(v) end
      p[#p + 1] = "\n<arg_key>" .. k .. "</arg_key>\n<arg_value>" .. v .. "</arg_value>"
    end
    out[i] = concat(p)
  end
  return concat(out, "\n")
end

M.tool_extractor = tools.get("qwen").tool_extractor

return M
