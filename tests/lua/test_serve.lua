-- The OpenAI API layer (stdlib/lfl/infer/serve.lua) without sockets: request
-- validation and message conversion as LlamaFactory's api/chat.py, tool calls
-- extracted with the template's tool format, and the response shapes, with a
-- stand-in request object and a canned model reply. Reliability: the context
-- check before any prefill, max_tokens cut to the room left, a non-streaming
-- client that leaves cancels its rows, and a request arriving while a long one
-- decodes joins it and is answered first (the run loop over a stand-in queue).
-- tests/sh/test_serve.sh covers the HTTP side.
local t = lfl.test
local serve = require("lfl.infer.serve")
local gen = require("lfl.infer.generate")
local golden = lfl.home .. "/tests/golden/"

local function rejects(body, status, frag)
  local ok, e = pcall(serve.parse_request, body, 16)
  t.assert(not ok, "accepted: " .. body)
  t.assert(type(e) == "table", "error is not an OpenAI error: " .. tostring(e))
  t.assert_eq(e.status, status)
  if frag then t.assert(e.message:find(frag, 1, true), e.message) end
end

-- a request stand-in recording what the server answers
local function fake(method, path, body)
  local r = {sent = {}, left = false}
  function r:info() return {method = method, path = path, body = body or ""} end
  function r:respond(status, ct, b) self.status, self.ct, self.body = status, ct, b end
  function r:start(status, ct) self.status, self.ct = status, ct end
  function r:send(s) self.sent[#self.sent + 1] = s; return true end
  function r:finish() self.finished = true end
  function r:gone() return self.left end
  return r
end

local function tiny_server(opts)
  local o = {model = lfl.model.load(golden .. "models/llama"), tokenizer = lfl.tokenizer.load(
    golden .. "serve/tokenizer.json"), template = lfl.template.get("chatml"), model_name = "m", port = false,
    max_new_tokens = 16}
  for k, v in pairs(opts or {}) do o[k] = v end
  local logs = {}
  o.log = function(line) logs[#logs + 1] = line end
  return serve.new(o), logs
end

local function chat(content, extra)
  return '{"messages":[{"role":"user","content":"' .. content .. '"}],"temperature":0' .. (extra or "") .. '}'
end

t.suite("serve", {
  validation = function()
    rejects("{x", 400, "invalid JSON")
    rejects("[]", 400, "JSON object")
    rejects('{"messages":[{"role":"user","content":"a"}],"bogus":1}', 400, "unknown field 'bogus'")
    rejects('{"messages":[]}', 400, "non-empty")
    rejects('{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}', 400, "u/a/u/a/u")
    rejects('{"messages":[{"role":"assistant","content":"b"}]}', 400, "u/a/u/a/u")
    rejects('{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]}', 400, "first message")
    rejects('{"messages":[{"role":"user","content":5}]}', 400, "content")
    rejects('{"messages":[{"role":"user","content":"a"}],"temperature":-1}', 400, "temperature")
    rejects('{"messages":[{"role":"user","content":"a"}],"top_p":0}', 400, "top_p")
    rejects('{"messages":[{"role":"user","content":"a"}],"n":1.5}', 400, "integer")
    rejects('{"messages":[{"role":"user","content":"a"}],"stop":[1]}', 400, "stop")
    rejects('{"messages":[{"role":"user","content":"a"}],"stream":"yes"}', 400, "stream")
    rejects('{"messages":[{"role":"user","content":"a"}],"stream":true,"tools":[{"type":"function","function":{"name":"f"}}]}',
      400, "Cannot stream function calls")
    rejects('{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"x"}]}', 400, "tools[0]")
  end,
  conversion = function()
    local o = serve.parse_request([[{"messages":[{"role":"system","content":"S"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\": 1}"}}]},
      {"role":"tool","content":"42"}], "max_tokens":7, "temperature":0, "stop":"END", "presence_penalty":0.5}]], 16)
    t.assert_eq(o.system, "S")
    t.assert_eq(#o.messages, 3)
    t.assert_eq(o.messages[1].content, "ab")
    t.assert_eq(o.messages[2].role, "function")
    t.assert_eq(o.messages[2].content, '[{"name":"f","arguments":"{\\"x\\": 1}"}]')
    t.assert_eq(o.messages[3].role, "observation")
    t.assert_eq(o.max_new_tokens, 7)
    t.assert_eq(o.do_sample, false)
    t.assert_eq(o.stop[1], "END")
    t.assert_eq(o.repetition_penalty, 1.5)
    local d = serve.parse_request('{"messages":[{"role":"user","content":"a"}]}', 16)
    t.assert_eq(d.max_new_tokens, 16)
    t.assert_eq(d.n, 1)
  end,
  tool_calls_and_shapes = function()
    local s = serve.new{model = lfl.model.load(golden .. "models/llama"), tokenizer = lfl.tokenizer.load(
      golden .. "serve/tokenizer.json"), template = lfl.template.get("chatml"), model_name = "m", port = false,
      max_new_tokens = 16}
    -- the tool prompt (363 tokens of the byte-level test tokenizer) is longer
    -- than the tiny model's 64 positions; its RoPE has no limit of its own
    s.ctx = 1024
    -- the tiny model's reply text is replaced by a canned one (its tokens still decode)
    local real = gen.reply_job
    local seen
    gen.reply_job = function(tok, tpl, msgs, o, ids)
      seen = o
      local j = real(tok, tpl, msgs, o, ids)
      j.finish = function()
        return 'Action: get_weather\nAction Input: {"city": "Paris"}', "stop", {prompt_tokens = 5, completion_tokens = 9}
      end
      return j
    end
    local req = fake("POST", "/v1/chat/completions", [[{"messages":[{"role":"user","content":"weather?"}],
      "tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}]])
    local ok, err = pcall(s.handle, s, req)
    gen.reply_job = real
    t.assert(ok, tostring(err))
    t.assert_eq(req.status, 200, req.body)
    t.assert(seen.tools:find('"name":"get_weather"', 1, true), seen.tools)
    local r = lfl.json.decode(req.body)
    t.assert_eq(r.object, "chat.completion")
    t.assert_eq(r.choices[1].finish_reason, "tool_calls")
    local tc = r.choices[1].message.tool_calls[1]
    t.assert_eq(tc.type, "function")
    t.assert_eq(tc["function"].name, "get_weather")
    t.assert_eq(lfl.json.decode(tc["function"].arguments).city, "Paris")
    t.assert(tc.id:match("^call_%x+$"), tc.id)
    t.assert_eq(r.usage.total_tokens, 14)
    -- a tool the template cannot format (the default template's ReAct prompt
    -- lists parameters.properties, as LlamaFactory's does) is the client's
    -- error: 400 naming it, not a 500
    local noprops = fake("POST", "/v1/chat/completions", [[{"messages":[{"role":"user","content":"weather?"}],
      "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}]])
    s:handle(noprops)
    t.assert_eq(noprops.status, 400, noprops.body)
    local ne = lfl.json.decode(noprops.body).error
    t.assert(ne.message:find("missing key 'properties'", 1, true), ne.message)
    t.assert_eq(ne.param, "tools")
    -- errors come back in OpenAI's shape
    local bad = fake("POST", "/v1/chat/completions", "{")
    s:handle(bad)
    t.assert_eq(bad.status, 400)
    t.assert_eq(lfl.json.decode(bad.body).error.type, "invalid_request_error")
    local auth = fake("GET", "/v1/models")
    s.api_key = "k"
    s:handle(auth)
    t.assert_eq(auth.status, 401)
  end,
})

t.suite("serve_reliability", {
  context_length = function()
    local m = lfl.model.load(golden .. "models/llama")
    t.assert_eq(serve.context_length(m), 64)
    t.assert_eq(serve.context_length(m, 32), 32)
    t.assert_error(function() serve.context_length(m, 65) end, "larger than the model's context (64")
    t.assert_error(function() serve.context_length(m, 1) end, "max_model_len must be a whole number >= 2")
    t.assert_error(function() serve.context_length({config = {}}) end, "--max-model-len")
    t.assert_eq(serve.context_length({config = {}}, 100), 100)
    t.assert_error(function() tiny_server({max_batch = 0}) end, "max_batch must be a whole number >= 1")
    t.assert_error(function() tiny_server({prefill_chunk = 1.5}) end, "prefill_chunk must be a whole number >= 1")
  end,
  prompt_over_the_context_is_refused_before_prefill = function()
    local s, logs = tiny_server()
    local decoder = require("lfl.model.decoder")
    local forward, calls = decoder.forward, 0
    decoder.forward = function(...) calls = calls + 1; return forward(...) end
    local long = fake("POST", "/v1/chat/completions", chat(string.rep("word ", 2000)))
    -- exactly full: 64 prompt tokens leave no room for one more
    local probe = gen.prompt_ids(s.tok, s.tpl, {{role = "user", content = "x"}})
    local full = fake("POST", "/v1/chat/completions", chat(string.rep("x", 64 - #probe + 1)))
    local ok, err = pcall(function() s:handle(long); s:handle(full) end)
    decoder.forward = forward
    t.assert(ok, tostring(err))
    t.assert_eq(calls, 0)
    for _, r in ipairs({long, full}) do
      t.assert_eq(r.status, 400)
      local e = lfl.json.decode(r.body).error
      t.assert_eq(e.code, "context_length_exceeded")
      t.assert_eq(e.type, "invalid_request_error")
      t.assert_eq(e.param, "messages")
      t.assert(e.message:find("maximum context length is 64 tokens", 1, true), e.message)
    end
    t.assert(lfl.json.decode(full.body).error.message:find("resulted in 64 tokens", 1, true), full.body)
    t.assert(logs[1]:find("error 400", 1, true), logs[1])
  end,
  max_tokens_cut_to_the_room_left = function()
    local s = tiny_server()
    local probe = gen.prompt_ids(s.tok, s.tpl, {{role = "user", content = "Hello there"}})
    local big = fake("POST", "/v1/chat/completions", chat("Hello there", ',"max_tokens":100000000'))
    local two = fake("POST", "/v1/chat/completions", chat("Hello there", ',"max_completion_tokens":100000000,"n":2,"seed":3'))
    s:handle_batch({big, two})
    local r = lfl.json.decode(big.body)
    t.assert_eq(big.status, 200, big.body)
    t.assert_eq(r.usage.prompt_tokens, #probe)
    -- greedy may stop early on EOS; it never goes past the context
    t.assert(r.usage.completion_tokens <= 64 - #probe, big.body)
    if r.choices[1].finish_reason == "length" then t.assert_eq(r.usage.completion_tokens, 64 - #probe) end
    local r2 = lfl.json.decode(two.body)
    t.assert_eq(#r2.choices, 2)
    t.assert(r2.usage.completion_tokens <= 2 * (64 - #probe), two.body)
  end,
  a_client_that_leaves_cancels_its_rows = function()
    local s, logs = tiny_server()
    s.ctx = 4096 -- a long reply (RoPE has no limit of its own): it must be cut by the disconnect
    local req = fake("POST", "/v1/chat/completions", chat("Hello there", ',"max_tokens":100000000,"n":2,"seed":1'))
    s:admit(req)
    local steps = 0
    while s.batch:size() > 0 do
      steps = steps + 1
      if steps == 4 then req.left = true end
      s:tick()
      t.assert(steps < 50, "the rows were not cancelled")
    end
    t.assert_eq(req.status, nil) -- never answered
    t.assert(req.finished, "request released")
    t.assert(next(s.jobs) == nil, "job dropped")
    t.assert(logs[1]:find("-> cancelled", 1, true), logs[1])
  end,
  a_newcomer_joins_the_running_decode = function()
    local s, logs = tiny_server()
    s.ctx = 4096
    -- a stand-in for lfl.http: A (long, not streamed) at once, B (short) and C after 5 steps
    local A = fake("POST", "/v1/chat/completions", chat("Hello there", ',"max_tokens":100000000'))
    local B = fake("POST", "/v1/chat/completions", chat("Hi", ',"max_tokens":3'))
    local C = fake("GET", "/v1/models")
    local queue, steps, b_done_at = {A}, 0, nil
    s.http = {next = function() return table.remove(queue, 1) end}
    local tick = s.tick
    s.tick = function(self)
      steps = steps + 1
      if steps == 5 then queue[#queue + 1] = B; queue[#queue + 1] = C end
      tick(self)
      if B.status and not b_done_at then b_done_at = steps; A.left = true end -- then A's client leaves
    end
    local ok, err = pcall(s.run, s, function() return steps > 300 or (A.left and s.batch:size() == 0) end)
    t.assert(ok, tostring(err))
    t.assert_eq(B.status, 200, B.body)
    t.assert(lfl.json.decode(B.body).usage.completion_tokens <= 3, B.body)
    t.assert_eq(C.status, 200)
    -- B: admitted at step 6, prefilled, 3 tokens; A kept decoding meanwhile
    t.assert(b_done_at and b_done_at <= 10, "B waited behind A: done at step " .. tostring(b_done_at))
    t.assert_eq(A.status, nil)
    t.assert(steps < 300 and steps <= b_done_at + 2, "A was not cancelled: " .. steps .. " steps")
    t.assert(logs[#logs]:find("-> cancelled", 1, true), table.concat(logs, "\n"))
  end,
})

-- LlamaFactory's /v1/score/evaluation on a tiny model with a value head
-- (lfl.train.value_head.new): validation as its ScoreEvaluationRequest, the
-- response shape, each text scored as the head scores its ids alone, the
-- refusals. tests/lua/test_rm_score_smollm2.lua compares with the rm stage.
local vh = require("lfl.train.value_head")

local function score_rejects(body, status, frag)
  local ok, e = pcall(serve.parse_score_request, body)
  t.assert(not ok, "accepted: " .. body)
  t.assert(type(e) == "table", "error is not an OpenAI error: " .. tostring(e))
  t.assert_eq(e.status, status, body)
  if frag then t.assert(e.message:find(frag, 1, true), e.message) end
end

t.suite("serve_score", {
  validation = function()
    score_rejects("{x", 400, "invalid JSON")
    score_rejects("[]", 400, "JSON object")
    score_rejects('{"model":"m","messages":["a"],"bogus":1}', 400, "unknown field 'bogus'")
    score_rejects('{"messages":["a"]}', 400, "'model' must be a string")
    score_rejects('{"model":1,"messages":["a"]}', 400, "'model' must be a string")
    score_rejects('{"model":"m"}', 400, "list of strings")
    score_rejects('{"model":"m","messages":{}}', 400, "list of strings")
    score_rejects('{"model":"m","messages":"a"}', 400, "list of strings")
    score_rejects('{"model":"m","messages":[]}', 400, "Invalid request")
    score_rejects('{"model":"m","messages":["a",{"role":"user"}]}', 400, "messages[1] must be a string")
    score_rejects('{"model":"m","messages":["a"],"max_length":0}', 400, "max_length")
    score_rejects('{"model":"m","messages":["a"],"max_length":2.5}', 400, "max_length")
    score_rejects('{"model":"m","messages":["a"],"max_length":"8"}', 400, "max_length")
    score_rejects('{"model":"m","messages":["a"],"max_length":Infinity}', 400, "max_length")
    score_rejects('{"model":"m","messages":["\\u0000a"]} x', 400, "invalid JSON")
    local o = serve.parse_score_request('{"model":"m","messages":["a","b c"],"max_length":4.0}')
    t.assert_eq(o.model, "m")
    t.assert_eq(#o.texts, 2)
    t.assert_eq(o.texts[2], "b c")
    t.assert_eq(o.max_length, 4)
    t.assert_eq(serve.parse_score_request('{"model":"m","messages":["a"],"max_length":null}').max_length, nil)
  end,
  scores = function()
    lfl.manual_seed(1)
    local s = tiny_server()
    s.value_head = vh.new(s.model.arch.hidden)
    local texts = {"hello world", "a b", "the longest of the three texts here"}
    local req = fake("POST", "/v1/score/evaluation", '{"model":"rm-1","messages":["' .. table.concat(texts, '","')
      .. '"]}')
    s:handle(req)
    t.assert_eq(req.status, 200, req.body)
    t.assert_eq(req.ct, "application/json")
    t.assert(req.body:match('^{"id":"scoreval%-%x+","object":"score.evaluation","model":"rm%-1","scores":%['),
      req.body)
    local d = lfl.json.decode(req.body)
    t.assert_eq(#d.scores, 3)
    for i, text in ipairs(texts) do
      local ids = s.tok:encode(text, {add_special_tokens = false})
      local alone = vh.score_ids(s.model, s.value_head, {ids})[1]
      t.assert_close(d.scores[i], alone, 1e-5, text)
    end
    -- packed a few tokens to a forward: the same scores
    local few = vh.score_ids(s.model, s.value_head, {(s.tok:encode(texts[1], {add_special_tokens = false})),
      (s.tok:encode(texts[2], {add_special_tokens = false}))}, {max_tokens = 1})
    t.assert_close(few[1], d.scores[1], 1e-5)
    t.assert_close(few[2], d.scores[2], 1e-5)
    -- max_length keeps the first tokens
    local ids = s.tok:encode(texts[3], {add_special_tokens = false})
    t.assert(#ids > 2, "the third text has more than 2 tokens")
    local req2 = fake("POST", "/v1/score/evaluation", '{"model":"m","messages":["' .. texts[3] .. '"],"max_length":2}')
    s:handle(req2)
    t.assert_eq(req2.status, 200, req2.body)
    t.assert_close(lfl.json.decode(req2.body).scores[1], vh.score_ids(s.model, s.value_head, {{ids[1], ids[2]}})[1],
      1e-5)
    -- a text with no tokens has no last token to score
    local req3 = fake("POST", "/v1/score/evaluation", '{"model":"m","messages":["a",""]}')
    s:handle(req3)
    t.assert_eq(req3.status, 400, req3.body)
    t.assert(req3.body:find("messages[1] has no tokens", 1, true), req3.body)
    -- as LlamaFactory, a reward model does not chat, a chat model does not score
    local req4 = fake("POST", "/v1/chat/completions", chat("hi"))
    s:handle(req4)
    t.assert_eq(req4.status, 405, req4.body)
    local plain = tiny_server()
    local req5 = fake("POST", "/v1/score/evaluation", '{"model":"m","messages":["a"]}')
    plain:handle(req5)
    t.assert_eq(req5.status, 405, req5.body)
    t.assert(req5.body:find("no value head", 1, true), req5.body)
    local req6 = fake("GET", "/v1/score/evaluation")
    s:handle(req6)
    t.assert_eq(req6.status, 405, req6.body)
    -- a diverged head (NaN) is the server's failure: 500, never NaN in a 200 body
    s.value_head = {weight = lfl.zeros(1, s.model.arch.hidden), bias = lfl.tensor({0 / 0})}
    local req7 = fake("POST", "/v1/score/evaluation", '{"model":"m","messages":["a"]}')
    s:handle(req7)
    t.assert_eq(req7.status, 500, req7.body)
    t.assert(req7.body:find("non-finite score", 1, true), req7.body)
  end,
})

t.run()
