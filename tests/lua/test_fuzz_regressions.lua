-- Regressions found by the fuzz targets of tests/fuzz (each case is the
-- input, or its essence, that once broke the product), for the Lua side.
local t = lfl.test
local J = require("lfl.text.pyjson")

t.suite("pyjson", {
  -- fuzz_json: raw bytes that are not UTF-8 inside a string were kept, then
  -- encode(ensure_ascii) read them as other characters, so encode(decode(x))
  -- changed on a second round. Python decodes the text first and refuses.
  malformed_utf8 = function()
    for _, s in ipairs({'"\195\54"', '"a\241\50\51\52"', '"\192\128"', '"\224\128\128"', '"\244\144\128\128"',
                        '"\255"', '"x\195"', '{"k\128": 1}'}) do
      t.assert_error(function() J.decode(s) end, "invalid UTF-8")
    end
    -- well-formed text, and the lone surrogates the encoder itself writes, still pass
    t.assert_eq(J.decode('"caf\195\169 \240\159\166\153"'), "caf\195\169 \240\159\166\153")
    local lone = J.decode('"\\ud800"')
    t.assert_eq(J.decode(J.encode(lone, {ensure_ascii = false})), lone)
    t.assert_eq(J.encode(J.decode(J.encode(lone))), J.encode(lone))
  end,

  -- the UTF-8 check once searched from each string to the end of the text:
  -- quadratic, minutes for the 170 KB template goldens
  linear_on_big_documents = function()
    local parts = {}
    for i = 1, 20000 do parts[i] = '"ascii only ' .. i .. '"' end -- (a high byte stopped the search)
    local text = "[" .. table.concat(parts, ",") .. "]"
    local t0 = os.clock()
    t.assert_eq(#J.decode(text), 20000)
    t.assert(os.clock() - t0 < 1.5, ("decoding %d bytes took %.1f CPU s"):format(#text, os.clock() - t0))
  end,
})

t.suite("lfl.json", {
  -- fuzz_json: nesting past 200 levels raised from inside the pushing (the
  -- parsed tree leaked) with a message that did not name the source
  deep_nesting = function()
    local ok = string.rep("[", 201) .. string.rep("]", 201)
    t.assert_eq(type(lfl.json.decode(ok, "ok.json")), "table")
    local deep = string.rep("[", 202) .. string.rep("]", 202)
    t.assert_error(function() lfl.json.decode(deep, "deep.json") end, "deep.json: nesting deeper than 200")
    deep = string.rep('{"a":', 250) .. "1" .. string.rep("}", 250)
    t.assert_error(function() lfl.json.decode(deep, "deep.json") end, "deep.json: nesting deeper than 200")
  end,

  -- cJSON printed doubles with 15 digits whenever they read back "close":
  -- 0.1 + 0.2 was written 0.3, and DBL_MAX as 1.79769313486232e+308, which
  -- reads back as infinity
  numbers_round_trip_exactly = function()
    for _, v in ipairs({0.1 + 0.2, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1 / 3,
                        123456.789e-20, 0.1, -2.5, 1e300}) do
      local s = lfl.json.encode({v})
      t.assert_eq(lfl.json.decode(s, "s")[1], v, s)
      t.assert_eq(lfl.json.encode(lfl.json.decode(s, "s")), s)
    end
    t.assert_eq(lfl.json.encode({0.1, 0.5, 1e-7}), "[0.1,0.5,1e-07]")
  end,

  -- decode quotes NaN and long integers as strings with an internal mark for
  -- cJSON; a string in the document that began with the mark was taken for
  -- one: "\u0001lfl-json-number:abc" read as 0, a non-digit "integer" wrote
  -- invalid JSON back
  strings_like_the_number_mark = function()
    local doc = '["\\u0001lfl-json-number:NaN",NaN,12345678901234567890,"\\u0001lfl-json-number1:x",'
      .. '{"k":"\\u0001lfl-json-number:abc"}]'
    local v = lfl.json.decode(doc, "doc")
    t.assert_eq(v[1], "\1lfl-json-number:NaN")
    t.assert(v[2] ~= v[2], "NaN")
    t.assert_eq(v[3].digits, "12345678901234567890")
    t.assert_eq(v[4], "\1lfl-json-number1:x")
    t.assert_eq(v[5].k, "\1lfl-json-number:abc")
    t.assert_eq(lfl.json.encode(v, {allow_nan = true, sort_keys = false}), doc)
    t.assert_error(function() lfl.json.decode('[NaN, 12345678901234567890, x]', "doc") end, "doc: invalid JSON at line 1, column 29")
  end,

  -- cJSON stops after the first value: text after it was ignored ('1 x' read
  -- as 1), and with a long integer after a string the retry on the number
  -- mark never ended (a hang)
  extra_data_after_the_value = function()
    for _, c in ipairs({{'1 x', 3}, {'[1] [2]', 5}, {'"a" 12345678901234567890', 5}, {'{} NaN', 4},
                        {'"tab\\t "instructios9007199254740993alsef\r"', 9}}) do
      t.assert_error(function() lfl.json.decode(c[1], "doc") end,
        ("doc: invalid JSON at line 1, column %d (extra data after the value)"):format(c[2]))
    end
    t.assert_eq(lfl.json.decode(' {"a": 1} \r\n\t', "doc").a, 1)
  end,
})

-- one request through serve's routing and validation, answered into a table
local function serve_request(info)
  local serve = require("lfl.infer.serve")
  local srv = setmetatable({name = "m", max_new = 4, max_batch = 1, created = 0, log = function() end}, serve._Server)
  local req = {respond = function(self, status, _, body) self.status, self.body = status, body end}
  srv:guarded(req, info, 0, function() return srv:route(req, info) end)
  return req
end

t.suite("serve", {
  -- fuzz_http: a path or field name that is not UTF-8 was quoted as is in the
  -- error JSON, so the answer itself was not valid JSON text
  malformed_utf8_echoed = function()
    local req = serve_request({method = "GET", path = "/x\211y", body = ""})
    t.assert_eq(req.status, 404)
    local e = J.decode(req.body)
    t.assert(e.error.message:find("/x\239\191\189y", 1, true), e.error.message)
    -- a body that is not UTF-8 is refused up front (the tools, decoded again
    -- by pyjson, made it a 500 before)
    req = serve_request({method = "POST", path = "/v1/chat/completions", body = '{"messages": [{"role": "user", '
      .. '"content": "\255"}], "tools": [{"type": "function", "function": {"name": "f"}}]}'})
    t.assert_eq(req.status, 400)
    t.assert(J.decode(req.body).error.message:find("not UTF-8", 1, true))
    -- a control byte between tokens: cJSON reads the request, pyjson (which
    -- reads the tools in order) refuses it: a 400, not a 500
    req = serve_request({method = "POST", path = "/v1/chat/completions", body = '{"messages": [{"role": "user", '
      .. '"content": "q"}], "tools": [{"type": "function",\27"function": {"name": "f"}}]}'})
    t.assert_eq(req.status, 400)
    t.assert(J.decode(req.body).error.message:find("invalid JSON", 1, true))
    t.assert_eq(J.utf8_valid("ok \195\169"), true); t.assert_eq(J.utf8_valid("\195("), false)
    t.assert_eq(J.utf8_repair("ok \195\169"), "ok \195\169")
    t.assert_eq(J.utf8_repair("\195(\240\159"), "\239\191\189(\239\191\189\239\191\189")
  end,
})

t.run()
