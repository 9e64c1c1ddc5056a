-- The OpenAI API layer (stdlib/lfl/infer/serve.lua) without sockets: request
-- validation and message conversion as LlamaFactory's api/chat.py, tool calls
-- extracted with the template's tool format, and the response shapes, with a
-- stand-in request object and a canned model reply. tests/sh/test_serve.sh
-- covers the HTTP side.
local t = lfl.test
local serve = require("lfl.infer.serve")
local gen = require("lfl.infer.generate")

local function rejects(body, status, frag)
  local ok, e = pcall(serve.parse_request, body, 16)
  t.assert(not ok, "accepted: " .. body)
  t.assert(type(e) == "table", "error is not an OpenAI error: " .. tostring(e))
  t.assert_eq(e.status, status)
  if frag then t.assert(e.message:find(frag, 1, true), e.message) end
end

-- a request stand-in recording what the server answers
local function fake(method, path, body)
  local r = {sent = {}}
  function r:info() return {method = method, path = path, body = body or ""} end
  function r:respond(status, ct, b) self.status, self.ct, self.body = status, ct, b end
  function r:start(status, ct) self.status, self.ct = status, ct end
  function r:send(s) self.sent[#self.sent + 1] = s; return true end
  function r:finish() self.finished = true end
  function r:gone() return false end
  return r
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
    local s = setmetatable({model = {}, tok = {}, tpl = lfl.template.get("chatml"), name = "m", max_new = 16,
      created = 0, log = function() end}, {__index = function(_, k) return serve._Server[k] end})
    local real = gen.reply
    local seen
    gen.reply = function(_, _, _, msgs, o)
      seen = o
      return 'Action: get_weather\nAction Input: {"city": "Paris"}', "stop", {prompt_tokens = 5, completion_tokens = 9}
    end
    local req = fake("POST", "/v1/chat/completions", [[{"messages":[{"role":"user","content":"weather?"}],
      "tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object"}}}]}]])
    local ok, err = pcall(s.handle, s, req)
    gen.reply = real
    t.assert(ok, tostring(err))
    t.assert_eq(req.status, 200)
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

t.run()
