-- The "ling" tool format of LlamaFactory's tool_utils.py (Ling / Ring v2,
-- bailing_v2 template): qwen's format with its own prompt, which ends with
-- "detailed thinking off".
local tools = require "lfl.text.tools"
local U = tools.util
local concat = table.concat

local M = {}

M.PROMPT = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
  .. "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
  .. "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
  .. '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
  .. '"arguments": <args-json-object>}}\n</tool_call>'

function M.tool_formatter(list)
  local parts = {}
  for _, tool in ipairs(list) do parts[#parts + 1] = "\n" .. U.dumps(U.wrap(tool)) end
  return U.pyformat(M.PROMPT, {tool_text = concat(parts)}) .. "\n" .. "detailed thinking off"
end

local qwen = tools.get("qwen")
M.function_formatter = qwen.function_formatter
M.tool_extractor = qwen.tool_extractor

return M
