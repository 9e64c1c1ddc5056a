-- The "minimax1" tool format of LlamaFactory's tool_utils.py (MiniMax-M1):
-- tools as JSON lines inside <tools>, calls as JSON lines inside <tool_calls>.
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local S = require "lfl.text.tools.scan"
local U = tools.util
local concat, fmt = table.concat, string.format

local M = {}

M.PROMPT = "You are provided with these tools:\n<tools>\n{tool_text}</tools>\n\n"
  .. "If you need to call tools, please respond with <tool_calls></tool_calls> XML tags, and provide tool-name and "
  .. "json-object of arguments, following the format below:\n<tool_calls>\n"
  .. '{{"name": <tool-name-1>, "arguments": <args-json-object-1>}}\n...\n</tool_calls>'

function M.tool_formatter(list)
  local parts = {}
  for _, tool in ipairs(list) do parts[#parts + 1] = U.dumps(U.unwrap(tool)) .. "\n" end
  return U.pyformat(M.PROMPT, {tool_text = concat(parts)})
end

function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do out[i] = U.dumps(J.odict("name", c.name, "arguments", J.decode(c.arguments))) end
  return "<tool_calls>\n" .. concat(out, "\n") .. "\n</tool_calls>"
end

-- the first <tool_calls> block; each line that parses as JSON is a call. Lines
-- that do not parse are skipped (so the result may be an empty list); a line
-- that parses but is not a {"name", "arguments"} object raises, as in LlamaFactory.
function M.tool_extractor(content)
  local _, _, body = S.search_wrapped(content, "<tool_calls>", "</tool_calls>")
  if not body then return content end
  local results = {}
  for line in (body .. "\n"):gmatch("(.-)\n") do
    line = U.strip(line)
    if line ~= "" then
      local call = U.try_decode(line)
      if call ~= nil then
        if type(call) ~= "table" or not J.is_dict(call) then
          error(fmt("minimax1 tool call %s: expected a JSON object", line), 0)
        end
        if call.name == nil or call.arguments == nil then
          error(fmt("minimax1 tool call %s: KeyError: '%s'", line, call.name == nil and "name" or "arguments"), 0)
        end
        results[#results + 1] = {name = call.name, arguments = U.dumps(call.arguments)}
      end
    end
  end
  return results
end

return M
