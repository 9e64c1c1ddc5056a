-- The safetensors reader holds files to the reference reader's rules (the
-- safetensors crate's read_metadata + Metadata::validate): the tensors'
-- byte ranges, sorted by offset, tile the data section exactly (no overlap,
-- no gap, no trailing bytes), sizes match shape x dtype, the header is UTF-8
-- JSON starting with '{' with string metadata and unique names. Each broken
-- rule is refused with an error naming the file, the tensor and what was
-- expected. The files are written here, byte by byte.
local t = lfl.test
local tmp = os.tmpname()

local function write(s) local f = assert(io.open(tmp, "wb")); f:write(s); f:close() end
local function le64(n)
  local b = {}
  for i = 1, 8 do b[i] = string.char(n % 256); n = math.floor(n / 256) end
  return table.concat(b)
end
-- a file from the header text and the data bytes
local function file(hdr, data) write(le64(#hdr) .. hdr .. (data or "")) end
local function bytes(n) return string.rep("\1", n) end
local function refused(phrase, ...)
  local err = t.assert_error(function() lfl.safetensors.load(tmp) end, phrase)
  t.assert(tostring(err):find(tmp, 1, true), "the error names the file: " .. tostring(err))
  for _, more in ipairs({...}) do
    t.assert(tostring(err):find(more, 1, true), ("the error mentions %q: %s"):format(more, tostring(err)))
  end
end
local function entry(name, dtype, shape, b, e)
  return ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%s,%s]}'):format(name, dtype, shape, b, e)
end

t.suite("safetensors layout", {
  -- ranges in any header order, zero-sized tensors on the edges, padding spaces
  accepted = function()
    local data = "\0\0\128\63" .. "\0\0\0\64" -- 1.0, 2.0 as f32 little-endian
    file("{" .. entry("b", "F32", "1", 4, 8) .. "," .. entry("a", "F32", "1", 0, 4) .. ","
      .. entry("z0", "F32", "0", 0, 0) .. "," .. entry("z1", "F32", "2,0", 4, 4) .. ","
      .. entry("z2", "F32", "0", 8, 8) .. ',"__metadata__":{"format":"pt"}}    ', data)
    local ts, meta = lfl.safetensors.load(tmp)
    t.assert_eq(ts.a:item(), 1); t.assert_eq(ts.b:item(), 2)
    t.assert_eq(ts.z0:numel(), 0); t.assert_eq(ts.z1:numel(), 0); t.assert_eq(ts.z2:numel(), 0)
    t.assert_eq(meta.format, "pt")
    file("{}")
    t.assert_eq(next((lfl.safetensors.load(tmp))), nil)
    file('{"__metadata__":{}}\t\n\r ')
    t.assert_eq(next((lfl.safetensors.load(tmp))), nil)
  end,

  -- an offset not aligned to the dtype (legal, if no writer makes one): the
  -- tensor is a copy with the right values, not a misaligned view
  misaligned = function()
    local hdr = "{" .. entry("u", "U8", "1", 0, 1) .. "," .. entry("f", "F32", "2", 1, 9) .. "," .. entry("d", "F64", "1", 9, 17) .. "}"
    hdr = hdr .. string.rep(" ", (8 - #hdr % 8) % 8) -- data starts 8-aligned: f at 1 and d at 9 are not
    file(hdr, "\7" .. "\0\0\128\63" .. "\0\0\0\64" .. "\0\0\0\0\0\0\224\63")
    local ts = lfl.safetensors.load(tmp)
    t.assert_eq(ts.u:item(), 7); t.assert_eq(ts.f[1], 1); t.assert_eq(ts.f[2], 2); t.assert_eq(ts.d:item(), 0.5)
    t.assert_eq((ts.f + 1):sum():item(), 5)
  end,

  too_short = function()
    write("abc")
    refused("3 bytes is too short")
  end,

  overlap = function()
    file("{" .. entry("a", "F32", "2", 0, 8) .. "," .. entry("b", "F32", "2", 4, 12) .. "}", bytes(12))
    refused("overlap", "tensor 'b'", "tensor 'a' [0, 8]", "expected it to begin at 8")
    -- the same range twice
    file("{" .. entry("a", "F32", "2", 0, 8) .. "," .. entry("b", "F32", "2", 0, 8) .. "}", bytes(8))
    refused("overlap", "expected it to begin at 8")
  end,

  gaps = function()
    file("{" .. entry("a", "F32", "2", 0, 8) .. "," .. entry("b", "F32", "2", 12, 20) .. "}", bytes(20))
    refused("leave bytes [8, 12) of the data unreferenced", "tensor 'b'", "expected it to begin at 8")
    file("{" .. entry("a", "F32", "2", 4, 12) .. "}", bytes(12))
    refused("leave bytes [0, 4) of the data unreferenced", "tensor 'a'")
    file("{" .. entry("a", "F32", "2", 0, 8) .. "}", bytes(12))
    refused("4 trailing bytes are unreferenced", "end at data byte 8", "holds 12 bytes")
    file("{}", bytes(3))
    refused("3 trailing bytes are unreferenced")
  end,

  ranges = function()
    file("{" .. entry("a", "F32", "0", 8, 0) .. "}", bytes(8))
    refused("begin after they end", "tensor 'a'", "[8, 0]")
    file("{" .. entry("a", "F32", "4", 0, 16) .. "}", bytes(8))
    refused("outside the 8 data bytes", "tensor 'a'")
    file("{" .. entry("a", "F32", "4", 0, 8) .. "}", bytes(8))
    refused("hold 8 bytes for 4 elements of F32, expected 16", "tensor 'a'")
    file("{" .. entry("a", "BF16", "3", 0, 8) .. "}", bytes(8))
    refused("expected 6", "tensor 'a'")
    file("{" .. entry("a", "F32", "1099511627776,1099511627776", 0, 8) .. "}", bytes(8))
    refused("overflows", "tensor 'a'")
  end,

  numbers = function()
    for _, shape in ipairs({"-1", "1.5", '"2"', "null"}) do
      file("{" .. entry("a", "F32", shape, 0, 4) .. "}", bytes(4))
      refused("shape[0] is not a non-negative integer", "tensor 'a'")
    end
    for _, offs in ipairs({{"0.5", "4"}, {"-4", "0"}, {"0", '"4"'}}) do
      file("{" .. entry("a", "F32", "1", offs[1], offs[2]) .. "}", bytes(4))
      refused("data_offsets must be two non-negative integers", "tensor 'a'")
    end
  end,

  header = function()
    file("{" .. entry("a", "F32", "1", 0, 4) .. "," .. entry("a", "F32", "1", 4, 8) .. "}", bytes(8))
    refused("names tensor 'a' twice")
    file('{"__metadata__":{"step":7}}')
    refused("__metadata__ 'step': expected a string value")
    file('{"__metadata__":{"k":"\255"}}')
    refused("header byte 22 is not valid UTF-8")
    file('{"__metadata__":{"k":"\237\160\128"}}') -- a surrogate
    refused("is not valid UTF-8")
    file(' {}')
    refused("does not start with '{'")
    file('{} x')
    refused("bytes after its JSON object")
    file('{}\0')
    refused("bytes after its JSON object")
    write(le64(100000001) .. "{}")
    refused("exceeds the 100000000-byte limit")
  end,
})

os.remove(tmp)
t.run()
