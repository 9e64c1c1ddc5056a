-- Harness of fuzz_json: the input as JSON text through both decoders.
-- lfl.json (cJSON, lua/l_json.c): decode either fails with an error naming
-- the source, or gives a value that encodes, decodes again, and encodes to
-- the same text. lfl.text.pyjson (Python's json semantics, in Lua): likewise
-- decode -> encode -> decode -> encode is stable, with and without
-- ensure_ascii, indent and sort_keys.
local F = require("fuzzlib")
local J = require("lfl.text.pyjson")

local function bug(msg, input) error("BUG: " .. msg .. "\ninput: " .. string.format("%q", input), 0) end

local function check_lfl(input)
  local ok, v = F.guard("lfl.json.decode", lfl.json.decode, input, "fuzz.json")
  if not ok then
    if not v:find("fuzz.json", 1, true) then bug("a decode error that does not name the source: " .. v, input) end
    return
  end
  for _, opts in ipairs({{allow_nan = true}, {allow_nan = true, indent = true, sort_keys = false}}) do
    local ok1, s = F.guard("lfl.json.encode", lfl.json.encode, v, opts)
    if not ok1 then bug("a decoded value does not encode: " .. s, input) end
    local ok2, v2 = F.guard("lfl.json.decode (again)", lfl.json.decode, s, "again")
    if not ok2 then bug("encode wrote text decode refuses: " .. v2 .. "\ntext: " .. s, input) end
    if opts.sort_keys ~= false then
      local s2 = lfl.json.encode(v2, opts)
      if s2 ~= s then bug("encode(decode(encode(x))) differs from encode(x):\n" .. s .. "\n" .. s2, input) end
    end
  end
end

local function check_py(input)
  local ok, v = F.guard("pyjson.decode", J.decode, input)
  if not ok then return end
  for _, opts in ipairs({{}, {ensure_ascii = false}, {indent = 2, sort_keys = true}}) do
    local ok1, s = F.guard("pyjson.encode", J.encode, v, opts)
    if not ok1 then bug("pyjson: a decoded value does not encode: " .. s, input) end
    local ok2, v2 = F.guard("pyjson.decode (again)", J.decode, s)
    if not ok2 then bug("pyjson: encode wrote text decode refuses: " .. v2 .. "\ntext: " .. s, input) end
    local ok3, s2 = F.guard("pyjson.encode (again)", J.encode, v2, opts)
    if not ok3 or s2 ~= s then bug("pyjson: encode(decode(encode(x))) differs from encode(x):\n" .. s .. "\n" .. tostring(s2), input) end
  end
end

return function(input)
  check_lfl(input)
  check_py(input)
  collectgarbage("step", 200)
end
