-- An OpenAI-compatible API (as llamafactory-cli api): GET /v1/models, POST
-- /v1/chat/completions (plain or streamed as server-sent events ending with
-- "data: [DONE]", tools -> tool_calls through the template's tool extractor),
-- OpenAI's error shape with 4xx/5xx statuses, an optional API key (Bearer).
-- The HTTP side is lfl.http (C, libmicrohttpd): requests are queued by its
-- threads and answered here on the Lua main loop. Chat completions waiting in
-- the queue at the same time (up to max_batch, n = 1 each) are decoded as one
-- batch (lfl.generate.reply_batch): each streams on its own, and a client that
-- leaves cancels only its row. A full queue answers 503.
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

-- ---------------------------------------------------------------- the server

local Server = {}
Server.__index = Server
M._Server = Server -- for tests

-- opts: model, tokenizer, template, host ("127.0.0.1"), port (8000), api_key,
-- model_name ("gpt-3.5-turbo" as LlamaFactory), max_queue (16), max_body (1 MiB),
-- max_new_tokens (default reply limit, 1024), max_batch (requests decoded
-- together, 8; 1 answers one at a time), log (function(line))
function M.new(opts)
  local s = setmetatable({}, Server)
  s.model = opts.model
  s.tok = opts.tokenizer
  s.tpl = opts.template
  s.api_key = opts.api_key
  s.name = opts.model_name or "gpt-3.5-turbo"
  s.max_new = opts.max_new_tokens or gen.DEFAULTS.max_new_tokens
  s.max_batch = opts.max_batch or 8
  s.log = opts.log or function() end
  s.http = lfl.http.server{host = opts.host or "127.0.0.1", port = opts.port or 8000,
    max_queue = opts.max_queue or 16, max_body = opts.max_body or 1048576}
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
  for _, r in ipairs(results) do if r[2] == "cancelled" then return "cancelled" end end
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

function Server:completions(req, body)
  local o = M.parse_request(body, self.max_new)
  local job = new_job(req, o)
  if not self:start_job(job) then return "cancelled" end
  local results = {}
  for i = 1, o.n do
    results[i] = {gen.reply(self.model, self.tok, self.tpl, o.messages, self:job_opts(job, i))}
    if results[i][2] == "cancelled" then return "cancelled" end
  end
  return self:finish_job(job, results)
end

local DEFER = {} -- a guarded call whose request is answered later (in a batch)

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

-- routes one request; batch (a list) collects chat completions to decode together
function Server:route(req, info, batch)
  local path = info.path:gsub("%?.*$", "")
  if info.method == "OPTIONS" then
    req:respond(204, "text/plain", "")
    return "options"
  end
  if self.api_key and info.authorization ~= "Bearer " .. self.api_key then
    reject(401, "Invalid API key.", nil, "invalid_api_key")
  end
  if path == "/v1/models" then
    if info.method ~= "GET" then reject(405, "use GET for /v1/models") end
    self:models(req)
    return "ok"
  elseif path == "/v1/chat/completions" then
    if info.method ~= "POST" then reject(405, "use POST for /v1/chat/completions") end
    if batch then
      local o = M.parse_request(info.body, self.max_new)
      if o.n == 1 then
        local job = new_job(req, o)
        if not self:start_job(job) then return "cancelled" end
        batch[#batch + 1] = job
        return DEFER
      end
    end
    return self:completions(req, info.body)
  end
  reject(404, fmt("no route %s %s", info.method, path), nil, "not_found")
end

-- answers one request (errors become OpenAI error JSON)
function Server:handle(req)
  local info = req:info()
  self:guarded(req, info, lfl.sys.clock(), function() return self:route(req, info) end)
end

-- answers requests that arrived together: their chat completions (n = 1) are
-- decoded as one batch, the rest one by one
function Server:handle_batch(reqs)
  local jobs = {}
  for _, req in ipairs(reqs) do
    local info = req:info()
    local t0 = lfl.sys.clock()
    local n = #jobs
    self:guarded(req, info, t0, function() return self:route(req, info, jobs) end)
    if #jobs > n then jobs[#jobs].info, jobs[#jobs].t0 = info, t0 end
  end
  if #jobs == 0 then return end
  local list = {}
  for i, job in ipairs(jobs) do list[i] = {messages = job.o.messages, opts = self:job_opts(job, 1)} end
  local ok, res = pcall(gen.reply_batch, self.model, self.tok, self.tpl, list)
  if not ok and tostring(res):find("interrupted", 1, true) then
    for _, job in ipairs(jobs) do pcall(function() job.req:finish() end) end
    error(res, 0)
  end
  for i, job in ipairs(jobs) do
    self:guarded(job.req, job.info, job.t0, function()
      if not ok then error(res, 0) end
      return self:finish_job(job, {res[i]})
    end)
  end
end

-- serves until stop() or `until_fn()` returns true (checked every poll)
function Server:run(until_fn)
  self.running = true
  while self.running do
    local req = self.http:next(0.2)
    if req then
      -- whatever else is waiting joins this batch
      local reqs = {req}
      while #reqs < self.max_batch do
        local r = self.http:next(0)
        if not r then break end
        reqs[#reqs + 1] = r
      end
      if #reqs == 1 then self:handle(req) else self:handle_batch(reqs) end
    end
    if until_fn and until_fn() then break end
  end
end

function Server:stop()
  self.running = false
  if self.http then self.http:stop() end
end

return M
