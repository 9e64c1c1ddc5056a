-- `lfl board [--host 127.0.0.1] [--port 7860] ...`: LlamaBoard, the web UI
-- (stdlib/lfl/board): configure and start training runs as child `lfl train`
-- processes, follow their loss curve and logs live, chat with the base model
-- or a trained adapter. Bound to anything but 127.0.0.1 / localhost it needs
-- an access token (--token or LFL_BOARD_TOKEN) and refuses to start without one.
local fmt = string.format

local M = {help = "LlamaBoard web UI: train (child lfl train runs, live loss curve) and chat in the browser"}

M.usage = [[
usage: lfl board [options]
  --host ADDR           address to listen on (default 127.0.0.1); any other address
                        needs --token
  --port N              (default 7860; 0 picks a free port)
  --token TOKEN         access token ($LFL_BOARD_TOKEN): every API request must carry
                        "Authorization: Bearer TOKEN"; open the page as
                        http://HOST:PORT/#token=TOKEN (the fragment never leaves the browser)
  --dataset-dir DIR     folder with dataset_info.json (default: the bundled recipes/data)
  --output-dir DIR      where runs write (default ./saves); saved configurations go to
                        DIR/llamaboard_config
  --model-dir DIR       a folder of models (*.gguf, HF folders) the page may pick from; give it
                        again for more (default ~/.cache/lfl/models and $LFL_CACHE/models)
  --allowed-hosts NAMES comma-separated host names the page may be reached by besides IP
                        addresses and localhost
Paths the page sends (datasets, outputs, models, adapters) must lie inside these folders.
Prints "listening on http://HOST:PORT" when ready; Ctrl-C stops (running trainings are
stopped; their checkpoints stay).]]

function M.run(args)
  local o, model_dirs = {}, {}
  local i = 1
  local strings = {host = true, port = true, token = true, dataset_dir = true, output_dir = true, model_dir = true,
    allowed_hosts = true}
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then print(M.usage) return 0 end
    local k, v = a:match("^%-%-([%w_%-]+)=(.*)$")
    k = k or a:match("^%-%-([%w_%-]+)$")
    if not k then error(fmt("lfl board: unexpected argument '%s'\n%s", a, M.usage), 0) end
    k = k:gsub("%-", "_")
    if not strings[k] then error(fmt("lfl board: unknown option --%s\n%s", k:gsub("_", "-"), M.usage), 0) end
    if v == nil then i = i + 1; v = args[i] end
    if v == nil then error(fmt("lfl board: --%s needs a value", k:gsub("_", "-")), 0) end
    if k == "model_dir" then model_dirs[#model_dirs + 1] = v else o[k] = v end
    i = i + 1
  end
  local port = 7860
  if o.port then
    port = tonumber(o.port)
    if not port or port ~= math.floor(port) or port < 0 or port > 65535 then
      error(fmt("lfl board: --port expects a whole number in [0, 65535], got '%s'", o.port), 0)
    end
  end
  if #model_dirs == 0 then
    local home = os.getenv("HOME") or "."
    model_dirs[1] = (os.getenv("LFL_CACHE") or (home .. "/.cache/lfl")) .. "/models"
  end
  local hosts
  if o.allowed_hosts then
    hosts = {}
    for h in o.allowed_hosts:gmatch("[^,%s]+") do hosts[#hosts + 1] = h end
  end
  local board = require("lfl.board").new({host = o.host, port = port, token = o.token or os.getenv("LFL_BOARD_TOKEN"),
    dataset_dir = o.dataset_dir, output_dir = o.output_dir, model_dirs = model_dirs, allowed_hosts = hosts,
    log = function(line) io.stderr:write(os.date("%H:%M:%S "), line, "\n") end})
  local host = o.host or "127.0.0.1"
  print(fmt("listening on http://%s:%d", host:find(":") and "[" .. host .. "]" or host, board:port()))
  io.stdout:flush()
  local ok, err = pcall(board.run, board)
  board:stop()
  if not ok and not tostring(err):find("interrupted", 1, true) then error(err, 0) end
  return 0
end

return M
