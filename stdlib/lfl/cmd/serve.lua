-- `lfl serve --model <path|hub id> [options]`: the OpenAI-compatible API of
-- stdlib/lfl/serve.lua (llamafactory-cli api): GET /v1/models, POST /v1/chat/completions.
local fmt = string.format

local M = {help = "OpenAI-compatible chat API server (/v1/models, /v1/chat/completions, SSE streaming)"}

M.usage = [[
usage: lfl serve --model PATH|HUB_ID [options]
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder), applied unmerged   --merge  merge it instead
  --template NAME       chat template (default: as lfl chat: the registry's template for a known
                        checkpoint, else the tokenizer's chat_template, else "default")
  --host ADDR           IPv4 address to listen on ($API_HOST, default 127.0.0.1; 0.0.0.0 for all)
  --port N              ($API_PORT, default 8000; 0 picks a free port)
  --api-key KEY         require "Authorization: Bearer KEY" ($API_KEY)
  --model-name NAME     the id /v1/models reports ($API_MODEL_NAME, default gpt-3.5-turbo)
  --max-queue N         requests waiting at most (16); more get 503
  --max-body BYTES      largest request body (1048576); larger get 413
  --max-new-tokens N    reply limit when a request gives no max_tokens (1024)
Prints "listening on http://HOST:PORT" when ready; Ctrl-C stops.]]

local SPEC = {name = "lfl serve", usage = M.usage, flags = {"merge"},
  whole = {"port", "max_queue", "max_body", "max_new_tokens"},
  strings = {"model", "adapter", "template", "host", "api_key", "model_name"}}

function M.parse(args)
  return require("lfl.cmd").parse_options(SPEC, args)
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  local env = os.getenv
  local model = require("lfl.cmd.chat").load(o)
  local tok = lfl.chat.tokenizer(model)
  local tpl = lfl.chat.template(model, tok, o.template or require("lfl.cmd.chat").default_template(model,
    function(line) io.stderr:write(line, "\n") end))
  local key = o.api_key or env("API_KEY")
  if key == "" then key = nil end
  -- interpreted loops check for Ctrl-C at every instruction
  jit.off()
  math.randomseed(os.time())
  local srv = require("lfl.infer.serve").new{model = model, tokenizer = tok, template = tpl,
    host = o.host or env("API_HOST") or "127.0.0.1", port = o.port or tonumber(env("API_PORT") or "") or 8000,
    api_key = key, model_name = o.model_name or env("API_MODEL_NAME"), max_queue = o.max_queue,
    max_body = o.max_body, max_new_tokens = o.max_new_tokens,
    log = function(line) io.stderr:write(os.date("%H:%M:%S "), line, "\n") end}
  print(fmt("listening on http://%s:%d (model %s%s)", o.host or env("API_HOST") or "127.0.0.1", srv:port(),
    tostring(o.model), key and ", API key required" or ""))
  io.stdout:flush()
  local ok, err = pcall(srv.run, srv)
  srv:stop()
  if not ok then
    if tostring(err):find("interrupted", 1, true) then io.stderr:write("lfl serve: stopped\n") return 0 end
    error(err, 0)
  end
  return 0
end

return M
