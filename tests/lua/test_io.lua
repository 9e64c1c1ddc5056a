-- Checkpoint IO: safetensors written by torch load here; ours load back;
-- malformed files give clear errors. JSON bridge basics.
local t = lfl.test
local golden = lfl.home .. "/tests/golden/io/"
local tmp = os.tmpname()

local function read(path) local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s end
local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end

t.suite("safetensors", {
  torch_written = function()
    local ts, meta = lfl.safetensors.load(golden .. "torch_written.safetensors")
    local expect = lfl.json.decode(read(golden .. "torch_written.json"))
    t.assert_eq(meta.note, "golden"); t.assert_eq(meta.format, "pt")
    for name, e in pairs(expect) do
      local x = ts[name]
      t.assert(x, "missing " .. name)
      t.assert_eq(#x:size(), #e.shape, name .. " rank")
      t.assert_tensor_close(x:double():reshape(-1), lfl.tensor(#e.values > 0 and e.values or {}, "f64"):reshape(-1), 0, 0, name)
    end
    t.assert_eq(ts.bf16:dtype(), "bf16"); t.assert_eq(ts.i64:dtype(), "i64"); t.assert_eq(ts.scalar:dim(), 0)
  end,

  roundtrip = function()
    local a, b = lfl.randn(3, 4):transpose(), lfl.arange(5, "i64")
    lfl.safetensors.save(tmp, {a = a, b = b, h = lfl.randn(2):to("bf16")}, {step = "7"})
    local ts, meta = lfl.safetensors.load(tmp)
    t.assert_tensor_close(ts.a, a, 0, 0); t.assert_tensor_close(ts.b, b, 0, 0)
    t.assert_eq(meta.step, "7"); t.assert_eq(meta.format, "pt")
    -- header padded to a multiple of 8 as the format asks
    local s = read(tmp)
    local n = 0
    for i = 8, 1, -1 do n = n * 256 + s:byte(i) end
    t.assert_eq(n % 8, 0)
    lfl.safetensors.save(tmp, {z = lfl.zeros(2)}) -- no metadata argument
    t.assert_eq(lfl.safetensors.load(tmp).z:numel(), 2)
    lfl.safetensors.save(tmp, {a = a, b = b, h = lfl.randn(2):to("bf16")}, {step = "7"})
    local h = lfl.safetensors.header(tmp)
    t.assert_eq(h.a.dtype, "f32"); t.assert_eq(h.a.shape[1], 4)
  end,

  bad_files = function()
    local good = read(golden .. "torch_written.safetensors")
    write(tmp, good:sub(1, 5))
    t.assert_error(function() lfl.safetensors.load(tmp) end, "too short")
    write(tmp, good:sub(1, 100))
    t.assert_error(function() lfl.safetensors.load(tmp) end, "exceeds the file")
    write(tmp, good:sub(1, #good - 10))
    t.assert_error(function() lfl.safetensors.load(tmp) end, "outside the")
    local hdr = '{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}'
    local len = string.char(#hdr, 0, 0, 0, 0, 0, 0, 0)
    write(tmp, len .. hdr .. string.rep("\0", 8))
    t.assert_error(function() lfl.safetensors.load(tmp) end, "8 bytes for 4 elements")
    hdr = '{"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}'
    write(tmp, string.char(#hdr, 0, 0, 0, 0, 0, 0, 0) .. hdr .. "\0")
    t.assert_error(function() lfl.safetensors.load(tmp) end, "F8_E4M3 is not supported")
    t.assert_error(function() lfl.safetensors.load("/nonexistent/x.safetensors") end, "cannot open")
  end,

  -- every truncation and seeded random byte mutations of a real file either
  -- load (and every tensor reads) or raise an error naming the file: never a crash
  fuzz = function()
    local good = read(golden .. "torch_written.safetensors")
    local hlen = good:byte(1) + good:byte(2) * 256
    local loaded, failed = 0, 0
    local function try(bytes)
      write(tmp, bytes)
      local ok, err = pcall(function()
        for _, x in pairs(lfl.safetensors.load(tmp)) do x:to("f32"):sum() end
      end)
      if ok then loaded = loaded + 1
      else
        failed = failed + 1
        t.assert(tostring(err):find(tmp, 1, true), "error names the file: " .. tostring(err))
      end
    end
    for n = 0, math.min(#good - 1, 8 + hlen + 64) do try(good:sub(1, n)) end
    local seed = 12345
    local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    for _ = 1, 3000 do
      local b = {good:byte(1, -1)}
      for _ = 1, 1 + rand(4) do
        local pos = rand(8 + hlen) + 1 -- mutate the length prefix or the JSON header
        b[pos] = rand(256)
      end
      local parts = {}
      for i = 1, #b, 4096 do parts[#parts + 1] = string.char(unpack(b, i, math.min(#b, i + 4095))) end
      try(table.concat(parts))
    end
    if os.getenv("LFL_VERBOSE") then print(string.format("  safetensors fuzz: %d loaded, %d refused", loaded, failed)) end
    t.assert(failed > 0 and loaded > 0, string.format("both outcomes seen: %d loaded, %d refused", loaded, failed))
  end,
})

t.suite("dequant", {
  matches_gguf_py = function()
    local g = lfl.safetensors.load(golden .. "dequant.safetensors")
    for _, ty in ipairs({"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}) do
      local want = g[ty .. ".f32"]
      local q = lfl.from_bytes(g[ty .. ".raw"], ty:lower(), want:size())
      t.assert_eq(q:dtype(), ty:lower())
      t.assert_tensor_close(q:dequantize(), want, 0, 0, ty)
      t.assert_tensor_close(q:to("f32"), want, 0, 0, ty .. " via cast")
    end
    t.assert_error(function() lfl.from_bytes(g["Q8_0.raw"], "q8_0", {5, 7}) end, "do not hold")
  end,
})

t.suite("json", {
  roundtrip = function()
    local v = lfl.json.decode('{"a": [1, 2.5, "x", true, null], "b": {"c": "é"}}')
    t.assert_eq(v.a[2], 2.5); t.assert_eq(v.a[5], lfl.json.null); t.assert_eq(v.b.c, "é")
    t.assert_eq(lfl.json.encode({b = 1, a = {1, 2}}), '{"a":[1,2],"b":1}')
    t.assert_error(function() lfl.json.decode('{"a": [1, 2', "cfg.json") end, "cfg.json: invalid JSON at line 1")
    -- cJSON cannot hold NUL inside strings: refused, never cut short
    t.assert_error(function() lfl.json.decode('["ok",\n "a\\u0000b"]', "d.json") end, "d.json: line 2: a string contains \\u0000")
    t.assert_eq(lfl.json.decode('["a\\\\u0000b"]')[1], "a\\u0000b")
    t.assert_error(function() lfl.json.encode({"a\0b"}) end, "NUL byte")
  end,
})

t.run()
os.remove(tmp)
