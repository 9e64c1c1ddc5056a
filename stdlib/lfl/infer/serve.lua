-- An OpenAI-compatible API (as llamafactory-cli api): GET /v1/models, POST
-- /v1/chat/completions (plain or streamed as server-sent events ending with
-- "data: [DONE]", tools -> tool_calls through the template's tool extractor),
-- OpenAI's error shape with 4xx/5xx statuses, an optional API key (Bearer).
-- The HTTP side is lfl.http (C, libmicrohttpd): requests are queued by its
-- threads and answered here on the Lua main loop, which also refuses other
-- web pages (Host check, CORS only for configured origins, JSON bodies only).
-- Continuous batching (lfl.generate.batcher): a chat completion's prompt is
-- tokenized and checked against the context (400 context_length_exceeded
-- before any prefill), its max_tokens cut to the room left, and its rows (one
-- per choice) join the running decode at the next step, up to max_batch rows;
-- a long prompt is prefilled a chunk per step. Each streams on its own, and a
-- client that leaves (streamed or not: the HTTP layer watches the socket)
-- cancels only its rows. A full queue answers 503.
-- A reward model (opts.value_head: the rm stage's value_head.safetensors)
-- answers LlamaFactory's POST /v1/score/evaluation instead: each text of
-- `messages` tokenized as is (no special tokens added, cut to max_length or
-- the context) and scored by the value head at its last token; as
-- LlamaFactory's api, a reward model refuses chat completions and a chat
-- model refuses scores (405 "Not allowed").
local lfl = lfl
local gen = require("lfl.infer.generate")
local J = require("lfl.text.pyjson")
local fmt = string.format

local M = {}

local ROLES = {system = true, user = true, assistant = true, tool = true, ["function"] = true}
-- request fields accepted (others are refused with 400, as a typo would otherwise be ignored)
local FIELDS = {model = true, messages = true, temperature = true, top_p = true, n = true, max_tokens = true,
  max_completion_tokens = true, stop = true, stream = true, stream_options = true, tools = true, tool_choice = true,
  presence_penalty = true, frequency_penalty = true, seed = true, user = true, do_sample = true, top_k = true,
  repetition_penalty = true, min_p = true, parallel_tool_calls = true}
local MAX_N = 8

local function encode(v) return J.encode(v, {ensure_ascii = false, separators = {",", ":"}}) end

local function hex(n)
  local t = {}
  for i = 1, n do t[i] = fmt("%x", math.random(0, 15)) end
  return table.concat(t)
end

-- an error the client caused: status, message, param, code
local function reject(status, msg, param, code)
  error({status = status, message = msg, param = param, code = code}, 0)
end

local function error_body(status, msg, param, code)
  local ty = status >= 500 and "server_error" or status == 401 and "authentication_error" or "invalid_request_error"
  -- messages quote the client's path and field names, which may not be UTF-8
  msg = J.utf8_repair(msg)
  if type(param) == "string" then param = J.utf8_repair(param) end
  return encode(J.odict("error", J.odict("message", msg, "type", ty, "param", param or J.null, "code", code or J.null)))
end

local function num(req, k, lo, hi, integer)
  local v = req[k]
  if v == nil or v == lfl.json.null then return nil end
  -- a sampling parameter past 2^53 (a 64-bit seed) is used as its nearest double
  if J.is_int(v) then v = J.num(v) end
  if type(v) ~= "number" or v ~= v then reject(400, fmt("'%s' must be a number", k), k) end
  if integer and v ~= math.floor(v) then reject(400, fmt("'%s' must be an integer", k), k) end
  if (lo and v < lo) or (hi and v > hi) then
    reject(400, fmt("'%s' must be in [%s, %s], got %s", k, tostring(lo), tostring(hi or "inf"), tostring(v)), k)
  end
  return v
end

-- content: a string or a list of {type = "text", text = ...} parts
local function text_of(content, i)
  if type(content) == "string" then return content end
  if type(content) == "table" then
    local parts = {}
    for _, p in ipairs(content) do
      if type(p) ~= "table" or p.type ~= "text" or type(p.text) ~= "string" then
        reject(400, fmt("messages[%d].content: only text parts are supported", i - 1), "messages")
      end
      parts[#parts + 1] = p.text
    end
    return table.concat(parts)
  end
  reject(400, fmt("messages[%d].content must be a string or a list of text parts", i - 1), "messages")
end

-- OpenAI messages -> system, LlamaFactory-style messages (as its api/chat.py)
function M.convert_messages(list)
  if type(list) ~= "table" or #list == 0 then reject(400, "'messages' must be a non-empty list", "messages") end
  local system, msgs = nil, {}
  for i, m in ipairs(list) do
    if type(m) ~= "table" or type(m.role) ~= "string" or not ROLES[m.role] then
      reject(400, fmt("messages[%d].role must be one of system, user, assistant, tool, function", i - 1), "messages")
    end
    if i == 1 and m.role == "system" then
      system = text_of(m.content, i)
    elseif m.role == "system" then
      reject(400, "only the first message may be a system message", "messages")
    elseif m.role == "assistant" and type(m.tool_calls) == "table" and #m.tool_calls > 0 then
      local calls = {}
      for _, c in ipairs(m.tool_calls) do
        local f = type(c) == "table" and c["function"]
        if type(f) ~= "table" or type(f.name) ~= "string" then
          reject(400, fmt("messages[%d].tool_calls: each needs function.name", i - 1), "messages")
        end
        local args = f.arguments
        if type(args) ~= "string" then args = lfl.json.encode(args or {}) end
        calls[#calls + 1] = J.odict("name", f.name, "arguments", args)
      end
      msgs[#msgs + 1] = {role = "function", content = encode(calls)}
    else
      local role = m.role == "tool" and "observation" or m.role
      local content = m.content
      if content == nil or content == lfl.json.null then content = "" end
      msgs[#msgs + 1] = {role = role, content = text_of(content, i)}
    end
  end
  -- user|observation, then assistant|function, alternating, odd in number
  for i, m in ipairs(msgs) do
    local want_user = i % 2 == 1
    local ok = want_user and (m.role == "user" or m.role == "observation")
      or (not want_user and (m.role == "assistant" or m.role == "function"))
    if not ok then reject(400, "Only supports u/a/u/a/u...", "messages") end
  end
  if #msgs % 2 == 0 then reject(400, "Only supports u/a/u/a/u...", "messages") end
  return system, msgs
end

-- tools [{type = "function", function = {...}}] -> JSON text of the function objects (key order kept)
local function tools_json(body)
  -- cJSON (which read the request) takes any control byte for whitespace, Python's json does not
  local ok, doc = pcall(J.decode, body)
  if not ok then reject(400, "invalid JSON: " .. tostring(doc), nil, "invalid_json") end
  local ordered = doc.tools
  local out = {}
  for i, t in ipairs(ordered) do
    local f = type(t) == "table" and t["function"]
    if t.type ~= "function" or type(f) ~= "table" or type(f.name) ~= "string" then
      reject(400, fmt("tools[%d] must be {type: \"function\", function: {name, ...}}", i - 1), "tools")
    end
    out[#out + 1] = f
  end
  return encode(out)
end

-- a validated request -> generation options
function M.parse_request(body, max_new_default)
  -- JSON text is UTF-8 (RFC 8259); the tools are decoded again by pyjson, which insists
  if not J.utf8_valid(body) then reject(400, "invalid JSON: the request body is not UTF-8", nil, "invalid_json") end
  local ok, req = pcall(lfl.json.decode, body, "request body")
  if not ok then reject(400, "invalid JSON: " .. tostring(req), nil, "invalid_json") end
  if type(req) ~= "table" or not body:match("^%s*{") then reject(400, "the request body must be a JSON object") end
  for k in pairs(req) do
    if not FIELDS[k] then reject(400, fmt("unknown field '%s'", tostring(k)), tostring(k), "unknown_field") end
  end
  local system, msgs = M.convert_messages(req.messages)
  local o = {system = system, messages = msgs}
  o.temperature = num(req, "temperature", 0, 2)
  o.top_p = num(req, "top_p", 0, 1)
  if o.top_p == 0 then reject(400, "'top_p' must be > 0", "top_p") end
  o.top_k = num(req, "top_k", 0, nil, true)
  o.min_p = num(req, "min_p", 0, 1)
  o.n = num(req, "n", 1, MAX_N, true) or 1
  o.max_new_tokens = num(req, "max_tokens", 1, nil, true) or num(req, "max_completion_tokens", 1, nil, true)
    or max_new_default
  o.seed = num(req, "seed", nil, nil, true)
  local pp = num(req, "presence_penalty", -2, 2)
  if req.repetition_penalty ~= nil then o.repetition_penalty = num(req, "repetition_penalty", 0.01, 10)
  elseif pp and pp > 0 then o.repetition_penalty = 1 + pp end -- LlamaFactory maps presence_penalty here
  if req.do_sample ~= nil and type(req.do_sample) ~= "boolean" then reject(400, "'do_sample' must be a boolean", "do_sample") end
  o.do_sample = req.do_sample
  if req.stream ~= nil and req.stream ~= lfl.json.null and type(req.stream) ~= "boolean" then
    reject(400, "'stream' must be a boolean", "stream")
  end
  o.stream = req.stream == true
  local stop = req.stop
  if stop ~= nil and stop ~= lfl.json.null then
    if type(stop) == "string" then stop = {stop} end
    if type(stop) ~= "table" or #stop > 4 then reject(400, "'stop' must be a string or a list of up to 4 strings", "stop") end
    for _, s in ipairs(stop) do
      if type(s) ~= "string" or s == "" then reject(400, "'stop' entries must be non-empty strings", "stop") end
    end
    o.stop = stop
  end
  if req.tools ~= nil and req.tools ~= lfl.json.null then
    if type(req.tools) ~= "table" then reject(400, "'tools' must be a list", "tools") end
    if #req.tools > 0 then o.tools = tools_json(body) end
  end
  if o.stream and o.n > 1 then reject(400, "Cannot stream multiple responses.", "n") end
  if o.stream and o.tools then reject(400, "Cannot stream function calls.", "stream") end
  if o.n > 1 and (o.temperature == 0 or o.do_sample == false) then o.do_sample, o.temperature = true, o.temperature or 0.95 end
  if o.temperature == 0 then o.do_sample = false end
  return o
end

local SCORE_FIELDS = {model = true, messages = true, max_length = true}

-- a validated /v1/score/evaluation request (LlamaFactory's ScoreEvaluationRequest:
-- model str, messages list[str], max_length int | None) -> {model, texts,
-- max_length}. Read with Python's json rules (lfl.text.pyjson), which tell an
-- empty list from an empty object as pydantic does.
function M.parse_score_request(body)
  if not J.utf8_valid(body) then reject(400, "invalid JSON: the request body is not UTF-8", nil, "invalid_json") end
  local ok, req = pcall(J.decode, body)
  if not ok then reject(400, "invalid JSON: " .. tostring(req), nil, "invalid_json") end
  if not J.is_dict(req) then reject(400, "the request body must be a JSON object") end
  for _, k in ipairs(J.keys(req)) do
    if not SCORE_FIELDS[k] then reject(400, fmt("unknown field '%s'", tostring(k)), tostring(k), "unknown_field") end
  end
  if type(req.model) ~= "string" then reject(400, "'model' must be a string", "model") end
  local list = req.messages
  if not J.is_list(list) then reject(400, "'messages' must be a list of strings", "messages") end
  -- LlamaFactory: an empty list is an "Invalid request" (400)
  if #list == 0 then reject(400, "Invalid request: 'messages' is empty", "messages") end
  for i, m in ipairs(list) do
    if type(m) ~= "string" then reject(400, fmt("messages[%d] must be a string", i - 1), "messages") end
  end
  local ml = req.max_length
  if ml == J.null then ml = nil end
  if ml ~= nil then
    if type(ml) == "table" and (J.is_float(ml) or J.is_int(ml)) then ml = J.num(ml) end
    if type(ml) ~= "number" or ml ~= ml or ml == math.huge or ml ~= math.floor(ml) or ml < 1 then
      reject(400, "'max_length' must be a whole number >= 1 (or null)", "max_length")
    end
  end
  return {model = req.model, texts = list, max_length = ml}
end

-- ---------------------------------------------------------------- the server

local Server = {}
Server.__index = Server
M._Server = Server -- for tests

-- The model's context (positions), at most max_model_len when given.
function M.context_length(model, max_model_len)
  local c = model.config or {}
  local n = c.max_position_embeddings or c.n_positions or c.max_sequence_length or c.seq_length
    or c.model_max_length
  if type(n) ~= "number" then n = nil end
  if max_model_len then
    if type(max_model_len) ~= "number" or max_model_len < 2 or max_model_len ~= math.floor(max_model_len) then
      error(fmt("serve: max_model_len must be a whole number >= 2, got %s", tostring(max_model_len)), 0)
    end
    if n and max_model_len > n then
      error(fmt("serve: max_model_len %d is larger than the model's context (%d positions)", max_model_len, n), 0)
    end
    n = max_model_len
  end
  if not n then
    error("serve: the model's context length is unknown (its config has no max_position_embeddings): "
      .. "give max_model_len (--max-model-len)", 0)
  end
  return n
end

local function whole(opts, k, def, lo)
  local v = opts[k]
  if v == nil then return def end
  if type(v) ~= "number" or v ~= math.floor(v) or v < lo then
    error(fmt("serve: %s must be a whole number >= %d, got %s", k, lo, tostring(v)), 0)
  end
  return v
end

-- opts: model, tokenizer, template, host ("127.0.0.1"), port (8000; false: no
-- socket, for tests that feed requests by hand), api_key, model_name
-- ("gpt-3.5-turbo" as LlamaFactory), max_queue (16), max_body (1 MiB),
-- max_new_tokens (default reply limit, 1024), max_batch (rows decoded
-- together, 8; a request for n choices takes n rows and may take the batch
-- over by n - 1), prefill_chunk (prompt tokens prefilled per step, 512),
-- max_model_len (context cap; default the model's), cors (allowed origins, or
-- {"*"}), allowed_hosts (Host names besides IP addresses and localhost),
-- value_head (a reward model's head, lfl.train.value_head: the server then
-- scores instead of chatting), log (function(line))
function M.new(opts)
  local s = setmetatable({}, Server)
  s.model = opts.model
  s.value_head = opts.value_head
  s.tok = opts.tokenizer
  s.tpl = opts.template
  s.api_key = opts.api_key
  s.name = opts.model_name or "gpt-3.5-turbo"
  s.max_new = whole(opts, "max_new_tokens", gen.DEFAULTS.max_new_tokens, 1)
  s.max_batch = whole(opts, "max_batch", 8, 1)
  s.prefill_chunk = whole(opts, "prefill_chunk", 512, 1)
  s.ctx = M.context_length(opts.model, opts.max_model_len)
  s.log = opts.log or function() end
  s.batch = gen.batcher(s.model, {prefill_chunk = s.prefill_chunk})
  s.jobs = {}
  if opts.port ~= false then
    s.http = lfl.http.server{host = opts.host or "127.0.0.1", port = opts.port or 8000,
      max_queue = opts.max_queue or 16, max_body = opts.max_body or 1048576, cors = opts.cors,
      allowed_hosts = opts.allowed_hosts, log_refused = opts.log ~= nil}
  end
  s.created = os.time()
  return s
end

function Server:port() return self.http:port() end

local function respond_json(req, status, body) req:respond(status, "application/json", body) end

function Server:models(req)
  respond_json(req, 200, encode(J.odict("object", "list", "data", {J.odict("id", self.name, "object", "model",
    "created", self.created, "owned_by", "owner")})))
end

local function gen_opts(o, extra)
  local g = gen.with_defaults({system = o.system, tools = o.tools, temperature = o.temperature, top_p = o.top_p,
    top_k = o.top_k, min_p = o.min_p, max_new_tokens = o.max_new_tokens, repetition_penalty = o.repetition_penalty,
    stop = o.stop, seed = o.seed})
  if o.do_sample ~= nil then g.do_sample = o.do_sample end
  for k, v in pairs(extra or {}) do g[k] = v end
  return g
end

-- A chat completion in progress: the request, its parsed options, its id.
local function new_job(req, o)
  return {req = req, o = o, id = "chatcmpl-" .. hex(32), created = os.time()}
end

-- sends one server-sent event of a streamed job; false once the client is gone
function Server:chunk(job, delta, finish)
  local c = J.odict("id", job.id, "object", "chat.completion.chunk", "created", job.created, "model", self.name,
    "choices", {J.odict("index", 0, "delta", delta, "finish_reason", finish or J.null)})
  return job.req:send("data: " .. encode(c) .. "\n\n")
end

-- a stream starts with its headers and the role; false if the client left
function Server:start_job(job)
  if not job.o.stream then return true end
  job.req:start(200, "text/event-stream")
  return self:chunk(job, J.odict("role", "assistant", "content", ""))
end

-- generation options of a job's choice i: on_text streams, or checks that
-- the client is still there
function Server:job_opts(job, i)
  local o, req = job.o, job.req
  if o.stream then
    return gen_opts(o, {on_text = function(d) return self:chunk(job, J.odict("content", d)) end})
  end
  local g = gen_opts(o, {on_text = function() return not req:gone() end})
  if o.n > 1 and o.seed then g.seed = o.seed + i - 1 end
  return g
end

-- answers a job from its choices' {text, finish_reason, usage}; returns what to log
function Server:finish_job(job, results)
  local o, req = job.o, job.req
  for _, r in ipairs(results) do
    if r[2] == "cancelled" then
      req:finish()
      return "cancelled"
    end
  end
  if o.stream then
    local reason = results[1][2]
    self:chunk(job, J.odict(), reason)
    req:send("data: [DONE]\n\n")
    req:finish()
    return reason
  end
  local choices, ptok, ctok = {}, 0, 0
  local last_reason
  for i, r in ipairs(results) do
    local text, reason, usage = r[1], r[2], r[3]
    ptok, ctok = usage.prompt_tokens, ctok + usage.completion_tokens
    local msg
    local calls = o.tools and self.tpl:extract_tool(text)
    if type(calls) == "table" and #calls > 0 then
      local tc = {}
      for k, c in ipairs(calls) do
        tc[k] = J.odict("id", "call_" .. hex(24), "type", "function",
          "function", J.odict("name", c.name, "arguments", c.arguments))
      end
      msg = J.odict("role", "assistant", "content", J.null, "tool_calls", tc)
      reason = "tool_calls"
    else
      msg = J.odict("role", "assistant", "content", text)
    end
    choices[i] = J.odict("index", i - 1, "message", msg, "finish_reason", reason)
    last_reason = reason
  end
  respond_json(req, 200, encode(J.odict("id", job.id, "object", "chat.completion", "created", job.created,
    "model", self.name, "choices", choices, "usage", J.odict("prompt_tokens", ptok, "completion_tokens", ctok,
    "total_tokens", ptok + ctok))))
  return last_reason
end

local DEFER = {} -- a guarded call whose request is answered later (by the batch)

-- runs fn() for a request: client errors become OpenAI error JSON, others 500;
-- logs the outcome unless fn returns DEFER
function Server:guarded(req, info, t0, fn)
  local path = info.path:gsub("%?.*$", "")
  local ok, res = pcall(fn)
  if ok and res == DEFER then return end
  if not ok then
    local e = res
    if type(e) ~= "table" then
      if tostring(e):find("interrupted", 1, true) then
        pcall(function() req:finish() end)
        error(e, 0)
      end
      e = {status = 500, message = "internal error: " .. tostring(e)}
    end
    -- a stream already started cannot change its status: it just ends
    local sent = pcall(respond_json, req, e.status, error_body(e.status, e.message, e.param, e.code))
    if not sent then pcall(function() req:finish() end) end
    res = "error " .. e.status .. (e.status >= 500 and (": " .. e.message) or "")
  end
  self.log(fmt("%s %s -> %s (%.2f s)", info.method, path, tostring(res), lfl.sys.clock() - t0))
end

-- A chat completion joins the decode batch: the prompt is templated and
-- tokenized first, refused when it leaves no room in the context (before any
-- prefill), and each choice's max_tokens is cut to the room left.
function Server:admit_chat(req, o, info, t0)
  -- the template's tool formatter refuses tools it cannot format ("tools:
  -- missing key 'properties'", as LlamaFactory's would): the client's error
  local okp, ids = pcall(gen.prompt_ids, self.tok, self.tpl, o.messages, o.system, o.tools)
  if not okp then
    if type(ids) == "string" and ids:find("^tools: ") then reject(400, ids, "tools") end
    error(ids, 0)
  end
  local room = self.ctx - #ids
  if room < 1 then
    reject(400, fmt("This model's maximum context length is %d tokens. However, your messages resulted in %d "
      .. "tokens. Please reduce the length of the messages.", self.ctx, #ids), "messages", "context_length_exceeded")
  end
  if req:gone() then
    req:finish()
    return "cancelled"
  end
  local job = new_job(req, o)
  job.info, job.t0, job.rows, job.results, job.left = info, t0, {}, {}, o.n
  if not self:start_job(job) then
    req:finish()
    return "cancelled"
  end
  for i = 1, o.n do
    local g = self:job_opts(job, i)
    g.max_new_tokens = math.min(g.max_new_tokens, room)
    local rj = gen.reply_job(self.tok, self.tpl, o.messages, g, ids)
    local st = self.batch:add(rj.ids, rj.g)
    st.job, st.choice, st.finish = job, i, rj.finish
    job.rows[i] = st
  end
  self.jobs[job] = true
  return DEFER
end

-- the scores of token-id sequences (the value head at each one's last token),
-- packed a context's worth of tokens to a forward
function Server:score_seqs(seqs)
  return require("lfl.train.value_head").score_ids(self.model, self.value_head, seqs, {max_tokens = self.ctx})
end

-- POST /v1/score/evaluation (LlamaFactory's create_score_evaluation_response):
-- every text tokenized without special tokens, truncated on the right to
-- max_length (default and at most the context, as its tokenizer call cuts at
-- max_position_embeddings), scored in one pass
function Server:score(req, body)
  if not self.value_head then
    reject(405, "Not allowed: the served model has no value head (/v1/score/evaluation needs a reward model: "
      .. "serve with stage=rm and the adapter folder holding the rm stage's value_head.safetensors)",
      nil, "not_supported")
  end
  local o = M.parse_score_request(body)
  local limit = math.min(o.max_length or self.ctx, self.ctx)
  local seqs = {}
  for i, text in ipairs(o.texts) do
    local ids = self.tok:encode(text, {add_special_tokens = false})
    if #ids == 0 then reject(400, fmt("messages[%d] has no tokens to score", i - 1), "messages") end
    if #ids > limit then
      local cut = {}
      for k = 1, limit do cut[k] = ids[k] end
      ids = cut
    end
    seqs[i] = ids
  end
  local scores = self:score_seqs(seqs)
  local out = {}
  for i, v in ipairs(scores) do
    -- JSON has no NaN: a diverged reward model is the server's fault (500), not the client's
    if v ~= v or v == math.huge or v == -math.huge then
      error(fmt("the reward model gave a non-finite score (%s) for messages[%d]", tostring(v), i - 1), 0)
    end
    out[i] = J.float(v)
  end
  respond_json(req, 200, encode(J.odict("id", "scoreval-" .. hex(32), "object", "score.evaluation",
    "model", o.model, "scores", J.list(out))))
  return "ok"
end

-- routes one request: answers it, or (chat completions) admits it to the batch
function Server:route(req, info, t0)
  local path = info.path:gsub("%?.*$", "")
  if self.api_key and info.authorization ~= "Bearer " .. self.api_key then
    reject(401, "Invalid API key.", nil, "invalid_api_key")
  end
  if path == "/v1/models" then
    if info.method ~= "GET" then reject(405, "use GET for /v1/models") end
    self:models(req)
    return "ok"
  elseif path == "/v1/chat/completions" then
    if info.method ~= "POST" then reject(405, "use POST for /v1/chat/completions") end
    if self.value_head then
      reject(405, "Not allowed: the served model is a reward model (stage rm); it answers /v1/score/evaluation",
        nil, "not_supported")
    end
    return self:admit_chat(req, M.parse_request(info.body, self.max_new), info, t0)
  elseif path == "/v1/score/evaluation" then
    if info.method ~= "POST" then reject(405, "use POST for /v1/score/evaluation") end
    return self:score(req, info.body)
  end
  reject(404, fmt("no route %s %s", info.method, path), nil, "not_found")
end

-- takes one request off the queue
function Server:admit(req)
  local info = req:info()
  local t0 = lfl.sys.clock()
  self:guarded(req, info, t0, function() return self:route(req, info, t0) end)
end

local function cancel_job(self, job)
  if job.cancelled then return end
  job.cancelled = true
  for _, st in ipairs(job.rows) do self.batch:cancel(st) end
end

-- One step of the batch: rows of clients that left are cancelled, then a
-- prefill unit and a decode step; finished jobs are answered.
function Server:tick()
  for job in pairs(self.jobs) do
    if job.req:gone() then cancel_job(self, job) end
  end
  local ok, ended = pcall(self.batch.step, self.batch)
  if not ok then
    local jobs = self.jobs
    self.jobs = {}
    self.batch = gen.batcher(self.model, {prefill_chunk = self.prefill_chunk})
    for job in pairs(jobs) do
      if tostring(ended):find("interrupted", 1, true) then pcall(function() job.req:finish() end)
      else self:guarded(job.req, job.info, job.t0, function() error(ended, 0) end) end
    end
    if tostring(ended):find("interrupted", 1, true) then error(ended, 0) end
    return
  end
  for _, st in ipairs(ended) do
    local job = st.job
    job.results[st.choice] = {st.finish(st.out, st.reason)}
    job.left = job.left - 1
    if st.reason == "cancelled" then cancel_job(self, job) end
    if job.left == 0 then
      self.jobs[job] = nil
      self:guarded(job.req, job.info, job.t0, function() return self:finish_job(job, job.results) end)
    end
  end
end

-- answers requests given by hand (tests): all admitted, then decoded together
function Server:handle_batch(reqs)
  for _, req in ipairs(reqs) do self:admit(req) end
  while self.batch:size() > 0 do self:tick() end
end

function Server:handle(req) self:handle_batch({req}) end

-- Serves until stop() or `until_fn()` returns true (checked every step).
-- Requests are taken whenever the batch has room: a chat completion joins the
-- running decode at the next step, so none waits for another to finish.
function Server:run(until_fn)
  self.running = true
  while self.running do
    local timeout = self.batch:size() == 0 and 0.2 or 0
    while self.batch:size() < self.max_batch do
      local req = self.http:next(timeout)
      if not req then break end
      timeout = 0
      self:admit(req)
    end
    if self.batch:size() > 0 then self:tick() end
    if until_fn and until_fn() then break end
  end
end

function Server:stop()
  self.running = false
  if self.http then self.http:stop() end
end

return M
