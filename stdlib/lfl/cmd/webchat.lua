-- `lfl webchat RECIPE.yaml [key=value ...]` (or the chat flags): LlamaFactory's
-- `llamafactory-cli webchat`, the chat-only web page. The model of the recipe
-- (model_name_or_path, adapter_name_or_path, template, infer_dtype, ...) is
-- loaded before the server starts; the page is LlamaBoard's chat tab alone, and
-- every other API of the board (training, evaluation, export, loading other
-- models) answers 403. Host, port and access token as `lfl board`, with
-- LlamaFactory's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
local fmt = string.format

local M = {help = "the chat-only web page of a model (LlamaFactory's webchat)"}

M.usage = [[
usage: lfl webchat RECIPE.yaml|RECIPE.lua [key=value ...] [--host ADDR] [--port N] [--token TOKEN]
       lfl webchat --model PATH [--adapter DIR] [--template NAME] ... [--host ADDR] [--port N]
  the model options are lfl chat's (lfl chat --help); the page listens on 127.0.0.1:7860 by
  default (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT as in LlamaFactory); any other address
  needs --token (or LFL_BOARD_TOKEN)]]

-- splits the server options off; the rest are lfl chat's arguments
local function server_options(args)
  local o, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local k, v = a:match("^%-%-(host)=(.*)$")
    if not k then k, v = a:match("^%-%-(port)=(.*)$") end
    if not k then k, v = a:match("^%-%-(token)=(.*)$") end
    if not k and (a == "--host" or a == "--port" or a == "--token") then
      k, v = a:sub(3), args[i + 1]
      if v == nil then error(fmt("lfl webchat: %s needs a value", a), 0) end
      i = i + 1
    end
    if k then o[k] = v else rest[#rest + 1] = a end
    i = i + 1
  end
  return o, rest
end

-- the board set up for the chat of the model the arguments name (not yet listening
-- when opts.port is false): for lfl webchat and its tests
function M.board(args, opts)
  opts = opts or {}
  local so, rest = server_options(args)
  local o = require("lfl.cmd.chat").parse(rest)
  if o.help then return nil, o end
  local port = so.port or os.getenv("GRADIO_SERVER_PORT") or 7860
  port = tonumber(port)
  if not port or port ~= math.floor(port) or port < 0 or port > 65535 then
    error(fmt("lfl webchat: the port must be a whole number in [0, 65535], got '%s'", tostring(so.port)), 0)
  end
  local board = require("lfl.board").new({host = so.host or os.getenv("GRADIO_SERVER_NAME"), port = opts.port == false
    and false or port, token = so.token or os.getenv("LFL_BOARD_TOKEN"), chat_only = true, log = opts.log,
    output_dir = opts.output_dir})
  board:chat_start({model = o.model, adapter = o.adapter, template = o.template, dtype = o.dtype,
    gguf_blocks = o.gguf_blocks, merge = o.merge, rope_scaling = o.rope_scaling})
  return board, o
end

function M.run(args)
  local board, o = M.board(args, {log = function(line) io.stderr:write(os.date("%H:%M:%S "), line, "\n") end})
  if not board then print(M.usage) return 0 end
  local host = board.host or "127.0.0.1"
  print(fmt("lfl webchat: %s (template %s) on http://%s:%d", board.chat_info.model, board.chat_info.template,
    host:find(":") and "[" .. host .. "]" or host, board:port()))
  io.stdout:flush()
  local ok, err = pcall(board.run, board)
  board:stop()
  if not ok and not tostring(err):find("interrupted", 1, true) then error(err, 0) end
  return 0
end

return M
