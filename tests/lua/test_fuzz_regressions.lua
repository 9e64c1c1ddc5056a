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
})

t.run()
