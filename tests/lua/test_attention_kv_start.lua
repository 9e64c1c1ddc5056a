-- attention's kv_start option (left-padded batches in generation): values
-- against a naive Lua reference, finite-difference gradient checks in f64,
-- the f32 tiles against f64 on multi-tile shapes, the f32 one-query path
-- (decoding) against f64, a padded row equal to the same row unpadded, and
-- bad-input errors.
local t = lfl.test
local sqrt, exp, tanh, floor = math.sqrt, math.exp, math.tanh, math.floor
local unpack = unpack or table.unpack

local function vals(x) local v = {}; for i = 1, x:numel() do v[i] = x:_at(i) end; return v end

-- naive attention (0-based loops); keys j < kv_start[b] are invisible to row b
local function ref(q, k, v, o)
  local B, Hq, T, D = unpack(q:size())
  local Hkv, S = k:size()[2], k:size()[3]
  local G, off, scale = Hq / Hkv, S - T, o.scale or 1 / sqrt(D)
  local Q, K, V, st = vals(q), vals(k), vals(v), vals(o.kv_start)
  local out = {}
  for b = 0, B - 1 do
    for h = 0, Hq - 1 do
      local hk = floor(h / G)
      for i = 0, T - 1 do
        local s, m = {}, -math.huge
        for j = 0, S - 1 do
          local ok = j >= st[b + 1] and (not o.causal or j <= i + off)
            and (not o.window or j > i + off - o.window)
          if ok then
            local acc = 0
            for d = 0, D - 1 do acc = acc + Q[((b * Hq + h) * T + i) * D + d + 1] * K[((b * Hkv + hk) * S + j) * D + d + 1] end
            acc = acc * scale
            if o.softcap then acc = o.softcap * tanh(acc / o.softcap) end
            s[j] = acc
            if acc > m then m = acc end
          end
        end
        local l = 0
        for j, x in pairs(s) do s[j] = exp(x - m); l = l + s[j] end
        for d = 0, D - 1 do
          local acc = 0
          for j, p in pairs(s) do acc = acc + p * V[((b * Hkv + hk) * S + j) * D + d + 1] end
          out[((b * Hq + h) * T + i) * D + d + 1] = l > 0 and acc / l or 0
        end
      end
    end
  end
  return lfl.tensor(out, "f64"):view(B, Hq, T, D)
end

local function starts(list) return lfl.tensor(list, "i64") end

-- f64 runs 8 x 8 tiles: S = 11..13 crosses a tile, starts land inside and on borders
local configs = {
  causal_gqa = {B = 3, Hq = 4, Hkv = 2, T = 11, S = 11, D = 3, o = {causal = true, kv_start = starts({0, 3, 8})}},
  cached = {B = 2, Hq = 2, Hkv = 1, T = 4, S = 13, D = 3, o = {causal = true, kv_start = starts({9, 2})}},
  decode = {B = 3, Hq = 2, Hkv = 2, T = 1, S = 12, D = 4, o = {causal = true, kv_start = starts({0, 5, 11})}},
  window_softcap = {B = 2, Hq = 2, Hkv = 1, T = 12, S = 12, D = 3,
                    o = {causal = true, window = 4, softcap = 2, kv_start = starts({6, 1})}},
  bidirectional = {B = 2, Hq = 2, Hkv = 1, T = 5, S = 9, D = 3, o = {kv_start = starts({4, 9})}},
}

local function make(c, dt)
  return lfl.randn(c.B, c.Hq, c.T, c.D, dt or "f64"), lfl.randn(c.B, c.Hkv, c.S, c.D, dt or "f64"),
    lfl.randn(c.B, c.Hkv, c.S, c.D, dt or "f64")
end

t.suite("attention_kv_start", {
  values = function()
    lfl.manual_seed(1)
    for name, c in pairs(configs) do
      local q, k, v = make(c)
      t.assert_tensor_close(lfl.attention(q, k, v, c.o), ref(q, k, v, c.o), 1e-12, 1e-10, name)
    end
  end,
  gradcheck = function()
    lfl.manual_seed(2)
    for name, c in pairs(configs) do
      local q, k, v = make(c)
      local ok, err = pcall(t.gradcheck, function(a, b, cc) return lfl.attention(a, b, cc, c.o) end,
        {q:requires_grad(), k:requires_grad(), v:requires_grad()})
      if not ok then error(name .. ": " .. tostring(err), 0) end
    end
  end,
  f32_tiles_match_f64 = function()
    -- 64-wide f32 tiles: starts inside the first tile, on a border and in the second
    lfl.manual_seed(3)
    local c = {B = 3, Hq = 4, Hkv = 2, T = 150, S = 150, D = 16,
               o = {causal = true, window = 90, kv_start = starts({10, 64, 100})}}
    local q, k, v = make(c)
    local got = lfl.attention(q:to("f32"), k:to("f32"), v:to("f32"), c.o)
    t.assert_tensor_close(got:to("f64"), lfl.attention(q, k, v, c.o), 1e-4, 1e-4)
    local q1, k1, v1 = make({B = 2, Hq = 4, Hkv = 2, T = 1, S = 150, D = 16}, "f32")
    local o1 = {causal = true, kv_start = starts({149, 70})}
    t.assert_tensor_close(lfl.attention(q1, k1, v1, o1):to("f64"),
      lfl.attention(q1:to("f64"), k1:to("f64"), v1:to("f64"), o1), 1e-4, 1e-4)
  end,
  f32_one_query = function()
    -- T == 1 in f32 takes the one-query path (decoding): against the f64 tiles, with grouped heads, a window,
    -- softcap, a row that sees nothing (kv_start = S: zeros), q a transposed view and k/v narrowed out of a
    -- longer cache (row stride != D) or with a strided last dimension; gradients through its log-sum-exps
    lfl.manual_seed(5)
    for _, c in ipairs({
      {B = 3, Hq = 6, Hkv = 2, S = 37, D = 8, o = {causal = true, kv_start = starts({0, 12, 37})}},
      {B = 2, Hq = 4, Hkv = 4, S = 130, D = 16, o = {causal = true, window = 50, softcap = 3, kv_start = starts({0, 100})}},
      {B = 1, Hq = 2, Hkv = 1, S = 1, D = 5, o = {causal = true}},
      {B = 2, Hq = 3, Hkv = 1, S = 20, D = 4, o = {}},
      -- widths the vector kernels take (v rows in place: D a multiple of 64, 1-4 heads a pass), and tails
      {B = 2, Hq = 9, Hkv = 3, S = 70, D = 64, vrows = true, o = {causal = true, kv_start = starts({0, 70})}},
      {B = 1, Hq = 6, Hkv = 1, S = 33, D = 128, vrows = true, o = {causal = true, softcap = 5}},
      {B = 1, Hq = 4, Hkv = 2, S = 9, D = 80, vrows = true, o = {causal = true}},
      {B = 1, Hq = 2, Hkv = 1, S = 9, D = 40, vrows = true, o = {}},
    }) do
      local q = lfl.randn(c.B, 1, c.Hq, c.D):transpose(2, 3)
      local kc, vc = lfl.randn(c.B, c.Hkv, c.S + 9, c.D), lfl.randn(c.B, c.Hkv, c.D, c.S)
      local k, v = kc:narrow(3, 1, c.S), vc:transpose(3, 4)
      if c.vrows then v = lfl.randn(c.B, c.Hkv, c.S + 5, c.D):narrow(3, 1, c.S) end
      local got = lfl.attention(q, k, v, c.o)
      local want = lfl.attention(q:to("f64"), k:to("f64"), v:to("f64"), c.o)
      t.assert_tensor_close(got:to("f64"), want, 1e-5, 1e-5, "S " .. c.S)
      local qa, ka, va = q:contiguous():requires_grad(), k:contiguous():requires_grad(), v:contiguous():requires_grad()
      local q2, k2, v2 = qa:detach():to("f64"):requires_grad(), ka:detach():to("f64"):requires_grad(),
        va:detach():to("f64"):requires_grad()
      local g = lfl.randn(c.B, c.Hq, 1, c.D)
      ;(lfl.attention(qa, ka, va, c.o) * g):sum():backward()
      ;(lfl.attention(q2, k2, v2, c.o) * g:to("f64")):sum():backward()
      t.assert_tensor_close(qa.grad:to("f64"), q2.grad, 1e-4, 1e-4, "dq S " .. c.S)
      t.assert_tensor_close(ka.grad:to("f64"), k2.grad, 1e-4, 1e-4, "dk S " .. c.S)
      t.assert_tensor_close(va.grad:to("f64"), v2.grad, 1e-4, 1e-4, "dv S " .. c.S)
    end
    -- a NaN in a key row 0 sees makes its output NaN; the same NaN in row 1's padding changes nothing there
    -- (D = 64: the vector kernels)
    for _, D in ipairs({4, 64}) do
      local q, k, v = lfl.randn(2, 2, 1, D), lfl.randn(2, 1, 10, D), lfl.randn(2, 1, 10, D)
      local o = {causal = true, kv_start = starts({0, 3})}
      local clean = lfl.attention(q, k, v, o)
      k[{1, 1, 2, 1}] = 0 / 0
      k[{2, 1, 2, 1}] = 0 / 0
      local out = lfl.attention(q, k, v, o)
      for h = 1, 2 do
        for d = 1, D do
          local x = out[{1, h, 1, d}]
          t.assert(x ~= x, "row 0 sees the NaN key: NaN output")
          t.assert_eq(out[{2, h, 1, d}], clean[{2, h, 1, d}], "row 1's padding NaN is not seen")
        end
      end
    end
  end,
  padded_row_equals_unpadded = function()
    -- a row left-padded by p keys gives the same outputs (after the padding) as the row alone
    lfl.manual_seed(4)
    local p, n = 5, 9
    local q, k, v = lfl.randn(1, 2, n, 3, "f64"), lfl.randn(1, 1, n, 3, "f64"), lfl.randn(1, 1, n, 3, "f64")
    local o = {causal = true, window = 4}
    local alone = lfl.attention(q, k, v, o)
    local function pad(x) return lfl.cat({lfl.randn(1, x:size(2), p, 3, "f64") * 100, x}, 3) end
    local po = {causal = true, window = 4, kv_start = starts({p})}
    local padded = lfl.attention(pad(q), pad(k), pad(v), po)
    t.assert_tensor_close(padded:narrow(3, p + 1, n), alone, 1e-12, 1e-12)
    for i = 1, p do
      for d = 1, 3 do t.assert_eq(padded[{1, 1, i, d}], 0, "a padding query sees nothing") end
    end
  end,
  errors = function()
    local q, k, v = lfl.randn(2, 2, 3, 4), lfl.randn(2, 1, 3, 4), lfl.randn(2, 1, 3, 4)
    t.assert_error(function() lfl.attention(q, k, v, {kv_start = starts({0})}) end, "kv_start [1] of i64 should be i64 [2]")
    t.assert_error(function() lfl.attention(q, k, v, {kv_start = lfl.tensor({0, 1})}) end, "should be i64 [2]")
    t.assert_error(function() lfl.attention(q, k, v, {kv_start = starts({0, 4})}) end,
      "kv_start[1] = 4 is outside [0, 3]")
    t.assert_error(function() lfl.attention(q, k, v, {kv_start = starts({-1, 0})}) end, "kv_start[0] = -1")
  end,
})

t.run()
