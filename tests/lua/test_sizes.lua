-- Sizes from Lua: shapes whose element or byte count overflows, dims that are
-- not integers (fractions, NaN, inf, past int64) and indices of that kind are
-- errors naming the shape or the argument; a checkpoint whose tensor shape
-- overflows is refused naming the file. (lfl.zeros(2^32, 2^32) once wrapped to
-- an empty storage, and the next write crashed.)
local t = lfl.test
local tmp = os.tmpname()

local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end

t.suite("sizes", {
  overflowing_shapes = function()
    t.assert_error(function()
      local x = lfl.zeros(2 ^ 32, 2 ^ 32)
      x[{100000, 1}] = 1 -- the write that corrupted the heap
    end, "shape [4294967296,4294967296]: element count overflows")
    t.assert_error(function() lfl.ones(2 ^ 31, 2 ^ 31, 4, "u8") end, "element count overflows")
    t.assert_error(function() lfl.zeros(2 ^ 62) end, "shape [4611686018427387904] of f32: byte count overflows")
    t.assert_error(function() lfl.zeros({0, 2 ^ 40, 2 ^ 40}) end, "element count overflows")
    t.assert_error(function() lfl.eye(2 ^ 32) end, "element count overflows")
    t.assert_error(function() lfl.arange(0, 1e300) end, "too many elements")
    t.assert_error(function() lfl.ones(1, 1):expand(2 ^ 32, 2 ^ 32) end,
      "expand: shape [4294967296,4294967296]: element count overflows")
    t.assert_error(function() lfl.zeros(0):view(-1, 2 ^ 32, 2 ^ 32) end, "element count overflows")
    -- what fits still works: a large broadcast view allocates nothing
    local e = lfl.ones(1, 1):expand(2 ^ 31, 2 ^ 31)
    t.assert_eq(e:numel(), 2 ^ 62)
    t.assert_eq(lfl.zeros(0, 5):numel(), 0)
  end,

  non_integer_dims = function()
    t.assert_error(function() lfl.zeros(2.5) end, "shape entry 1 is 2.5, expected an integer")
    t.assert_error(function() lfl.zeros(3, 0 / 0) end, "expected an integer")
    t.assert_error(function() lfl.zeros({2, math.huge}) end, "shape entry 2 is inf, expected an integer")
    t.assert_error(function() lfl.zeros(2 ^ 63) end, "shape entry 1 is 9.2233720368548e+18, expected an integer")
    t.assert_error(function() lfl.zeros(-1) end, "negative size -1 in dim 1")
    t.assert_error(function() lfl.zeros(2, -3) end, "negative size -3 in dim 2")
    local x = lfl.zeros(4, 6)
    t.assert_error(function() x:reshape(2.5, -1) end, "shape entry 1 is 2.5")
    t.assert_error(function() x:view({8, 1.5}) end, "shape entry 2 is 1.5")
    t.assert_error(function() x:expand(4, 0 / 0) end, "expected an integer")
    t.assert_error(function() x:reshape(-2, 12) end, "negative size -2")
    t.assert_eq(x:reshape(-1, 3):size(1), 8) -- -1 still infers
  end,

  non_integer_indices = function()
    local x = lfl.arange(12):view(3, 4)
    t.assert_error(function() return x[1.5] end, "index 1.5 is not an integer")
    t.assert_error(function() return x[{2, 0 / 0}] end, "is not an integer")
    t.assert_error(function() return x[{{1, 2.5}}] end, "index: entry 1 has a bound that is not an integer")
    t.assert_error(function() x:narrow(2, 1.5, 1) end, "narrow: the start is 1.5, expected an integer")
    t.assert_error(function() x:narrow(2, 1, math.huge) end, "narrow: the length is inf")
    t.assert_error(function() x:select(1, 2 ^ 70) end, "select: the index is 1.1805916207174e+21")
    t.assert_error(function() x:split(1.5) end, "piece size must be a positive integer, got 1.5")
    t.assert_error(function() x:split({1, 1.5}) end, "split: size 2 is 1.5, not an integer")
    t.assert_eq(x[{2, 3}], 6)
    t.assert_eq(x:narrow(2, 2, 2)[{1, 1}], 1)
  end,

  -- a zero-size dim next to huge ones: 0 bytes, so the byte checks pass, but
  -- the shape's strides would wrap
  checkpoint_shape = function()
    local hdr = '{"x":{"dtype":"F32","shape":[0,1000000000000,1000000000000],"data_offsets":[0,0]}}'
    write(tmp, string.char(#hdr, 0, 0, 0, 0, 0, 0, 0) .. hdr)
    local ok, err = pcall(lfl.safetensors.load, tmp)
    t.assert(not ok, "an overflowing shape loads")
    t.assert(tostring(err):find(tmp, 1, true) and tostring(err):find("element count overflows", 1, true), tostring(err))
    -- from_bytes checks the same way
    local raw = lfl.zeros(16, "u8")
    t.assert_error(function() lfl.from_bytes(raw, "f32", {2 ^ 62, 4}) end, "from_bytes: shape [4611686018427387904,4]: element count overflows")
    t.assert_eq(lfl.from_bytes(raw, "f32", {2, 2}):numel(), 4)
  end,
})

local ok, err = pcall(t.run)
os.remove(tmp)
if not ok then error(err, 0) end
