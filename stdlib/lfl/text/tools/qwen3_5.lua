-- The "qwen3_5" tool format of LlamaFactory's tool_utils.py (Qwen3.5 / 3.6):
-- tools as JSON lines inside <tools>, calls as
-- <tool_call>\n<function=name>\n<parameter=key>\nvalue\n</parameter>...</function>\n</tool_call>.
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local S = require "lfl.text.tools.scan"
local U = tools.util
local concat, find = table.concat, string.find

local M = {}

M.PROMPT = "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>{tool_text}"
  .. "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
  .. "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
  .. "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
  .. "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
  .. "- Function calls MUST follow the specified format: "
  .. "an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
  .. "- Required parameters MUST be specified\n"
  .. "- You may provide optional reasoning for your function call in natural language "
  .. "BEFORE the function call, but NOT after\n"
  .. "- If there is no function call available, answer the question like normal with your current knowledge "
  .. "and do not tell the user about function calls\n</IMPORTANT>"

function M.tool_formatter(list)
  local parts = {}
  for _, tool in ipairs(list) do parts[#parts + 1] = "\n" .. U.dumps(U.unwrap_or_self(tool)) end
  return U.pyformat(M.PROMPT, {tool_text = concat(parts)})
end

function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.args_dict(c)
    local p = {"<tool_call>\n<function=" .. U.pystr(c.name) .. ">"}
    for _, k in ipairs(J.keys(args)) do
      local v = args[k]
      if type(v) ~= "string" then v = U.dumps(v) end
      p[#p + 1] = "\n<parameter=" .. k .. ">\n" .. v .. "\n</parameter>"
    end
    p[#p + 1] = "\n</function>\n</tool_call>"
    out[i] = concat(p)
  end
  return concat(out, "\n")
end

-- parameters of one <function=...> block; a value is JSON when it parses, else
-- the stripped text (keep_raw: the text as written, for seed_oss)
function M.parse_params(block, keep_raw)
  local args = J.odict()
  for _, kv in ipairs(S.findall_pairs(U.strip(block), "<parameter=", ">", "</parameter>")) do
    local value = U.strip(kv[2])
    local v = U.try_decode(value)
    if v == nil then v = keep_raw and kv[2] or value end
    J.set(args, kv[1], v)
  end
  return args
end

-- findall(<tool_call>\s*<function=\s*([^\s<>]+)\s*(.*?)\s*</function>\s*</tool_call>)
function M.tool_extractor(content)
  local results, pos = {}, 1
  while true do
    local a, b = find(content, "<tool_call>", pos, true)
    if not a then break end
    local name, block, stop = S.function_block(content, b + 1, "[^%s<>]", "</function>", "</tool_call>")
    if name then
      results[#results + 1] = {name = U.strip(name), arguments = U.dumps(M.parse_params(block))}
      pos = stop + 1
    else
      pos = a + 1
    end
  end
  if #results == 0 then return content end
  return results
end

return M
