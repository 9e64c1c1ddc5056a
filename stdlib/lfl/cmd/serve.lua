-- `lfl serve --model <path|hub id> [options]`, or LlamaFactory's `lfl serve
-- recipe.yaml [key=value ...]` (`lfl api` is the same command): the OpenAI-compatible
-- API of stdlib/lfl/infer/serve.lua (llamafactory-cli api): GET /v1/models, POST
-- /v1/chat/completions, with continuous batching, the context limit, and the
-- cross-site policy (--cors, --allowed-hosts) of lua/l_http.c; API_HOST, API_PORT,
-- API_KEY, API_MODEL_NAME as LlamaFactory reads them. --stage rm (stage: rm)
-- serves a reward model: the value head saved by the rm stage next to the
-- adapter answers POST /v1/score/evaluation.
local fmt = string.format

local M = {help = "OpenAI-compatible chat API server (/v1/models, /v1/chat/completions, SSE streaming; "
  .. "/v1/score/evaluation for a reward model)"}

M.usage = [[
usage: lfl serve --model PATH|HUB_ID [options]
       lfl serve RECIPE.yaml|RECIPE.lua [key=value ...]   (lfl api: the same)
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder), applied unmerged   --merge  merge it instead
  --stage sft|rm        rm: a reward model (its value_head.safetensors is read from the last
                        --adapter folder, else the --model folder); it answers POST
                        /v1/score/evaluation {"model", "messages": [text, ...], "max_length"?}
                        with {"scores": [...]} and refuses chat completions (default sft)
  --template NAME       chat template (default: as lfl chat: the registry's template for a known
                        checkpoint, else the tokenizer's chat_template, else "default")
  --host ADDR           IPv4 address to listen on ($API_HOST, default 127.0.0.1; 0.0.0.0 for all)
  --port N              ($API_PORT, default 8000; 0 picks a free port)
  --api-key KEY         require "Authorization: Bearer KEY" ($API_KEY)
  --model-name NAME     the id /v1/models reports ($API_MODEL_NAME, default gpt-3.5-turbo)
  --max-queue N         requests waiting at most (16); more get 503
  --max-body BYTES      largest request body (1048576); larger get 413
  --max-new-tokens N    reply limit when a request gives no max_tokens (1024)
  --max-batch N         rows decoded together (8): requests join the running batch at the next
                        step and leave it when done; more wait in the queue
  --prefill-chunk N     prompt tokens prefilled per step (512): a long prompt takes turns with
                        the running rows instead of stalling them
  --max-model-len N     context cap in tokens (default the model's max_position_embeddings); a
                        prompt that fills it gets 400 context_length_exceeded, max_tokens is cut
                        to the room it leaves
  --cors ORIGINS        comma-separated origins (http://host:port) whose web pages may call the
                        API, or * for any; default none (no Access-Control-Allow-Origin, and a
                        request carrying another Origin gets 403)
  --allowed-hosts NAMES comma-separated host names the Host header may carry besides IP
                        addresses and localhost (e.g. the server's DNS name), or *; others get
                        421 (DNS rebinding). POST bodies must be Content-Type application/json.
Prints "listening on http://HOST:PORT" when ready; Ctrl-C stops.]]

local cmd = require("lfl.cmd")
local SPEC = {name = "lfl serve", usage = M.usage, flags = {"merge"},
  whole = {"port", "max_queue", "max_body", "max_new_tokens", "max_batch", "prefill_chunk", "max_model_len"},
  rules = {port = {type = "int", min = 0, max = 65535}},
  strings = {"model", "adapter", "device", "template", "host", "api_key", "model_name", "cors", "allowed_hosts", "stage"},
  -- a recipe's generation settings are per request in the API: max_new_tokens is the default reply limit
  recipe = cmd.recipe_keys(cmd.INFER_RECIPE, {max_new_tokens = "max_new_tokens", stage = "stage"}),
  recipe_own = {infer_backend = "string"}, recipe_ignored = {"finetuning_type"}}

-- "a, b" -> {"a", "b"}; nil stays nil
local function list(opt, v)
  if v == nil then return nil end
  local out = {}
  for item in (v .. ","):gmatch("([^,]*),") do
    item = item:match("^%s*(.-)%s*$")
    if item == "" then error(fmt("lfl serve: --%s '%s' has an empty entry", opt, v), 0) end
    out[#out + 1] = item
  end
  return out
end

function M.parse(args)
  local o = cmd.parse_command(SPEC, args)
  for _, k in ipairs({"max_queue", "max_body", "max_new_tokens", "max_batch", "prefill_chunk"}) do
    if o[k] == 0 then error(fmt("lfl serve: --%s must be at least 1", k:gsub("_", "-")), 0) end
  end
  if o.max_model_len and o.max_model_len < 2 then error("lfl serve: --max-model-len must be at least 2", 0) end
  o.cors = list("cors", o.cors)
  o.allowed_hosts = list("allowed-hosts", o.allowed_hosts)
  if o.stage ~= nil and o.stage ~= "sft" and o.stage ~= "rm" then
    error(fmt("lfl serve: --stage must be sft (chat) or rm (a reward model's scores), got '%s'", o.stage), 0)
  end
  return o
end

-- a reward model's value head (--stage rm): from the last adapter folder, else
-- the model folder; a missing head is an error (LlamaFactory would score with
-- an untrained, random one)
function M.value_head(model, o)
  local vh = require("lfl.train.value_head")
  local dirs = {}
  for d in tostring(o.adapter or ""):gmatch("[^,]+") do dirs[#dirs + 1] = d:match("^%s*(.-)%s*$") end
  local head = #dirs > 0 and vh.load(dirs[#dirs], model.arch.hidden)
  if not head and lfl.fs.isdir(o.model) then head = vh.load(o.model, model.arch.hidden) end
  if not head then
    error(fmt("lfl serve: --stage rm needs the reward model's %s: %s has none (give --adapter the output_dir "
      .. "of a stage rm run)", vh.FILE, #dirs > 0 and dirs[#dirs] or tostring(o.model)), 0)
  end
  return head
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  local env = os.getenv
  local model = require("lfl.cmd.chat").load(o)
  local head = o.stage == "rm" and M.value_head(model, o) or nil
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
    max_body = o.max_body, max_new_tokens = o.max_new_tokens, max_batch = o.max_batch,
    prefill_chunk = o.prefill_chunk, max_model_len = o.max_model_len, cors = o.cors, allowed_hosts = o.allowed_hosts,
    value_head = head,
    log = function(line) io.stderr:write(os.date("%H:%M:%S "), line, "\n") end}
  print(fmt("listening on http://%s:%d (%smodel %s, context %d%s%s)", o.host or env("API_HOST") or "127.0.0.1",
    srv:port(), head and "reward " or "", tostring(o.model), srv.ctx, key and ", API key required" or "",
    o.cors and ", CORS for " .. table.concat(o.cors, " ") or ""))
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
