-- lfl.jinja against the reference stack: every chat_template in
-- ../shared/data/tokenizers (and the template styles in the golden script)
-- rendered on the golden conversations must equal transformers'
-- apply_chat_template output byte for byte (or raise where it raised), and
-- each interpreter-feature snippet must equal jinja2's rendering, as must the
-- fidelity cases (repr escapes, Unicode case mapping, format specs, filters).
-- Goldens: tests/ref/make_template_goldens.py, tests/ref/make_jinja_goldens.py.
local t = lfl.test
local jinja = require "lfl.text.jinja"
local J = require "lfl.text.pyjson"
local fmt = string.format

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local golden = J.decode(read("tests/golden/templates/chat_templates.json"))
local features = J.decode(read("tests/golden/templates/jinja_features.json")).features
local fidelity_doc = J.decode(read("tests/golden/templates/jinja_fidelity.json"))
local fidelity = fidelity_doc.cases

-- first differing byte, shown with some context
local function diff(got, want)
  local i = 1
  while i <= #got and i <= #want and got:byte(i) == want:byte(i) do i = i + 1 end
  local a = math.max(1, i - 40)
  return fmt("first difference at byte %d\n  got:  %q\n  want: %q", i, got:sub(a, i + 40), want:sub(a, i + 40))
end

local shared = "../shared/data/tokenizers/"

local function template_source(name, spec)
  if spec.source == "inline" then return spec.template end
  local cfg = J.decode(read("../" .. spec.source:gsub("^shared/", "shared/")))
  return cfg.chat_template
end

local names = J.keys(golden.templates)
for _, name in ipairs(names) do
  local spec = golden.templates[name]
  t.case("chat_template." .. name, function()
    local src = template_source(name, spec)
    t.assert(type(src) == "string", name .. ": no chat_template found")
    local tpl = jinja.compile(src, {name = name})
    local checked = 0
    for _, c in ipairs(spec.cases) do
      local conv = golden.conversations[c.conv]
      local opts = {add_generation_prompt = c.add_generation_prompt, tools = conv.tools}
      for k, v in pairs(spec.special_tokens) do opts[k] = v end
      for k, v in pairs(c.kwargs) do opts[k] = v end
      local label = fmt("%s / %s / add_generation_prompt=%s %s", name, c.conv, tostring(c.add_generation_prompt),
        J.encode(c.kwargs))
      local ok, out = pcall(jinja.apply_chat_template, tpl, conv.messages, opts)
      if c.error then
        t.assert(not ok, label .. ": transformers raised (" .. c.error .. ") but we rendered:\n" .. tostring(out))
      else
        t.assert(ok, label .. ": we raised: " .. tostring(out))
        if out ~= c.out then error(label .. ": " .. diff(out, c.out), 0) end
      end
      checked = checked + 1
    end
    t.assert(checked == #spec.cases and checked > 0)
  end)
end

t.case("chat_template.covers_all_shared", function()
  -- every tokenizer folder with a chat_template has goldens
  local p = io.popen("ls " .. shared)
  for dir in p:lines() do
    local f = io.open(shared .. dir .. "/tokenizer_config.json")
    if f then
      local cfg = J.decode(f:read("*a"))
      f:close()
      if type(cfg.chat_template) == "string" then
        t.assert(golden.templates[dir] ~= nil, "no goldens for " .. dir .. "'s chat_template")
      end
    end
  end
  p:close()
end)

for i, f in ipairs(features) do
  t.case(fmt("feature.%03d", i), function()
    local ok, out = pcall(jinja.render, f.template, f.context)
    if f.error then
      t.assert(not ok, fmt("%q: jinja2 raised (%s) but we rendered %q", f.template, f.error, tostring(out)))
    else
      t.assert(ok, fmt("%q: we raised: %s", f.template, tostring(out)))
      if out ~= f.out then error(fmt("%q:\n%s", f.template, diff(out, f.out)), 0) end
    end
  end)
end

for _, f in ipairs(fidelity) do
  t.case("fidelity." .. f.name, function()
    local ok, out = pcall(jinja.render, f.template, f.context)
    if f.error then
      t.assert(not ok, fmt("%q: jinja2 raised (%s) but we rendered %q", f.template, f.error, tostring(out)))
    else
      t.assert(ok, fmt("%q: we raised: %s", f.template, tostring(out)))
      if out ~= f.out then error(fmt("%q:\n%s", f.template, diff(out, f.out)), 0) end
    end
  end)
end

-- sampled format specs through str.format and the % operator
t.case("fidelity.format_matrix", function()
  local bad = {}
  for _, c in ipairs(fidelity_doc.format_matrix) do
    local src = c.kind == "format" and "{{ ('{:' ~ spec ~ '}').format(value) }}" or "{{ spec % (value,) }}"
    local ok, out = pcall(jinja.render, src, {spec = c.spec, value = c.value})
    local good
    if c.error then good = not ok else good = ok and out == c.out end
    if not good and #bad < 10 then
      bad[#bad + 1] = fmt("%s %q of %s: want %s, got %s", c.kind, c.spec, jinja.repr(c.value),
        c.error and ("error " .. c.error) or fmt("%q", c.out), ok and fmt("%q", out) or ("error " .. tostring(out)))
    end
  end
  if #bad > 0 then error(table.concat(bad, "\n"), 0) end
end)

-- ---- interpreter behaviour beyond the goldens ----

t.suite("jinja", {
  lua_tables_as_data = function()
    -- plain Lua tables work as lists and dicts
    local out = jinja.render("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ n }}",
      {messages = {{role = "user", content = "hi"}, {role = "assistant", content = "yo"}}, n = 3})
    t.assert_eq(out, "user:hi;assistant:yo;3")
  end,

  ordered_dicts_for_tojson = function()
    local tool = J.odict("type", "function", "function", J.odict("name", "f", "parameters", J.dict({})))
    t.assert_eq(jinja.render("{{ t|tojson }}", {t = tool}),
      '{"type": "function", "function": {"name": "f", "parameters": {}}}')
  end,

  error_names_template_and_line = function()
    local err = t.assert_error(function()
      jinja.render("line1\n{% if x %}\n{{ y.z }}\n{% endif %}", {x = true})
    end, "'y' is undefined")
    t.assert(err:find("template:3:", 1, true), "line number in: " .. err)
    err = t.assert_error(function() jinja.compile("a\nb\n{% for x in %}", {name = "mine"}) end, "syntax error")
    t.assert(err:find("mine:3:", 1, true), "line number in: " .. err)
    err = t.assert_error(function() jinja.render("\n\n{{ raise_exception('nope') }}") end, "nope")
    t.assert(err:find(":3:", 1, true), err)
  end,

  compile_once_render_many = function()
    local tpl = jinja.compile("{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}{% endfor %}")
    local msgs = {}
    for i = 1, 50 do msgs[i] = {role = i % 2 == 1 and "user" or "assistant", content = " message " .. i .. " "} end
    local t0 = lfl.sys.clock()
    local out
    for _ = 1, 200 do out = tpl:render({messages = msgs}) end
    local dt = lfl.sys.clock() - t0
    t.assert(out:find("<user>message 1<assistant>message 2", 1, true))
    t.assert(dt < 5, fmt("200 renders of 50 messages took %.2fs", dt))
  end,

  loop_changed_and_cycle = function()
    t.assert_eq(jinja.render("{% for x in [1,1,2,2,3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}"), "123")
    t.assert_eq(jinja.render("{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{% endfor %}"), "aba")
  end,

  apply_chat_template_drops_none_and_defaults = function()
    local out = jinja.apply_chat_template(
      "{{ messages[0].content is defined }} {{ tools is none }} {{ add_generation_prompt }}",
      {J.odict("role", "assistant", "content", J.null)})
    t.assert_eq(out, "False True False")
    t.assert_error(function() jinja.apply_chat_template("x", {}) end, "empty conversation")
  end,

  -- the C side of the case mapping and repr escapes (lfl._unicode over utf8proc)
  unicode_bridge = function()
    local U = lfl._unicode
    t.assert_eq(U.category(0x41), "Lu")
    t.assert_eq(U.category(0x200B), "Cf")
    t.assert_eq(U.category(0xE000), "Co")
    t.assert_eq(U.category(0x0378), "Cn")
    t.assert(U.isprintable(0x20) and U.isprintable(0xE9) and U.isprintable(0x1F600))
    t.assert(not U.isprintable(0xA0) and not U.isprintable(0x2028) and not U.isprintable(0x7F))
    t.assert_eq(U.case("Straße", "upper"), "STRASSE")
    t.assert_eq(U.case("ΟΔΟΣ", "lower"), "οδος")
    t.assert_eq(U.case("ΟΔΟΣ", "casefold"), "οδοσ")
    -- bytes that are not UTF-8 pass through
    t.assert_eq(U.case("a\255B\128", "swapcase"), "A\255b\128")
    t.assert_error(function() U.case("x", "shout") end, "invalid option")
    t.assert_error(function() U.category(0x110000) end, "code point")
    local lo, up, ti = U.casing(0xAA) -- ª: Other_Lowercase
    t.assert(lo and not up and not ti)
    lo, up, ti = U.casing(0x01C5) -- ǅ: titlecase
    t.assert(ti and not lo and not up)
    t.assert_eq(U.numeric(0x0663), 3) -- Arabic-Indic three: decimal
    t.assert_eq(U.numeric(0xB2), 2) -- superscript two: digit
    t.assert_eq(U.numeric(0x4E07), 1) -- CJK ten thousand: numeric
    t.assert_eq(U.numeric(0x41), 0)
    -- C's rounding (LuaJIT's own string.format rounds 2.25 up)
    t.assert_eq(U.cformat(2.25, "f", 1, false), "2.2")
    t.assert_eq(U.cformat(2.5, "f", 0, false), "2")
    t.assert_eq(U.cformat(255, "g", 3, true), "255.")
    t.assert_error(function() U.cformat(1, "d", 1) end, "conversion")
  end,

  floats_and_ints = function()
    t.assert_eq(jinja.render("{{ a }} {{ b }} {{ a + b }} {{ a / 1 }}", {a = 2, b = J.float(3)}), "2 3.0 5.0 2.0")
  end,
})

t.run()
