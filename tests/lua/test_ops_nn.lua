-- The NN block ops: values against naive Lua references, finite-difference
-- gradient checks (f64) w.r.t. every differentiable input, strided inputs,
-- the f32 tiled attention against the f64 path on multi-tile shapes, and
-- error messages; the fused LoRA linear against the ops it replaces. (PyTorch
-- goldens are in test_nn_goldens.lua.)
local t = lfl.test
local sqrt, exp, tanh, floor, abs = math.sqrt, math.exp, math.tanh, math.floor, math.abs
local unpack = unpack or table.unpack

local function vals(x) local v = {}; for i = 1, x:numel() do v[i] = x:_at(i) end; return v end
local function tensor(flat, shape, dt) return lfl.tensor(flat, dt or "f64"):view(unpack(shape)) end

-- naive attention over plain Lua numbers (0-based loops); a query that sees
-- no key gets zeros, as the op documents
local function ref_attention(q, k, v, o)
  o = o or {}
  local B, Hq, T, D = unpack(q:size())
  local Hkv, S = k:size()[2], k:size()[3]
  local G, off, scale = Hq / Hkv, S - T, o.scale or 1 / sqrt(D)
  local Q, K, V, seg = vals(q), vals(k), vals(v), o.segments and vals(o.segments)
  local SK = o.sinks and vals(o.sinks) -- one more logit per head in the denominator, no value
  local out = {}
  for b = 0, B - 1 do
    for h = 0, Hq - 1 do
      local hk = floor(h / G)
      for i = 0, T - 1 do
        local s, m = {}, -math.huge
        for j = 0, S - 1 do
          local ok = (not o.causal or j <= i + off) and (not o.window or o.window == 0 or j > i + off - o.window)
            and (not seg or seg[b * T + i + 1] == seg[b * T + j + 1])
          if ok then
            local acc = 0
            for d = 0, D - 1 do acc = acc + Q[((b * Hq + h) * T + i) * D + d + 1] * K[((b * Hkv + hk) * S + j) * D + d + 1] end
            acc = acc * scale
            if o.softcap and o.softcap > 0 then acc = o.softcap * tanh(acc / o.softcap) end
            s[j] = acc
            if acc > m then m = acc end
          end
        end
        local l = 0
        if SK and SK[h + 1] > m then m = SK[h + 1] end
        if SK and m > -math.huge then l = exp(SK[h + 1] - m) end
        for j, x in pairs(s) do s[j] = exp(x - m); l = l + s[j] end
        for d = 0, D - 1 do
          local acc = 0
          for j, p in pairs(s) do acc = acc + p * V[((b * Hkv + hk) * S + j) * D + d + 1] end
          out[((b * Hq + h) * T + i) * D + d + 1] = l > 0 and acc / l or 0
        end
      end
    end
  end
  return tensor(out, {B, Hq, T, D})
end

local function randn(...) return lfl.randn(...) end

-- attention configurations for the f64 checks (small: gradchecks evaluate the op
-- twice per input element); f64 runs 8 x 8 tiles, so T = 11..13 crosses tiles
local function seg_tensor(rows) return lfl.tensor(rows, "i64") end
local configs = {
  plain = {B = 1, Hq = 2, Hkv = 2, T = 5, S = 5, D = 3, o = {}},
  gqa_causal = {B = 2, Hq = 4, Hkv = 2, T = 11, S = 11, D = 4, o = {causal = true}},
  window = {B = 1, Hq = 2, Hkv = 1, T = 12, S = 12, D = 3, o = {causal = true, window = 3}},
  softcap = {B = 1, Hq = 2, Hkv = 1, T = 9, S = 9, D = 3, scale_q = 3, o = {causal = true, softcap = 2, scale = 0.7}},
  segments = {B = 2, Hq = 2, Hkv = 1, T = 13, S = 13, D = 3,
              o = {causal = true, segments = seg_tensor({{0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2},
                                                          {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7}})}},
  segments_window_softcap = {B = 1, Hq = 3, Hkv = 1, T = 12, S = 12, D = 2, scale_q = 2,
              o = {causal = true, window = 4, softcap = 1.5, segments = seg_tensor({{3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1}})}},
  kv_cache = {B = 1, Hq = 2, Hkv = 1, T = 3, S = 10, D = 3, o = {causal = true}},
  kv_cache_window = {B = 1, Hq = 2, Hkv = 2, T = 4, S = 11, D = 2, o = {causal = true, window = 5}},
  noncausal_segments = {B = 1, Hq = 1, Hkv = 1, T = 10, S = 10, D = 2,
              o = {segments = seg_tensor({{0, 0, 0, 0, 1, 1, 1, 1, 1, 1}})}},
}

local function make_qkv(c, dt)
  local q = randn(c.B, c.Hq, c.T, c.D, dt or "f64")
  if c.scale_q then q = q * c.scale_q end
  return q, randn(c.B, c.Hkv, c.S, c.D, dt or "f64"), randn(c.B, c.Hkv, c.S, c.D, dt or "f64")
end

t.suite("rmsnorm", {
  values = function()
    local x, w = randn(3, 5, "f64"), randn(5, "f64")
    local y, X, W, Y = lfl.rmsnorm(x, w, 1e-5), vals(x), vals(w), {}
    for r = 0, 2 do
      local ss = 0
      for j = 1, 5 do ss = ss + X[r * 5 + j] ^ 2 end
      local rs = 1 / sqrt(ss / 5 + 1e-5)
      for j = 1, 5 do Y[r * 5 + j] = X[r * 5 + j] * rs * W[j] end
    end
    t.assert_tensor_close(y, tensor(Y, {3, 5}), 1e-12, 1e-12)
    t.assert_tensor_close(lfl.rmsnorm(x:float(), w:float(), 1e-5), tensor(Y, {3, 5}), 1e-6, 1e-5, "f32")
  end,

  gradcheck = function()
    local x, w = randn(2, 3, 6, "f64"):requires_grad(), randn(6, "f64"):requires_grad()
    t.gradcheck(function(a, b) return lfl.rmsnorm(a, b, 1e-6) end, {x, w})
    -- rows with a stride (a narrow of a wider tensor) and a transposed input
    local xn = randn(4, 9, "f64"):narrow(2, 2, 6):requires_grad()
    t.gradcheck(function(a, b) return lfl.rmsnorm(a, b, 1e-6) end, {xn, w})
    local xt = randn(6, 4, "f64"):transpose():requires_grad()
    t.gradcheck(function(a, b) return lfl.rmsnorm(a, b, 1e-6) end, {xt, w})
    t.assert_tensor_close(lfl.rmsnorm(xt, w), lfl.rmsnorm(xt:contiguous(), w), 0, 0)
  end,

  f32_large_rows = function()
    -- exercises the parallel path and the chunked weight gradient
    local x, w = randn(300, 256), randn(256)
    local x64, w64 = x:double():requires_grad(), w:double():requires_grad()
    local xf, wf = x:clone():requires_grad(), w:clone():requires_grad()
    local g = randn(300, 256)
    lfl.rmsnorm(xf, wf):backward(g)
    lfl.rmsnorm(x64, w64):backward(g:double())
    t.assert_tensor_close(xf.grad, x64.grad, 1e-5, 1e-4)
    t.assert_tensor_close(wf.grad, w64.grad, 1e-4, 1e-4)
  end,

  errors = function()
    t.assert_error(function() lfl.rmsnorm(randn(2, 4), randn(5)) end, "rmsnorm: weight [5] does not match input [2,4]")
    t.assert_error(function() lfl.rmsnorm(randn(2, 4), randn(4, "f64")) end, "rmsnorm: weight is f64 but input is f32")
    t.assert_error(function() lfl.rmsnorm(lfl.zeros(2, 4, "i64"), randn(4)) end, "expected f32 or f64")
  end,
})

-- the fused LoRA linear against the ops it replaces: linear(x, w, b) + s * linear(linear(x, A), B)
local function composed_lora(x, w, b, A, B, s) return lfl.linear(x, w, b) + lfl.linear(lfl.linear(x, A), B) * s end

t.suite("lora_linear", {
  values = function()
    local x, w, b = randn(2, 3, 7, "f64"), randn(5, 7, "f64"), randn(5, "f64")
    local A, B = randn(4, 7, "f64"), randn(5, 4, "f64")
    t.assert_tensor_close(lfl.lora_linear(x, w, b, A, B, 0.5), composed_lora(x, w, b, A, B, 0.5), 1e-12, 1e-12)
    t.assert_tensor_close(lfl.lora_linear(x, w, nil, A, B, 2), composed_lora(x, w, nil, A, B, 2), 1e-12, 1e-12)
  end,

  gradcheck = function()
    local x, w, b = randn(2, 3, 7, "f64"):requires_grad(), randn(5, 7, "f64"):requires_grad(), randn(5, "f64"):requires_grad()
    local A, B = randn(4, 7, "f64"):requires_grad(), randn(5, 4, "f64"):requires_grad()
    t.gradcheck(function(xx, ww, bb, aa, bb2) return lfl.lora_linear(xx, ww, bb, aa, bb2, 0.75) end, {x, w, b, A, B})
    t.gradcheck(function(xx, aa, bb2) return lfl.lora_linear(xx, w:detach(), nil, aa, bb2, 2) end, {x, A, B})
    local xt = randn(7, 6, "f64"):transpose():requires_grad()
    t.gradcheck(function(xx, aa) return lfl.lora_linear(xx, w:detach(), nil, aa, B:detach(), 1.5) end, {xt, A})
  end,

  -- a frozen bf16 base in f32 (the training path): output and every gradient
  -- as the composed ops give them, on GEMM-sized shapes (f32 precision)
  bf16_base = function()
    -- (rows * r * n >= 1e6: dA and dB take the outer-product path; rank 12 has
    -- a block of 8 and a rest, 600 columns a tail past the 32-column blocks)
    for _, r in ipairs({8, 12}) do
      local x, w = randn(256, 512):requires_grad(), randn(600, 512):to("bf16")
      local A, B = (randn(r, 512) * 0.1):requires_grad(), (randn(600, r) * 0.1):requires_grad()
      local g = randn(256, 600)
      local y1 = lfl.lora_linear(x, w, nil, A, B, 2)
      y1:backward(g)
      local gx, gA, gB = x.grad, A.grad, B.grad
      x.grad, A.grad, B.grad = nil, nil, nil
      local y2 = composed_lora(x, w, nil, A, B, 2)
      y2:backward(g)
      t.assert_tensor_close(y1, y2, 1e-4, 1e-5, "rank " .. r .. " forward")
      t.assert_tensor_close(gx, x.grad, 1e-4, 1e-5, "rank " .. r .. " dx")
      t.assert_tensor_close(gA, A.grad, 1e-4, 1e-5, "rank " .. r .. " dA")
      t.assert_tensor_close(gB, B.grad, 1e-4, 1e-5, "rank " .. r .. " dB")
    end
  end,

  -- matmul precision "medium": the branch is folded into the bf16 base GEMM;
  -- it must equal f32 GEMMs of the operands the fused GEMM rounds to bf16
  -- (x, w, s * x A^T, B^T forward; g, w, s * g B, A for dx); dA, dB stay f32
  medium_fused = function()
    local _, has = lfl.sys.matmul_precision()
    if not has then print("SKIP  lora_linear.medium_fused: no AVX512_BF16 on this CPU"); return end
    local function r16(v) return v:to("bf16"):to("f32") end
    -- big enough for the bf16 GEMM (>= 4e6 multiply-adds), rows not a multiple of 8
    local x, w, b = randn(130, 256):requires_grad(), randn(160, 256):to("bf16"), randn(160)
    local A, B = (randn(8, 256) * 0.3):requires_grad(), (randn(160, 8) * 0.3):requires_grad()
    local g, s = randn(130, 160), 1.5
    lfl.sys.matmul_precision("medium")
    local ok, err = pcall(function()
      local y = lfl.lora_linear(x, w, b, A, B, s)
      y:backward(g)
      lfl.sys.matmul_precision("highest")
      local xd, wf = x:detach(), w:to("f32")
      local tt, u = lfl.linear(xd, A:detach()), lfl.matmul(g, B:detach())
      local want_y = lfl.linear(r16(xd), r16(wf), b) + lfl.linear(r16(tt * s), r16(B:detach()))
      local want_dx = lfl.matmul(r16(g), r16(wf)) + lfl.matmul(r16(u * s), r16(A:detach()))
      t.assert_tensor_close(y, want_y, 1e-4, 1e-5, "forward")
      t.assert_tensor_close(x.grad, want_dx, 1e-4, 1e-5, "dx")
      t.assert_tensor_close(A.grad, lfl.matmul(u:transpose(), xd) * s, 1e-4, 1e-5, "dA")
      t.assert_tensor_close(B.grad, lfl.matmul(g:transpose(), tt) * s, 1e-4, 1e-5, "dB")
    end)
    lfl.sys.matmul_precision("highest")
    if not ok then error(err, 0) end
  end,

  -- a checkpoint's replay: the output given from a forward without grad, the
  -- node records the same backward (f32 plain, and the fused bf16 GEMM under
  -- "medium", whose side product the replay must recompute bit for bit)
  replay = function()
    local _, has = lfl.sys.matmul_precision()
    for _, prec in ipairs(has and {"highest", "medium"} or {"highest"}) do
      lfl.sys.matmul_precision(prec)
      local ok, err = pcall(function()
        local x, w, b = randn(130, 256):requires_grad(), randn(160, 256):to("bf16"), randn(160)
        local A, B = (randn(8, 256) * 0.3):requires_grad(), (randn(160, 8) * 0.3):requires_grad()
        local g = randn(130, 160)
        lfl.lora_linear(x, w, b, A, B, 1.5):backward(g)
        local want = {x.grad, A.grad, B.grad}
        x.grad, A.grad, B.grad = nil, nil, nil
        local y0 = lfl.no_grad(function() return lfl.lora_linear(x, w, b, A, B, 1.5) end)
        local y = lfl.lora_linear(x, w, b, A, B, 1.5, y0)
        t.assert(y:grad_fn() == "lora_linear", prec .. ": replay records the node")
        t.assert_eq(lfl.lora_linear(x, w, b, A, B, 1.5, lfl.zeros(130, 160)):abs():max():item(), 0,
          prec .. ": the given output is returned, not recomputed")
        y:backward(g)
        for i, got in ipairs({x.grad, A.grad, B.grad}) do
          t.assert_eq((got - want[i]):abs():max():item(), 0, prec .. ": gradient " .. i)
        end
        -- with the forward's side product kept as well: the same gradients,
        -- and dB comes from the given side product, not a recomputed one
        x.grad, A.grad, B.grad = nil, nil, nil
        local y1, side = lfl.no_grad(function() return lfl.lora_linear(x, w, b, A, B, 1.5, {keep_side = true}) end)
        t.assert_eq((y1 - y0):abs():max():item(), 0, prec .. ": keep_side leaves the output as it was")
        t.assert_tensor_close(side, lfl.linear(x:detach(), A:detach()), 1e-4, 1e-5, prec .. ": side = x A^T")
        lfl.lora_linear(x, w, b, A, B, 1.5, {given = y1, side = side}):backward(g)
        for i, got in ipairs({x.grad, A.grad, B.grad}) do
          t.assert_eq((got - want[i]):abs():max():item(), 0, prec .. ": gradient " .. i .. " with the side given")
        end
        B.grad = nil
        lfl.lora_linear(x, w, b, A, B, 1.5, {given = lfl.zeros(130, 160), side = side * 0}):backward(g)
        t.assert_eq(B.grad:abs():max():item(), 0, prec .. ": dB from the given side product")
      end)
      lfl.sys.matmul_precision("highest")
      if not ok then error(err, 0) end
    end
    local x, w, A, B = randn(2, 7), randn(5, 7), randn(4, 7), randn(5, 4)
    t.assert_error(function() lfl.lora_linear(x, w, nil, A, B, 1, randn(2, 4)) end,
      "the given output [2,4] is not a contiguous f32 tensor of its shape")
    t.assert_error(function() lfl.lora_linear(x, w, nil, A, B, 1, {given = randn(2, 5), side = randn(2, 3)}) end,
      "the given side product [2,3] is not a contiguous f32 tensor of its shape")
    t.assert_error(function() lfl.lora_linear(x, w, nil, A, B, 1, {side = randn(2, 4)}) end,
      "a given side product needs the given output")
    t.assert_error(function() lfl.lora_linear(x, w, nil, A, B, 1, {keep_sides = true}) end,
      "lora_linear: unknown option 'keep_sides' (given, side, keep_side)")
    local used = lfl.lora_linear(x, w:requires_grad(), nil, A, B, 1)
    t.assert_error(function() lfl.lora_linear(x, w, nil, A, B, 1, used) end, "must be a plain tensor")
  end,

  errors = function()
    local x, w = randn(2, 7), randn(5, 7)
    t.assert_error(function() lfl.lora_linear(x, w, nil, randn(4, 6), randn(5, 4), 1) end,
      "lora_linear: A [4,6] and B [5,4] do not fit weight [5, 7]")
    t.assert_error(function() lfl.lora_linear(x, w, nil, randn(4, 7, "f64"), randn(5, 4), 1) end,
      "must have the input's dtype f32")
  end,
})

t.suite("layernorm", {
  values = function()
    local x, w, b = randn(3, 5, "f64"), randn(5, "f64"), randn(5, "f64")
    local X, W, Bv, Y = vals(x), vals(w), vals(b), {}
    for r = 0, 2 do
      local mu, var = 0, 0
      for j = 1, 5 do mu = mu + X[r * 5 + j] / 5 end
      for j = 1, 5 do var = var + (X[r * 5 + j] - mu) ^ 2 / 5 end
      for j = 1, 5 do Y[r * 5 + j] = (X[r * 5 + j] - mu) / sqrt(var + 1e-5) * W[j] + Bv[j] end
    end
    t.assert_tensor_close(lfl.layernorm(x, w, b, 1e-5), tensor(Y, {3, 5}), 1e-12, 1e-12)
  end,

  gradcheck = function()
    local x, w, b = randn(2, 3, 6, "f64"):requires_grad(), randn(6, "f64"):requires_grad(), randn(6, "f64"):requires_grad()
    t.gradcheck(function(a, ww, bb) return lfl.layernorm(a, ww, bb, 1e-5) end, {x, w, b})
    t.gradcheck(function(a, ww) return lfl.layernorm(a, ww, nil, 1e-5) end, {x, w})
    t.gradcheck(function(a) return lfl.layernorm(a, nil, nil, 1e-5) end, {x})
    local xt = randn(6, 4, "f64"):transpose():requires_grad()
    t.gradcheck(function(a, ww, bb) return lfl.layernorm(a, ww, bb, 1e-5) end, {xt, w, b})
  end,

  errors = function()
    t.assert_error(function() lfl.layernorm(randn(2, 4), randn(4), randn(3)) end, "layernorm: bias [3] does not match input [2,4]")
  end,
})

-- out = x * cos + rotate_half(x) * sin, elementwise in Lua
local function ref_rope(x, c, s)
  local B, H, T, D = unpack(x:size())
  local X, C, S, Y, h = vals(x), vals(c), vals(s), {}, D / 2
  local Bc = c:dim() == 3 and c:size()[1] or 1
  for b = 0, B - 1 do for hh = 0, H - 1 do for i = 0, T - 1 do
    local base, cb = ((b * H + hh) * T + i) * D, ((Bc == 1 and 0 or b) * T + i) * D
    for j = 0, D - 1 do
      local rot = j < h and -X[base + j + h + 1] or X[base + j - h + 1]
      Y[base + j + 1] = X[base + j + 1] * C[cb + j + 1] + rot * S[cb + j + 1]
    end
  end end end
  return tensor(Y, {B, H, T, D})
end

t.suite("rope", {
  values_and_gradcheck = function()
    -- arbitrary cos/sin (halves differ) so the backward's transpose is really tested
    local x = randn(2, 3, 4, 6, "f64")
    for _, cs in ipairs({{randn(2, 4, 6, "f64"), randn(2, 4, 6, "f64")}, {randn(1, 4, 6, "f64"), randn(1, 4, 6, "f64")},
                         {randn(4, 6, "f64"), randn(4, 6, "f64")}}) do
      local c, s = cs[1], cs[2]
      t.assert_tensor_close(lfl.rope(x, c, s), ref_rope(x, c, s), 1e-12, 1e-12)
      t.gradcheck(function(a) return lfl.rope(a, c, s) end, {x:clone():requires_grad()})
    end
  end,

  noncontiguous = function()
    -- q as it comes out of a projection: [B, T, H, D] viewed as [B, H, T, D]
    local x = randn(2, 4, 3, 6, "f64"):transpose(2, 3):requires_grad()
    local c, s = randn(2, 4, 6, "f64"), randn(2, 4, 6, "f64")
    t.assert(not x:is_contiguous())
    t.assert_tensor_close(lfl.rope(x, c, s), ref_rope(x:contiguous(), c, s), 1e-12, 1e-12)
    t.gradcheck(function(a) return lfl.rope(a, c, s) end, {x})
  end,

  cos_sin = function()
    local pos = lfl.tensor({{0, 1, 2, 3, 4}, {0, 1, 0, 1, 2}}, "i64")
    local inv = lfl.tensor({1, 0.1, 0.01})
    local c, s = lfl.rope_cos_sin(pos, inv)
    t.assert_eq(table.concat(c:size(), ","), "2,5,6")
    local P, I = vals(pos), vals(inv)
    for r = 0, 9 do for k = 0, 2 do
      for _, half in ipairs({0, 3}) do
        local idx = {floor(r / 5) + 1, r % 5 + 1, k + half + 1}
        t.assert_close(c[idx], math.cos(P[r + 1] * I[k + 1]), 1e-6)
        t.assert_close(s[idx], math.sin(P[r + 1] * I[k + 1]), 1e-6)
      end
    end end
    local c2 = lfl.rope_cos_sin(lfl.tensor({0, 1, 2, 3, 4}, "i64"), inv, "f64", 0.5)
    t.assert_eq(table.concat(c2:size(), ","), "1,5,6")
    t.assert_tensor_close(c2:view(5, 6), c:select(1, 1):double() * 0.5, 1e-7, 0)
  end,

  errors = function()
    local x = randn(1, 2, 3, 4)
    t.assert_error(function() lfl.rope(x, randn(1, 3, 6), randn(1, 3, 6)) end, "rope: cos [1,3,6] / sin [1,3,6] should be [1 or 1, 3, 4]")
    t.assert_error(function() lfl.rope(randn(1, 2, 3, 5), randn(3, 5), randn(3, 5)) end, "must be even")
    t.assert_error(function() lfl.rope(x, randn(3, 4, "f64"), randn(3, 4, "f64")) end, "cast them")
    t.assert_error(function() lfl.rope_cos_sin(randn(2, 3), randn(2)) end, "expected i64")
  end,
})

t.suite("glu", {
  swiglu = function()
    local g, u = randn(3, 7, "f64") * 3, randn(3, 7, "f64")
    local G, U, Y = vals(g), vals(u), {}
    for i = 1, #G do Y[i] = G[i] / (1 + exp(-G[i])) * U[i] end
    t.assert_tensor_close(lfl.swiglu(g, u), tensor(Y, {3, 7}), 1e-12, 1e-12)
    t.gradcheck(function(a, b) return lfl.swiglu(a, b) end, {g:requires_grad(), u:requires_grad()})
    -- a gate/up pair split from one fused projection: strided rows
    local gu = randn(3, 14, "f64")
    t.gradcheck(function(a, b) return lfl.swiglu(a, b) end,
                {gu:narrow(2, 1, 7):requires_grad(), gu:narrow(2, 8, 7):requires_grad()})
  end,

  geglu = function()
    local g, u = randn(3, 7, "f64") * 3, randn(3, 7, "f64")
    for _, th in ipairs({false, true}) do
      t.gradcheck(function(a, b) return lfl.geglu(a, b, th) end, {g:clone():requires_grad(), u:clone():requires_grad()})
    end
    local G, U, Y = vals(g), vals(u), {}
    local k = sqrt(2 / math.pi)
    for i = 1, #G do Y[i] = 0.5 * G[i] * (1 + tanh(k * (G[i] + 0.044715 * G[i] ^ 3))) * U[i] end
    t.assert_tensor_close(lfl.geglu(g, u, "tanh"), tensor(Y, {3, 7}), 1e-12, 1e-12)
  end,

  f32_matches_f64 = function()
    -- the vectorised exp/tanh/normal-CDF of the f32 path over a wide range
    local g = lfl.arange(-2000, 2000, 1, "f64") * 0.01     -- [-20, 20)
    local u = randn(4000, "f64")
    local go = randn(4000, "f64")
    for name, fn in pairs({swiglu = function(a, b) return lfl.swiglu(a, b) end,
                           gelu = function(a, b) return lfl.geglu(a, b, false) end,
                           gelu_tanh = function(a, b) return lfl.geglu(a, b, true) end}) do
      local g64, u64 = g:clone():requires_grad(), u:clone():requires_grad()
      local g32, u32 = g:float():requires_grad(), u:float():requires_grad()
      local y64, y32 = fn(g64, u64), fn(g32, u32)
      y64:backward(go); y32:backward(go:float())
      t.assert_tensor_close(y32, y64, 2e-6, 1e-5, name)
      t.assert_tensor_close(g32.grad, g64.grad, 2e-6, 1e-5, name .. " dgate")
      t.assert_tensor_close(u32.grad, u64.grad, 2e-6, 1e-5, name .. " dup")
    end
  end,

  errors = function()
    t.assert_error(function() lfl.swiglu(randn(2, 3), randn(2, 4)) end, "swiglu: gate [2,3] and up [2,4] should have the same shape")
    t.assert_error(function() lfl.geglu(randn(2, 3), randn(2, 3), "erf") end, "approximate must be")
  end,
})

t.suite("attention", {
  values = function()
    for name, c in pairs(configs) do
      local q, k, v = make_qkv(c)
      t.assert_tensor_close(lfl.attention(q, k, v, c.o), ref_attention(q, k, v, c.o), 1e-12, 1e-10, name)
    end
  end,

  gradcheck = function()
    for name, c in pairs(configs) do
      local q, k, v = make_qkv(c)
      local ok, err = pcall(t.gradcheck, function(a, b, cc) return lfl.attention(a, b, cc, c.o) end,
                            {q:requires_grad(), k:requires_grad(), v:requires_grad()})
      if not ok then error(name .. ": " .. tostring(err), 0) end
    end
  end,

  noncontiguous = function()
    -- q/k/v as projections give them: [B, T, H, D] transposed to [B, H, T, D]
    local q = randn(2, 10, 4, 3, "f64"):transpose(2, 3):requires_grad()
    local k = randn(2, 10, 2, 3, "f64"):transpose(2, 3):requires_grad()
    local v = randn(2, 10, 2, 3, "f64"):transpose(2, 3):requires_grad()
    local o = {causal = true, window = 6}
    t.assert_tensor_close(lfl.attention(q, k, v, o), ref_attention(q:contiguous(), k:contiguous(), v:contiguous(), o), 1e-12, 1e-10)
    t.gradcheck(function(a, b, c) return lfl.attention(a, b, c, o) end, {q, k, v})
    -- the output is a [B, H, T, D] view of [B, T, H, D]: transpose back is free
    local out = lfl.attention(q, k, v, o)
    t.assert(out:transpose(2, 3):is_contiguous(), "attention output transposes to a contiguous [B, T, H, D]")
  end,

  strided_head_dim = function()
    -- q (and so o's gradient path) with a non-unit stride along D takes the
    -- backward's general copy loop; contiguous copies take its vectorised one:
    -- the two must agree (f64, several tiles, odd T and D; f32, 64-row tiles)
    for _, c in ipairs({{dt = "f64", T = 13, D = 5, tol = 1e-12}, {dt = "f32", T = 75, D = 12, tol = 1e-5}}) do
      local qt = randn(2, 4, c.D, c.T, c.dt)
      local k, v = randn(2, 2, c.T, c.D, c.dt), randn(2, 2, c.T, c.D, c.dt)
      local go = randn(2, 4, c.T, c.D, c.dt)
      local o = {causal = true, segments = lfl.tensor({{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3}}, "i64")}
      if c.T ~= 13 then o = {causal = true, window = 40} end
      -- strided: the leaf is [B, H, D, T] and attention sees its transpose
      local function run(strided)
        local a = strided and qt:clone():requires_grad() or qt:transpose(3, 4):contiguous():requires_grad()
        local b, cc = k:clone():requires_grad(), v:clone():requires_grad()
        local qq = strided and a:transpose(3, 4) or a
        if strided then t.assert(qq:stride()[4] ~= 1, "the strided query has a non-unit D stride") end
        local out = lfl.attention(qq, b, cc, o)
        out:backward(go)
        return {out, strided and a.grad:transpose(3, 4) or a.grad, b.grad, cc.grad}
      end
      local rs, rc = run(true), run(false)
      for i, what in ipairs({"out", "dq", "dk", "dv"}) do
        t.assert_tensor_close(rs[i], rc[i], c.tol, c.tol, c.dt .. " " .. what)
      end
    end
  end,

  fully_masked_rows = function()
    -- causal with fewer keys than queries: the first T - S queries see nothing
    local q, k, v = randn(1, 2, 5, 3, "f64"), randn(1, 1, 3, 3, "f64"), randn(1, 1, 3, 3, "f64")
    local out = lfl.attention(q, k, v, {causal = true})
    t.assert_tensor_close(out, ref_attention(q, k, v, {causal = true}), 1e-12, 1e-10)
    for i = 1, 2 do for d = 1, 3 do t.assert_eq(out[{1, 1, i, d}], 0) end end
    t.gradcheck(function(a, b, c) return lfl.attention(a, b, c, {causal = true}) end,
                {q:requires_grad(), k:requires_grad(), v:requires_grad()})
  end,

  f32_tiles_match_f64 = function()
    -- several 64-row f32 tiles (and 8-row f64 tiles), every mask kind, S > T
    lfl.manual_seed(7)
    local seg = {}
    for b = 1, 2 do
      seg[b] = {}
      local id, left = 0, 0
      for i = 1, 150 do
        if left == 0 then id = id + 1; left = (b == 1) and ({70, 9, 71})[id] or ({30, 100, 20})[id] end
        seg[b][i] = id; left = left - 1
      end
    end
    local cases = {
      {T = 150, S = 150, o = {}},
      {T = 150, S = 150, o = {causal = true}},
      {T = 150, S = 150, o = {causal = true, window = 40}},
      {T = 150, S = 150, o = {causal = true, softcap = 2, scale = 0.4}},
      {T = 150, S = 150, o = {causal = true, segments = lfl.tensor(seg, "i64")}},
      {T = 150, S = 150, o = {causal = true, window = 25, segments = lfl.tensor(seg, "i64")}},
      {T = 70, S = 200, o = {causal = true}},
      {T = 70, S = 200, o = {causal = true, window = 90}},
    }
    for n, c in ipairs(cases) do
      local q, k, v = randn(2, 4, c.T, 16), randn(2, 2, c.S, 16), randn(2, 2, c.S, 16)
      local go = randn(2, 4, c.T, 16)
      local function run(dt)
        local a, b, cc = q:to(dt):clone():requires_grad(), k:to(dt):clone():requires_grad(), v:to(dt):clone():requires_grad()
        local out = lfl.attention(a, b, cc, c.o)
        out:backward(go:to(dt))
        return out, a.grad, b.grad, cc.grad
      end
      local r32, r64 = {run("f32")}, {run("f64")}
      for i, what in ipairs({"out", "dq", "dk", "dv"}) do
        t.assert_tensor_close(r32[i], r64[i], 2e-5, 1e-4, "case " .. n .. " " .. what)
      end
    end
  end,

  -- matmul precision "medium": the f32 tiles multiply bf16-rounded operands
  -- (softmax in f32); against f64 within bf16 rounding, for head sizes 16 and
  -- 64 and every mask kind; and not equal to the f32 tiles (the path is taken)
  f32_tiles_medium = function()
    local _, has = lfl.sys.matmul_precision()
    if not has then print("SKIP  attention.f32_tiles_medium: no AVX512_BF16 on this CPU"); return end
    lfl.manual_seed(11)
    local rows = {{}, {}}
    for i = 1, 150 do rows[1][i] = i <= 90 and 1 or 2; rows[2][i] = i <= 30 and 1 or 2 end
    local seg = lfl.tensor(rows, "i64")
    local cases = {
      {T = 150, S = 150, D = 64, o = {causal = true}},
      {T = 150, S = 150, D = 16, o = {}},
      {T = 150, S = 150, D = 64, o = {causal = true, window = 40, softcap = 2}},
      {T = 150, S = 150, D = 64, o = {causal = true, segments = seg}},
      {T = 70, S = 200, D = 64, o = {causal = true}},
    }
    local ok, err = pcall(function()
      for n, c in ipairs(cases) do
        local q, k, v = randn(2, 4, c.T, c.D), randn(2, 2, c.S, c.D), randn(2, 2, c.S, c.D)
        local go = randn(2, 4, c.T, c.D)
        local function run(dt, prec)
          lfl.sys.matmul_precision(prec)
          local a, b, cc = q:to(dt):clone():requires_grad(), k:to(dt):clone():requires_grad(), v:to(dt):clone():requires_grad()
          local out = lfl.attention(a, b, cc, c.o)
          out:backward(go:to(dt))
          lfl.sys.matmul_precision("highest")
          return {out, a.grad, b.grad, cc.grad}
        end
        local med, hi, r64 = run("f32", "medium"), run("f32", "highest"), run("f64", "highest")
        for i, what in ipairs({"out", "dq", "dk", "dv"}) do
          t.assert_tensor_close(med[i], r64[i], 5e-2, 5e-2, "case " .. n .. " " .. what)
          t.assert(t.max_abs_diff(med[i], hi[i]) > 1e-5, "case " .. n .. " " .. what .. ": medium equals highest")
        end
      end
    end)
    lfl.sys.matmul_precision("highest")
    if not ok then error(err, 0) end
  end,

  deterministic = function()
    -- partitioned dQ sums in a fixed order: bitwise equal runs
    local q, k, v = randn(1, 6, 300, 32), randn(1, 2, 300, 32), randn(1, 2, 300, 32)
    local go = randn(1, 6, 300, 32)
    local function run()
      local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
      lfl.attention(a, b, c, {causal = true}):backward(go)
      return a.grad, b.grad, c.grad
    end
    local a1, b1, c1 = run()
    local a2, b2, c2 = run()
    t.assert_tensor_close(a1, a2, 0, 0); t.assert_tensor_close(b1, b2, 0, 0); t.assert_tensor_close(c1, c2, 0, 0)
    -- and the same bits on one thread (work splits depend on shapes only)
    local nt = lfl.sys.threads()
    lfl.sys.threads(1)
    local ok, a3, b3, c3 = pcall(run)
    lfl.sys.threads(nt)
    t.assert(ok, tostring(a3))
    t.assert_tensor_close(a1, a3, 0, 0); t.assert_tensor_close(b1, b3, 0, 0); t.assert_tensor_close(c1, c3, 0, 0)
  end,

  empty = function()
    for _, dt in ipairs({"f32", "f64"}) do
      -- no queries
      local q, k, v = randn(1, 2, 0, 4, dt):requires_grad(), randn(1, 1, 3, 4, dt):requires_grad(), randn(1, 1, 3, 4, dt):requires_grad()
      local out = lfl.attention(q, k, v, {causal = true})
      t.assert_eq(table.concat(out:size(), ","), "1,2,0,4")
      out:sum():backward()
      t.assert_tensor_close(k.grad, lfl.zeros(1, 1, 3, 4, dt), 0, 0)
      -- no keys: every query sees nothing
      q, k, v = randn(1, 2, 3, 4, dt):requires_grad(), randn(1, 1, 0, 4, dt):requires_grad(), randn(1, 1, 0, 4, dt):requires_grad()
      out = lfl.attention(q, k, v)
      t.assert_tensor_close(out, lfl.zeros(1, 2, 3, 4, dt), 0, 0)
      out:sum():backward()
      t.assert_tensor_close(q.grad, lfl.zeros(1, 2, 3, 4, dt), 0, 0)
    end
  end,

  -- keep_lse returns the log-sum-exps; given = {out, lse} replays the forward
  -- (a checkpoint's recompute) and backward gives the same gradients
  replay = function()
    for name, c in pairs(configs) do
      local q, k, v = make_qkv(c)
      q, k, v = q:requires_grad(), k:requires_grad(), v:requires_grad()
      local g = lfl.randn(q:size(), q:dtype())
      lfl.attention(q, k, v, c.o):backward(g)
      local want = {q.grad, k.grad, v.grad}
      q.grad, k.grad, v.grad = nil, nil, nil
      local o = {}
      for key, val in pairs(c.o or {}) do o[key] = val end
      o.keep_lse = true
      local out, lse = lfl.no_grad(function() return lfl.attention(q, k, v, o) end)
      t.assert_eq(table.concat(lse:size(), ","), table.concat({q:size(1), q:size(2), q:size(3)}, ","), name .. ": lse shape")
      o.keep_lse, o.given = nil, {out, lse}
      local y = lfl.attention(q, k, v, o)
      t.assert(y:grad_fn() == "attention", name .. ": replay records the node")
      t.assert_eq(lfl.attention(q, k, v, {given = {lfl.zeros(out:size(), out:dtype()), lse}}):abs():max():item(), 0,
        name .. ": the given output is returned, not recomputed")
      y:backward(g)
      for i, got in ipairs({q.grad, k.grad, v.grad}) do
        t.assert_eq((got - want[i]):abs():max():item(), 0, name .. ": gradient " .. i)
      end
    end
    local q = randn(1, 2, 5, 8)
    t.assert_error(function() lfl.attention(q, q, q, {given = {randn(1, 2, 5, 8), randn(1, 2, 4)}}) end,
      "attention: a replay needs the output [1, 2, 5, 8] and log-sum-exps [1, 2, 5]")
  end,

  -- sinks (GPT-OSS): a per-head logit in every row's denominator; values,
  -- gradients (the sinks' too) in every masking configuration, rows that see
  -- no key (their output stays 0), f32 tiles and the one-query decode path,
  -- the log-sum-exps including the sink, replay, bad input
  sinks = function()
    for name, c in pairs(configs) do
      local q, k, v = make_qkv(c)
      local o = {}
      for key, val in pairs(c.o) do o[key] = val end
      o.sinks = randn(c.Hq, "f64")
      t.assert_tensor_close(lfl.attention(q, k, v, o), ref_attention(q, k, v, o), 1e-12, 1e-10, name)
      t.assert(t.max_abs_diff(lfl.attention(q, k, v, o), lfl.attention(q, k, v, c.o)) > 1e-3, name .. ": sinks matter")
      local sk = o.sinks:clone():requires_grad()
      local ok, err = pcall(t.gradcheck, function(a, b, cc, s)
        local o2 = {}
        for key, val in pairs(o) do o2[key] = val end
        o2.sinks = s
        return lfl.attention(a, b, cc, o2)
      end, {q:requires_grad(), k:requires_grad(), v:requires_grad(), sk})
      if not ok then error(name .. ": " .. tostring(err), 0) end
    end
    -- fewer keys than queries: the first queries see only the sink
    local q, k, v = randn(1, 2, 5, 3, "f64"), randn(1, 1, 3, 3, "f64"), randn(1, 1, 3, 3, "f64")
    local o = {causal = true, sinks = lfl.tensor({0.5, -1}, "f64")}
    local out, lse = lfl.attention(q, k, v, {causal = true, sinks = o.sinks, keep_lse = true})
    t.assert_tensor_close(out, ref_attention(q, k, v, o), 1e-12, 1e-10)
    t.assert_eq(out[{1, 1, 1, 1}], 0)
    t.assert_close(lse[{1, 2, 1}], -1, 1e-12, "a row that sees no key: lse is the sink")
    t.gradcheck(function(a, b, c, s) return lfl.attention(a, b, c, {causal = true, sinks = s}) end,
                {q:requires_grad(), k:requires_grad(), v:requires_grad(), o.sinks:clone():requires_grad()})
    -- f32: 64 x 64 tiles (T 70) and the decode path (T 1)
    for _, T in ipairs({70, 1}) do
      local qf, kf, vf = randn(2, 4, T, 8), randn(2, 2, 70, 8), randn(2, 2, 70, 8)
      local sf = randn(4)
      local of = {causal = true, window = T == 1 and 0 or 20, sinks = sf}
      local od = {causal = true, window = of.window, sinks = sf:double()}
      t.assert_tensor_close(lfl.attention(qf, kf, vf, of):double(),
        lfl.attention(qf:double(), kf:double(), vf:double(), od), 1e-5, 1e-5, "f32 T " .. T)
    end
    -- replay: the given output and lse' give the same gradients, the sinks' included
    local c = configs.gqa_causal
    q, k, v = make_qkv(c)
    q, k, v = q:requires_grad(), k:requires_grad(), v:requires_grad()
    local s = randn(c.Hq, "f64"):requires_grad()
    local g = lfl.randn(q:size(), "f64")
    lfl.attention(q, k, v, {causal = true, sinks = s}):backward(g)
    local want = {q.grad, k.grad, v.grad, s.grad}
    q.grad, k.grad, v.grad, s.grad = nil, nil, nil, nil
    local o1, l1 = lfl.no_grad(function() return lfl.attention(q, k, v, {causal = true, sinks = s, keep_lse = true}) end)
    lfl.attention(q, k, v, {causal = true, sinks = s, given = {o1, l1}}):backward(g)
    for i, got in ipairs({q.grad, k.grad, v.grad, s.grad}) do
      t.assert_eq((got - want[i]):abs():max():item(), 0, "replayed gradient " .. i)
    end
    local q4 = randn(1, 4, 5, 8)
    local k4 = randn(1, 2, 5, 8)
    t.assert_error(function() lfl.attention(q4, k4, k4, {sinks = randn(2)}) end,
      "attention: sinks [2] of f32 should be f32 [4] (one logit per query head)")
    t.assert_error(function() lfl.attention(q4, k4, k4, {sinks = randn(4, "f64")}) end, "sinks [4] of f64 should be f32")
  end,

  errors = function()
    local q, k = randn(1, 4, 5, 8), randn(1, 3, 5, 8)
    t.assert_error(function() lfl.attention(q, k, k) end, "attention: 4 query heads are not a multiple of 3 kv heads")
    t.assert_error(function() lfl.attention(q, randn(1, 2, 5, 4), randn(1, 2, 5, 4)) end, "should both be [1, Hkv, S, 8]")
    t.assert_error(function() lfl.attention(randn(4, 5, 8), k, k) end, "should be [B, Hq, T, D]")
    local k2 = randn(1, 2, 5, 8)
    t.assert_error(function() lfl.attention(q, k2, k2, {window = 3}) end, "a sliding window needs causal = true")
    t.assert_error(function() lfl.attention(q, k2, k2, {causal = true, window = -1}) end, "window must be >= 0")
    t.assert_error(function() lfl.attention(q, k2, k2, {sliding_window = 3}) end, "unknown option 'sliding_window'")
    t.assert_error(function() lfl.attention(q, k2, k2, {segments = lfl.zeros(1, 5)}) end, "segments [1,5] of f32 should be i64 [1, 5]")
    local k3 = randn(1, 2, 7, 8)
    t.assert_error(function() lfl.attention(q, k3, k3, {segments = lfl.zeros(1, 5, "i64")}) end, "segments need as many keys as queries")
    t.assert_error(function() lfl.attention(q, k2:double(), k2:double()) end, "dtypes differ")
  end,
})

t.run()
