-- lfl.pyjson: JSON with Python's semantics (key order, None, float repr,
-- json.dumps formatting). Expected strings are what CPython 3.11 prints.
local t = lfl.test
local J = require "lfl.text.pyjson"

t.suite("pyjson", {
  float_repr_like_python = function()
    local cases = {
      {1.5, "1.5"}, {0.1 + 0.2, "0.30000000000000004"}, {1e20, "1e+20"}, {1e16, "1e+16"},
      {1e15, "1000000000000000.0"}, {123456.789, "123456.789"}, {1e-4, "0.0001"}, {1e-5, "1e-05"},
      {0.00012, "0.00012"}, {-2.5e-7, "-2.5e-07"}, {3, "3.0"}, {1 / 3, "0.3333333333333333"},
      {2 ^ 60, "1.152921504606847e+18"}, {-0.0, "-0.0"}, {1 / 0, "inf"},
    }
    for _, c in ipairs(cases) do t.assert_eq(J.float_repr(c[1]), c[2]) end
  end,

  decode_keeps_order_null_and_floats = function()
    local v = J.decode('{"z": 1, "a": [1.0, 2, null, true, "\\u00e9\\ud83d\\ude00"], "m": {}}')
    t.assert_eq(table.concat(J.keys(v), ","), "z,a,m")
    t.assert(v.a[3] == J.null)
    t.assert(J.is_float(v.a[1]) and not J.is_float(v.a[2]))
    t.assert(J.is_dict(v.m) and not J.is_list(v.m))
    t.assert_eq(v.a[5], "é😀")
  end,

  dumps_like_python = function()
    local v = J.decode('{"b": [1, 2.5, "ü"], "a": null, "c": {}, "d": []}')
    t.assert_eq(J.encode(v, {ensure_ascii = false}), '{"b": [1, 2.5, "ü"], "a": null, "c": {}, "d": []}')
    t.assert_eq(J.encode(v), '{"b": [1, 2.5, "\\u00fc"], "a": null, "c": {}, "d": []}')
    t.assert_eq(J.encode(v, {indent = 2, sort_keys = true, ensure_ascii = false}),
      '{\n  "a": null,\n  "b": [\n    1,\n    2.5,\n    "ü"\n  ],\n  "c": {},\n  "d": []\n}')
    t.assert_eq(J.encode(J.decode('{"a": [1, 2]}'), {separators = {",", ":"}}), '{"a":[1,2]}')
    t.assert_eq(J.encode("\0\1\t\n\"\\/\127"), '"\\u0000\\u0001\\t\\n\\"\\\\/\127"')
    t.assert_eq(J.encode("😀"), '"\\ud83d\\ude00"')
  end,

  lua_tables = function()
    t.assert_eq(J.encode({1, 2, 3}), "[1, 2, 3]")
    t.assert_eq(J.encode({b = 1, a = 2}), '{"a": 2, "b": 1}') -- unordered tables: sorted keys
    t.assert_eq(J.encode(J.odict("b", 1, "a", 2)), '{"b": 1, "a": 2}')
    local d = J.dict({})
    J.set(d, "y", 1); J.set(d, "x", 2)
    t.assert_eq(J.encode(d), '{"y": 1, "x": 2}')
    t.assert_eq(J.encode(J.dict({})), "{}")
    t.assert_eq(J.encode({}), "[]")
  end,

  errors_say_where = function()
    t.assert_error(function() J.decode('{"a": 1,\n "b": }') end, "line 2 column 7")
    t.assert_error(function() J.decode("[1, 2") end, "expecting")
    t.assert_error(function() J.decode('{"a": 1} x') end, "extra data")
    t.assert_error(function() J.encode({f = print}) end, "not JSON serializable")
    local c = {}
    c[1] = c
    t.assert_error(function() J.encode(c) end, "circular")
  end,

  -- json.loads takes DEL (0x7F) raw inside a string (only U+0000..U+001F must
  -- be escaped) and json.dumps writes it back raw
  del_is_not_a_control_character = function()
    local v = J.decode('{"s": "a\127b", "t": "\\u007f"}')
    t.assert_eq(v.s, "a\127b")
    t.assert_eq(v.t, "\127")
    t.assert_eq(J.encode(v.s), '"a\127b"')
    t.assert_error(function() J.decode('"a\31b"') end, "invalid control character")
    t.assert_error(function() J.decode('"a\0b"') end, "invalid control character")
  end,
})

t.run()
