-- The "minimax2" tool format of LlamaFactory's tool_utils.py (MiniMax-M2):
-- tools as <tool>{json}</tool> lines, calls as
-- <invoke name="f">\n<parameter name="k">v</parameter>...\n</invoke> inside <minimax:tool_call>.
local J = require "lfl.text.pyjson"
local tools = require "lfl.text.tools"
local S = require "lfl.text.tools.scan"
local U = tools.util
local concat = table.concat

local M = {}

M.PROMPT = "\n\n# Tools\n\nYou may call one or more tools to assist with the user query.\n"
  .. "Here are the tools available in JSONSchema format:\n\n<tools>\n{tool_text}</tools>\n\n"
  .. "When making tool calls, use XML format to invoke tools and pass parameters:\n"
  .. '\n<minimax:tool_call>\n<invoke name="tool-name-1">\n<parameter name="param-key-1">param-value-1</parameter>\n'
  .. '<parameter name="param-key-2">param-value-2</parameter>\n...\n</invoke>\n</minimax:tool_call>'

function M.tool_formatter(list)
  local parts = {}
  for _, tool in ipairs(list) do parts[#parts + 1] = "<tool>" .. U.dumps(U.unwrap(tool)) .. "</tool>\n" end
  return U.pyformat(M.PROMPT, {tool_text = concat(parts)})
end

-- the calls are not wrapped in <minimax:tool_call> (the extractor expects it)
function M.function_formatter(calls)
  local out = {}
  for i, c in ipairs(calls) do
    local args = U.args_dict(c)
    local p = {'<invoke name="' .. U.pystr(c.name) .. '">'}
    for _, k in ipairs(J.keys(args)) do
      local v = args[k]
      if type(v) ~= "string" then v = U.dumps(v) end
      p[#p + 1] = '\n<parameter name="' .. k .. '">' .. v .. "</parameter>"
    end
    p[#p + 1] = "\n</invoke>"
    out[i] = concat(p)
  end
  return concat(out, "\n")
end

function M.tool_extractor(content)
  local _, _, body = S.search_wrapped(content, "<minimax:tool_call>", "</minimax:tool_call>")
  if not body then return content end
  local results = {}
  for _, inv in ipairs(S.findall_pairs(body, '<invoke name="', '">', "</invoke>")) do
    local args = J.odict()
    for _, kv in ipairs(S.findall_pairs(inv[2], '<parameter name="', '">', "</parameter>")) do
      local v = U.try_decode(U.strip(kv[2]))
      if v == nil then v = kv[2] end
      J.set(args, kv[1], v)
    end
    results[#results + 1] = {name = U.strip(inv[1]), arguments = U.dumps(args)}
  end
  return results
end

return M
