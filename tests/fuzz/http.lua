-- Harness of fuzz_http: one HTTP request through lfl serve's handling
-- (stdlib/lfl/infer/serve.lua: routing, API key, request validation, the
-- OpenAI answers) with a mock request object in place of lfl.http's, and
-- generation stubbed out (a fixed reply). The input is "METHOD PATH AUTH"
-- on its first line, then the body. Half the inputs go to a reward-model
-- server (a stub value head: /v1/score/evaluation's validation, tokenizing
-- and answer; the scores are stubbed). Every request must be answered with
-- OpenAI's error JSON and a 4xx status or with a 2xx answer: a 500 (an
-- error the validation let through) is a bug, as is an answer that is not JSON.
local F = require("fuzzlib")
local serve = require("lfl.infer.serve")
local J = require("lfl.text.pyjson")

local Server = serve._Server

local function new_server(api_key, reward)
  local s = setmetatable({name = "fuzz-model", max_new = 16, max_batch = 8, api_key = api_key, created = 0,
    log = function() end}, Server)
  s.tpl = {extract_tool = function(_, text)
    return text:find("call", 1, true) and {{name = "f", arguments = "{}"}} or text
  end,
  -- the prompt is tokenized before admission (its length is checked against
  -- the context): three ids per message stand in for the template
  encode_ids = function(_, _, msgs)
    local prs = {}
    for i = 1, #msgs do prs[i] = {{1, 2, 3}, {4}} end
    return prs
  end}
  s.ctx = 1024
  if reward then
    -- a reward model: texts tokenize to their bytes, each scores its length
    s.value_head = {}
    s.tok = {encode = function(_, text)
      local ids = {}
      for i = 1, #text do ids[i] = text:byte(i) end
      return ids
    end}
    s.score_seqs = function(_, seqs)
      local out = {}
      for i, ids in ipairs(seqs) do
        if #ids == 0 or #ids > s.ctx then error("BUG: scored a sequence of " .. #ids .. " tokens", 0) end
        out[i] = #ids / 7
      end
      return out
    end
  end
  -- admitted requests join a stub decode batch and stay unanswered (validation passed)
  s.batch = {add = function() return {} end}
  s.jobs = {}
  -- generation is stubbed: the parsed options are what is under test
  s.completions = function(self, req, body)
    local o = serve.parse_request(body, self.max_new)
    local job = {req = req, o = o, id = "chatcmpl-fuzz", created = 0}
    if not self:start_job(job) then return "cancelled" end
    local results = {}
    for i = 1, o.n do results[i] = {"a reply that may call a tool", "stop", {prompt_tokens = 3, completion_tokens = 5}} end
    return self:finish_job(job, results)
  end
  return s
end

local function mock_request()
  local r = {sent = {}}
  function r.respond(self, status, ctype, body)
    if self.status then error("BUG: a request answered twice", 0) end
    self.status, self.ctype, self.body = status, ctype, body
  end
  function r.start(self, status, ctype) self.status, self.ctype, self.streaming = status, ctype, true end
  function r.send(self, s) self.sent[#self.sent + 1] = s; return true end
  function r.finish(self) self.finished = true end
  function r.gone() return false end
  return r
end

local function check_answer(req, input)
  if not req.status then return end
  if req.status >= 500 then
    error("BUG: status " .. req.status .. ": " .. tostring(req.body) .. "\ninput: " .. string.format("%q", input), 0)
  end
  if req.streaming then
    for _, ev in ipairs(req.sent) do
      local payload = ev:match("^data: (.*)\n\n$")
      if not payload then error("BUG: a server-sent event without 'data: ' framing: " .. ev, 0) end
      if payload ~= "[DONE]" then
        local ok, e = pcall(lfl.json.decode, payload, "event")
        if not ok then error("BUG: a streamed event is not JSON: " .. tostring(e), 0) end
      end
    end
  elseif req.ctype == "application/json" then
    local ok, e = pcall(J.decode, req.body)
    if not ok then error("BUG: an answer that is not JSON: " .. tostring(e) .. "\n" .. req.body, 0) end
  end
end

return function(input)
  local head, body = input:match("^([^\n]*)\n(.*)$")
  if not head then head, body = "POST /v1/chat/completions", input end
  local method, path, auth = head:match("^(%S*) ?(%S*) ?(.*)$")
  if path == "" then path = "/v1/chat/completions" end
  local info = {method = method ~= "" and method or "POST", path = path, body = body,
    authorization = auth ~= "" and auth or nil}
  local srv = new_server(#input % 3 == 0 and "key" or nil, #input % 2 == 0)
  -- one at a time, and as part of a batch (chat completions with n = 1 wait for the batch)
  local req = mock_request()
  F.guard("serve.handle", Server.guarded, srv, req, info, 0, function() return srv:route(req, info) end)
  check_answer(req, input)
  local breq, jobs = mock_request(), {}
  F.guard("serve.route (batch)", Server.guarded, srv, breq, info, 0, function() return srv:route(breq, info, jobs) end)
  for _, job in ipairs(jobs) do
    F.guard("serve.finish_job", Server.guarded, srv, job.req, info, 0, function()
      return srv:finish_job(job, {{"a reply that may call a tool", "stop", {prompt_tokens = 3, completion_tokens = 5}}})
    end)
  end
  check_answer(breq, input)
  collectgarbage("step", 200)
end
