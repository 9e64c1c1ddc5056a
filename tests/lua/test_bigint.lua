-- Integers past 2^53 stay exact end to end, as Python keeps them: lfl.json and
-- lfl.pyjson decode them into lfl.json.Int values and write them back digit
-- for digit (floats keep Python's repr); lfl.text.pyint's arithmetic; the
-- Jinja runtime prints, compares, formats and computes with them as jinja2
-- does; real chat templates, the data pipeline with LlamaFactory's templates
-- and tool formats, and the server's request parsing keep a tool call's
-- {"user_id": 1234567890123456789}. Goldens: tests/ref/make_bigint_goldens.py.
local t = lfl.test
local J = require "lfl.text.pyjson"
local I = require "lfl.text.pyint"
local jinja = require "lfl.text.jinja"
local T = require "lfl.text.template"
local tools = require "lfl.text.tools"
local fmt = string.format

local G = J.decode(assert(lfl.read_file(lfl.home .. "/tests/golden/json/bigint.json")))
local shared = lfl.home .. "/../shared/data/tokenizers/"
local BIG = "1234567890123456789"

local tmp = os.tmpname()
os.remove(tmp)
lfl.fs.mkdir(tmp)

local function diff(got, want)
  if got == want then return nil end
  local i = 1
  while got:sub(i, i) == want:sub(i, i) do i = i + 1 end
  local a = math.max(1, i - 40)
  return fmt("first difference at byte %d\n  got:  %q\n  want: %q", i, got:sub(a, i + 40), want:sub(a, i + 40))
end

local function same(got, want, label)
  local d = diff(got, want)
  if d then error(label .. ": " .. d, 2) end
end

-- golden pieces as text: strings as they are, specials/tokens by name
local function piece_text(p)
  if type(p) == "string" then return p end
  if p == T.BOS or (type(p) == "table" and p.special == "bos_token") then return "<BOS>" end
  if p == T.EOS or (type(p) == "table" and p.special == "eos_token") then return "<EOS>" end
  return "<token " .. tostring(p.token) .. ">"
end

local function turns_text(turns)
  local out = {}
  for _, pr in ipairs(turns) do
    for _, half in ipairs(pr) do
      for _, p in ipairs(half) do out[#out + 1] = piece_text(p) end
      out[#out + 1] = "\n--\n"
    end
  end
  return table.concat(out)
end

t.suite("bigint", {
  json_like_python = function()
    for _, c in ipairs(G.json) do
      same(J.encode(J.decode(c["in"])), c.dumps, "pyjson " .. c["in"])
      same(J.encode(J.decode(c["in"]), {sort_keys = true, separators = {",", ":"}}), c.sorted_compact,
        "pyjson sorted " .. c["in"])
      -- lfl.json (C) has no float/int distinction ("1.0" reads as 1): its
      -- round trip matches for the texts without floats
      if not c["in"]:find("[.e]") then
        same(lfl.json.encode(lfl.json.decode(c["in"])), c.sorted_compact, "lfl.json " .. c["in"])
        same(J.encode(lfl.json.decode(c["in"]), {sort_keys = true, separators = {",", ":"}}), c.sorted_compact,
          "lfl.json -> pyjson " .. c["in"])
      end
    end
  end,

  decoded_values = function()
    local v = lfl.json.decode('{"id": 1234567890123456789, "m": 9007199254740992, "n": 9007199254740993}')
    t.assert(I.is_int(v.id) and tostring(v.id) == BIG, "an Int beyond 2^53")
    t.assert(type(v.m) == "number" and v.m == 2 ^ 53, "2^53 is still a Lua number")
    t.assert(I.is_int(v.n) and tostring(v.n) == "9007199254740993")
    -- interned: the same value is the same table in both decoders, so == and
    -- table keys work
    local w = J.decode('[1234567890123456789]')
    t.assert(rawequal(v.id, w[1]), "one table per value")
    t.assert(v.id == lfl.json.int(BIG))
    local set = {[v.id] = true}
    t.assert(set[w[1]], "usable as a table key")
    t.assert(J.is_int(v.id) and not J.is_float(v.id) and not J.is_list(v.id) and not J.is_dict(v.id))
    t.assert_eq(J.num(v.id), 1234567890123456789)
    -- the error column of an invalid text counts the text as given
    t.assert_error(function() lfl.json.decode('[12345678901234567890, 1,\n 2, }') end, "line 2, column 5")
    -- lfl.json.int: strings and numbers, refused otherwise
    t.assert_eq(lfl.json.int("42"), 42)
    t.assert_eq(lfl.json.int("-0"), 0)
    t.assert(I.is_int(lfl.json.int(2 ^ 60)) and tostring(lfl.json.int(2 ^ 60)) == "1152921504606846976")
    t.assert_error(function() lfl.json.int("12a") end, "not a decimal integer")
    t.assert_error(function() lfl.json.int("007") end, "not a decimal integer")
    t.assert_error(function() lfl.json.int(1.5) end, "not an integer")
    -- an integral double up to 2^53 is written as an int by lfl.json (not 1e+15)
    t.assert_eq(lfl.json.encode({1e15, 2 ^ 53, -3, 0.5}), "[1000000000000000,9007199254740992,-3,0.5]")
  end,

  pyint_arithmetic = function()
    local x, n = lfl.json.int(BIG), lfl.json.int("-98765432109876543210")
    t.assert_eq(tostring(x + 1), "1234567890123456790")
    t.assert_eq(x - x, 0, "a result within 2^53 is a Lua number")
    t.assert_eq(tostring(x * x), "1524157875323883675019051998750190521")
    local q, r = I.divmod(n, 7)
    t.assert_eq(tostring(q), "-14109347444268077602"); t.assert_eq(r, 4)
    q, r = I.divmod(x, -5)
    t.assert_eq(tostring(q), "-246913578024691358"); t.assert_eq(r, -1)
    q, r = I.divmod(I.pow(7, 300), x)
    t.assert(I.add(I.mul(q, x), r) == I.pow(7, 300), "divmod by a big divisor")
    t.assert_eq(tostring(I.pow(2, 64)), "18446744073709551616")
    t.assert_eq(tostring(I.pow(-3, 41)), "-36472996377170786403")
    t.assert_eq(I.to_base(I.pow(2, 64), 16), "10000000000000000")
    t.assert_eq(I.to_base(x, 8), "104420417217572300425")
    t.assert_eq(I.cmp(x, 1e30), -1); t.assert_eq(I.cmp(x, 1.5), 1)
    t.assert_eq(I.cmp(lfl.json.int("1152921504606846977"), 2 ^ 60), 1)
    t.assert_eq(I.cmp(lfl.json.int("1152921504606846976"), 2 ^ 60), 0)
    t.assert(I.cmp(x, 0 / 0) == nil, "NaN is unordered")
    t.assert(x < x * 2 and n <= x and not (x < n), "Ints order with < among themselves")
    t.assert_eq(x .. "!", BIG .. "!")
    t.assert_eq(-x == lfl.json.int("-" .. BIG), true)
    t.assert_eq(x + 0.5, 1234567890123456789 + 0.5, "with a float the result is a float")
    t.assert_error(function() return x + "1" end, "arithmetic")
    t.assert_error(function() I.pow(10, 10000000) end, "million digits")
  end,

  jinja_like_jinja2 = function()
    local vars = J.decode(G.vars)
    for _, c in ipairs(G.jinja) do
      same(jinja.compile(c.template, {name = c.name}):render(vars), c.out, "jinja " .. c.name)
    end
  end,

  chat_templates_like_transformers = function()
    local messages, tl = J.decode(G.messages), J.decode(G.tools)
    for _, name in ipairs(J.keys(G.chat_templates)) do
      local want = G.chat_templates[name]
      local cfg = J.decode(assert(lfl.read_file(shared .. name .. "/tokenizer_config.json")))
      local opts = {tools = tl}
      for k, v in pairs(want.special_tokens) do opts[k] = v end
      for k, v in pairs(want.kwargs) do opts[k] = v end
      same(jinja.apply_chat_template(cfg.chat_template, messages, opts), want.out, "chat template " .. name)
    end
    t.assert(G.chat_templates.qwen3.out:find('"user_id": ' .. BIG, 1, true), "the golden carries the call")
  end,

  -- a dataset row (read by lfl.json, aligned by lfl.data) through
  -- LlamaFactory's templates and tool formats, as LlamaFactory encodes it
  dataset_through_templates = function()
    lfl.fs.write(tmp .. "/dataset_info.json", '{"big": {"file_name": "big.json", "formatting": "sharegpt", '
      .. '"columns": {"messages": "conversations", "tools": "tools"}}, "bigl": {"file_name": "bigl.json", '
      .. '"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}}')
    lfl.fs.write(tmp .. "/big.json", "[" .. J.encode(G.lf.row) .. "]")
    local d = lfl.data.load({dataset = "big", dataset_dir = tmp})
    local ex = d.train[1]
    local msgs = {}
    for _, m in ipairs(ex.prompt) do msgs[#msgs + 1] = m end
    for _, m in ipairs(ex.response) do msgs[#msgs + 1] = m end
    for _, name in ipairs(J.keys(G.lf.templates)) do
      local got = T.get(name):encode_multiturn(msgs, ex.system, ex.tools, {date = G.meta.date})
      same(turns_text(got), turns_text(G.lf.templates[name]), "LlamaFactory template " .. name)
    end
    -- a tools column given as a JSON list (not text) is written back by lfl.json: still exact
    local row = J.decode(J.encode(G.lf.row))
    row.tools = J.decode(row.tools)
    lfl.fs.write(tmp .. "/bigl.json", "[" .. J.encode(row) .. "]")
    local dl = lfl.data.load({dataset = "bigl", dataset_dir = tmp})
    t.assert(dl.train[1].tools:find('"maximum":9223372036854775807', 1, true), dl.train[1].tools)
    -- model output -> tool calls
    for _, f in ipairs(J.keys(G.lf.extract)) do
      local c = G.lf.extract[f]
      local calls = tools.get(f).tool_extractor(c["in"])
      t.assert(type(calls) == "table", f .. ": no calls extracted")
      t.assert_eq(#calls, #c.calls)
      for i, call in ipairs(c.calls) do
        t.assert_eq(calls[i].name, call.name)
        same(calls[i].arguments, call.arguments, f .. " extractor arguments")
      end
    end
  end,

  -- an API request: tools and a previous tool call with big integers
  server_request = function()
    local serve = require "lfl.infer.serve"
    local msgs = J.decode(G.messages)
    -- OpenAI sends arguments as JSON text; an object is taken too
    local as_text = J.decode(J.encode(msgs))
    as_text[2].tool_calls[1]["function"].arguments = J.encode(msgs[2].tool_calls[1]["function"].arguments)
    for _, m in ipairs({msgs, as_text}) do
      local body = J.encode(J.odict("messages", J.list({m[1], m[2], m[3]}), "tools", J.decode(G.tools)))
      local o = serve.parse_request(body, 16)
      same(o.tools, G.serve_tools, "the request's tools")
      local fn = o.messages[2]
      t.assert_eq(fn.role, "function")
      local calls = J.decode(fn.content)
      local args = J.decode(calls[1].arguments)
      t.assert(I.is_int(args.user_id) and tostring(args.user_id) == BIG, fn.content)
      t.assert(o.messages[3].content:find(BIG, 1, true))
    end
    -- a 64-bit seed is a sampling parameter: taken as its nearest double
    local o = serve.parse_request('{"messages": [{"role": "user", "content": "hi"}], "seed": 18446744073709551615}', 16)
    t.assert_eq(o.seed, 2 ^ 64)
  end,
})

local ok = t.run()
lfl.fs.remove(tmp)
return ok
