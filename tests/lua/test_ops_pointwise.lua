-- Pointwise ops: the unary kinds, pow, comparisons, where, masked_fill and
-- dropout. Values against formulas evaluated in plain Lua (double), gradients
-- by finite differences in f64 (incl. broadcast and transposed inputs),
-- dropout statistics and reproducibility, error messages.
local t = lfl.test
local exp, log, sqrt, abs, floor = math.exp, math.log, math.sqrt, math.abs, math.floor

-- ---- reference math in plain Lua ----

-- erf(x) for |x| <= 2.5: 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)),
-- a series of positive terms (no cancellation).
local function erf_series(x)
  local term, sum, n = x, x, 0
  while abs(term) > 1e-17 * abs(sum) do
    n = n + 1
    term = term * 2 * x * x / (2 * n + 1)
    sum = sum + term
  end
  return 2 / sqrt(math.pi) * exp(-x * x) * sum
end

-- erfc(x) for x >= 2.5 by its continued fraction, evaluated from the tail:
-- erfc x = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
local function erfc_cf(x)
  local d = x
  for k = 200, 1, -1 do d = x + (k / 2) / d end
  return exp(-x * x) / sqrt(math.pi) / d
end

-- erfc for any x, accurate to a relative ~1e-14 including the far tail
local function erfc(x)
  if x >= 2.5 then return erfc_cf(x) end
  if x <= -2.5 then return 2 - erfc_cf(-x) end
  return 1 - erf_series(x)
end

local K0 = sqrt(2 / math.pi)
local ref = {
  neg = function(x) return -x end,
  exp = exp,
  log = log,
  sqrt = sqrt,
  rsqrt = function(x) return 1 / sqrt(x) end,
  abs = abs,
  tanh = math.tanh,
  sigmoid = function(x) return 1 / (1 + exp(-x)) end,
  silu = function(x) return x / (1 + exp(-x)) end,
  gelu = function(x) return 0.5 * x * erfc(-x / sqrt(2)) end,
  gelu_tanh = function(x) return 0.5 * x * (1 + math.tanh(K0 * (x + 0.044715 * x ^ 3))) end,
  relu = function(x) return x > 0 and x or 0 end,
}
local KINDS = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "silu", "gelu", "gelu_tanh", "relu"}
local POSITIVE = {log = true, sqrt = true, rsqrt = true}   -- domain x > 0
local KINKED = {abs = true, relu = true}                   -- keep away from 0

-- n inputs in the kind's domain, spread over [-lim, lim] (or (0, lim])
local function inputs(kind, n, lim)
  local v = {}
  for i = 1, n do
    local u = (i - 0.5) / n                                -- (0, 1)
    if POSITIVE[kind] then v[i] = 1e-3 + lim * u * u
    else
      v[i] = lim * (2 * u - 1)
      if KINKED[kind] and abs(v[i]) < 0.1 then v[i] = v[i] < 0 and -0.1 or 0.1 end
    end
  end
  return v
end

-- random f64 values in a kind's domain, shape `size`, as a fresh leaf
local function domain_randn(kind, size)
  local x = lfl.randn(size, "f64")
  if POSITIVE[kind] then return lfl.rand(size, "f64") * 2 + 0.3 end
  if KINKED[kind] then
    local s = lfl.where(x:lt(0), -1, 1):double()
    return x:abs() * s + s * 0.2                           -- |x| >= 0.2
  end
  return x
end

-- number of elements where |a - b| > atol + rtol |b| (tensor ops, for big tensors)
local function count_far(a, b, atol, rtol)
  local far = (a:double() - b:double()):abs():gt(b:double():abs() * rtol + atol)
  return far:to("f64"):sum():item()
end

t.suite("pointwise", {
  reference_erf_is_right = function()
    -- the test's own erf/erfc against published values
    t.assert_close(1 - erfc(1), 0.8427007929497149, 1e-15)
    t.assert_close(erfc(0.5), 0.4795001221869535, 1e-15)
    t.assert_close(erfc(3), 2.209049699858544e-05, 1e-13)
    t.assert_close(erfc(5), 1.537459794428035e-12, 1e-12)
    t.assert_close(erfc(-2), 1.995322265018953, 1e-15)
    t.assert_close(erfc(2.5), 4.069520174449590e-04, 1e-13)
  end,

  unary_values_f64 = function()
    for _, k in ipairs(KINDS) do
      local v = inputs(k, 41, k == "exp" and 30 or 8)
      local x = lfl.tensor(v, "f64")
      local want = {}
      for i = 1, #v do want[i] = ref[k](v[i]) end
      -- the tanh form of the reference cancels in the negative tail: 1e-14 absolute
      local atol = k == "gelu_tanh" and 1e-14 or 1e-300
      t.assert_tensor_close(lfl[k](x), lfl.tensor(want, "f64"), atol, 1e-12, k)
      t.assert_tensor_close(x[k](x), lfl.tensor(want, "f64"), atol, 1e-12, k .. " method")
    end
  end,

  unary_values_f32 = function()
    for _, k in ipairs(KINDS) do
      local v = inputs(k, 61, k == "exp" and 80 or 10)
      local x = lfl.tensor(v, "f32")
      local want = {}
      for i = 1, #v do want[i] = ref[k](x[i]) end         -- of the f32-rounded input
      local y = x[k](x)
      t.assert_eq(y:dtype(), "f32")
      -- erfc in f32 loses a little relative accuracy deep in the tail (x ~ -10)
      local atol = k == "gelu_tanh" and 1e-14 or 1e-37
      t.assert_tensor_close(y, lfl.tensor(want, "f64"), atol, k == "gelu" and 1e-5 or 3e-6, k)
    end
    -- the negative tails keep their relative accuracy down to the f32 range
    -- (1e-44 absolute: gelu_tanh(-12) underflows). gelu_tanh's reference
    -- here is its identity 0.5 x (1 + tanh u) = x / (1 + e^{-2u}), which does
    -- not cancel
    local x = lfl.tensor({-6, -9, -12}, "f32")
    local tail = {
      gelu = ref.gelu, silu = ref.silu, sigmoid = ref.sigmoid,
      gelu_tanh = function(v) return v / (1 + exp(-2 * K0 * (v + 0.044715 * v ^ 3))) end,
    }
    for k, f in pairs(tail) do
      local want = {}
      for i = 1, 3 do want[i] = f(x[i]) end
      t.assert_tensor_close(x[k](x), lfl.tensor(want, "f64"), 1e-44, 2e-5, k .. " tail")
    end
  end,

  unary_special_values = function()
    local inf, nan = math.huge, 0 / 0
    local x = lfl.tensor({100, -200, 0, inf, -inf}, "f32")
    local e = x:exp()
    t.assert(e[1] == inf and e[2] == 0 and e[3] == 1 and e[4] == inf and e[5] == 0, "exp specials")
    local l = lfl.tensor({0, -1, inf, 1}, "f32"):log()
    t.assert(l[1] == -inf and l[2] ~= l[2] and l[3] == inf and l[4] == 0, "log specials")
    local s = lfl.tensor({-1, 0, 4}, "f32"):sqrt()
    t.assert(s[1] ~= s[1] and s[2] == 0 and s[3] == 2, "sqrt specials")
    t.assert_tensor_close(lfl.tensor({-inf, inf, -50, 50}):tanh(), {-1, 1, -1, 1}, 0, 0)
    t.assert_tensor_close(lfl.tensor({-inf, inf, -200}):sigmoid(), {0, 1, 0}, 0, 0)
    local si = lfl.tensor({inf, -200, 200}):silu()
    t.assert(si[1] == inf and si[2] == 0 and si[3] == 200, "silu specials")
    local r = lfl.tensor({nan, -1, 3}):relu()
    t.assert(r[1] ~= r[1] and r[2] == 0 and r[3] == 3, "relu keeps NaN")
    for _, k in ipairs(KINDS) do
      local y = lfl.tensor({nan})[k](lfl.tensor({nan}))
      t.assert(y[1] ~= y[1], k .. "(nan) is nan")
    end
  end,

  unary_big_f32_matches_f64 = function()
    -- large enough to take the threaded, vectorised path; checked against f64
    lfl.manual_seed(11)
    for _, k in ipairs(KINDS) do
      local x = lfl.randn(300, 333) * 4
      if POSITIVE[k] then x = x:abs() + 1e-3 end
      local got, want = x[k](x), x:double()[k](x:double())
      -- the gelus' exponent arguments (~x^2, ~x^3) carry f32 rounding: ~1e-5 relative
      -- deep in the tail (x < -9, values < 1e-18), a few ulp elsewhere
      local rtol = (k == "gelu" or k == "gelu_tanh") and 2e-5 or 3e-6
      t.assert_eq(count_far(got, want, 1e-30, rtol), 0, k .. " elements off")
    end
  end,

  unary_transposed_and_empty = function()
    local base = lfl.randn(5, 7)
    local xt = base:transpose()
    t.assert(not xt:is_contiguous())
    for _, k in ipairs({"exp", "silu", "gelu", "tanh"}) do
      t.assert_tensor_close(xt[k](xt), xt:contiguous()[k](xt:contiguous()), 0, 0, k)
    end
    t.assert_eq(lfl.zeros(0, 3):exp():numel(), 0)
    t.assert_close(lfl.tensor(2, "f64"):exp():item(), exp(2), 1e-15) -- 0-dim
  end,

  unary_gradcheck = function()
    lfl.manual_seed(3)
    for _, k in ipairs(KINDS) do
      local x = domain_randn(k, {3, 4}):requires_grad()
      t.gradcheck(function(a) return a[k](a) end, {x})
      -- a transposed (non-contiguous) leaf
      local xt = domain_randn(k, {4, 3}):transpose():requires_grad()
      t.assert(not xt:is_contiguous())
      t.gradcheck(function(a) return lfl[k](a) end, {xt})
      t.assert_eq(lfl[k](x):grad_fn(), k)
    end
  end,

  unary_grad_values = function()
    -- analytic gradients against the closed forms
    local v = {-2.5, -0.7, 0.3, 1.9}
    local x = lfl.tensor(v, "f64"):requires_grad()
    local function grad(k) x.grad = nil; lfl[k](x):sum():backward(); return x.grad end
    local want = {}
    for i, a in ipairs(v) do
      local pdf = exp(-a * a / 2) / sqrt(2 * math.pi)
      want[i] = 0.5 * erfc(-a / sqrt(2)) + a * pdf
    end
    t.assert_tensor_close(grad("gelu"), want, 1e-13, 1e-12)
    for i, a in ipairs(v) do local s = 1 / (1 + exp(-a)); want[i] = s * (1 + a * (1 - s)) end
    t.assert_tensor_close(grad("silu"), want, 1e-13, 1e-12)
    for i, a in ipairs(v) do
      local th = math.tanh(K0 * (a + 0.044715 * a ^ 3))
      want[i] = 0.5 * (1 + th) + 0.5 * a * (1 - th * th) * K0 * (1 + 3 * 0.044715 * a * a)
    end
    t.assert_tensor_close(grad("gelu_tanh"), want, 1e-13, 1e-12)
    t.assert_tensor_close(grad("relu"), {0, 0, 1, 1}, 0, 0)
    t.assert_tensor_close(grad("abs"), {-1, -1, 1, 1}, 0, 0)
    t.assert_tensor_close(grad("neg"), {-1, -1, -1, -1}, 0, 0)
    -- abs'(0) = relu'(0) = 0, as in torch
    local z = lfl.tensor({0}, "f64"):requires_grad()
    z:abs():sum():backward(); t.assert_eq(z.grad[1], 0)
    z.grad = nil; z:relu():sum():backward(); t.assert_eq(z.grad[1], 0)
    -- f32 backward matches f64 on a big tensor (the vectorised kernels)
    lfl.manual_seed(12)
    for _, k in ipairs(KINDS) do
      local base = lfl.randn(200, 200) * 3
      if POSITIVE[k] then base = base:abs() + 0.05 end
      local a, b = base:clone():requires_grad(), base:double():requires_grad()
      a[k](a):sum():backward(); b[k](b):sum():backward()
      t.assert_eq(count_far(a.grad, b.grad, 1e-6, 2e-5), 0, k .. " f32 grad")
    end
  end,

  neg_both_spellings = function()
    local x = lfl.tensor({1, -2}, "f64")
    t.assert_tensor_close(lfl.neg(x), {-1, 2}, 0, 0)
    t.assert_tensor_close(x:neg(), {-1, 2}, 0, 0)
    t.assert_eq(lfl.neg(x:requires_grad()):grad_fn(), "neg")
  end,

  pow_values_and_grad = function()
    local v = {0.25, 0.5, 1, 2, 3.5}
    local x = lfl.tensor(v, "f64")
    for _, p in ipairs({0, 1, 2, 3, 0.5, -0.5, -1, -2, 1.7, -2.3, 4}) do
      local want = {}
      for i = 1, #v do want[i] = v[i] ^ p end
      t.assert_tensor_close(lfl.pow(x, p), want, 0, 1e-14, "pow " .. p)
      t.assert_tensor_close(x:float():pow(p), want, 0, 2e-6, "pow f32 " .. p)
      local a = (lfl.rand(3, 4, "f64") + 0.5):requires_grad()
      t.gradcheck(function(y) return lfl.pow(y, p) end, {a})
    end
    -- negative bases with integer exponents, transposed input, the ^ operator
    local n = lfl.randn(4, 3, "f64"):transpose():requires_grad()
    t.gradcheck(function(y) return y:pow(3) end, {n})
    t.gradcheck(function(y) return y ^ 2 end, {n})
    t.assert_tensor_close(lfl.tensor({-2, 3}) ^ 3, {-8, 27}, 0, 0)
    -- p = 0: ones, zero gradient
    local z = lfl.tensor({0, 2}, "f64"):requires_grad()
    local o = z:pow(0)
    t.assert_tensor_close(o, {1, 1}, 0, 0)
    o:sum():backward()
    t.assert_tensor_close(z.grad, {0, 0}, 0, 0)
    t.assert_error(function() lfl.pow(lfl.tensor({1}, "i64"), 2) end, "pow: expected an f32 or f64 tensor, got i64")
    t.assert_error(function() lfl.pow(x, x) end, "pow: the exponent must be a number")
  end,

  compare_semantics = function()
    local a = lfl.tensor({{1}, {2}, {3}})          -- [3,1]
    local b = lfl.tensor({1, 2.5, 3, 0})           -- [4]
    local ops = {
      eq = function(x, y) return x == y end, ne = function(x, y) return x ~= y end,
      lt = function(x, y) return x < y end, le = function(x, y) return x <= y end,
      gt = function(x, y) return x > y end, ge = function(x, y) return x >= y end,
    }
    for name, f in pairs(ops) do
      local m = a[name](a, b)
      t.assert_eq(m:dtype(), "bool", name)
      t.assert_eq(#m:size(), 2); t.assert_eq(m:size(1), 3); t.assert_eq(m:size(2), 4)
      for i = 1, 3 do
        for j = 1, 4 do
          t.assert_eq(m[{i, j}], f(a[{i, 1}], b[j]) and 1 or 0, name .. " at " .. i .. "," .. j)
        end
      end
      -- a number on either side becomes a 0-dim tensor of the tensor's dtype
      local s = b[name](b, 2.5)
      for j = 1, 4 do t.assert_eq(s[j], f(b[j], 2.5) and 1 or 0, name .. " scalar") end
      local r = lfl[name](2.5, b)
      for j = 1, 4 do t.assert_eq(r[j], f(2.5, b[j]) and 1 or 0, name .. " scalar left") end
    end
    -- transposed operand, integer and bf16 dtypes
    local m = lfl.randn(3, 4)
    t.assert_tensor_close(m:transpose():gt(0), m:transpose():contiguous():gt(0), 0, 0)
    local i = lfl.tensor({1, 5, -3}, "i64")
    t.assert_tensor_close(i:ge(1), {1, 1, 0}, 0, 0)
    t.assert_tensor_close(i:eq(lfl.tensor({1, 4, -3}, "i64")), {1, 0, 1}, 0, 0)
    t.assert_tensor_close(lfl.tensor({0.5, 2}):to("bf16"):lt(1), {1, 0}, 0, 0)
    t.assert_tensor_close(lfl.tensor({true, false}, "bool"):eq(true), {1, 0}, 0, 0)
    -- NaN is unequal to everything
    local nan = lfl.tensor({0 / 0, 1})
    t.assert_tensor_close(nan:eq(nan), {0, 1}, 0, 0)
    t.assert_tensor_close(nan:ne(nan), {1, 0}, 0, 0)
    t.assert_tensor_close(nan:lt(5), {0, 1}, 0, 0)
    -- no grad
    local g = lfl.tensor({1, 2}):requires_grad()
    t.assert(not g:lt(2):get_requires_grad() and g:lt(2):grad_fn() == nil)
    -- errors
    t.assert_error(function() lfl.tensor({1}):lt(lfl.tensor({1}, "f64")) end, "lt: dtypes differ (f32 vs f64)")
    t.assert_error(function() lfl.zeros(2, 3):eq(lfl.zeros(4)) end, "eq: shapes [2,3] and [4] cannot be broadcast")
    t.assert_error(function() i:lt(2.5) end, "lt: the number 2.5 is not exactly representable as i64")
  end,

  where_semantics = function()
    local c = lfl.tensor({{true}, {false}}, "bool")   -- [2,1]
    local a = lfl.tensor({{1, 2, 3}, {4, 5, 6}})
    local b = lfl.tensor({10, 20, 30})                 -- [3]
    t.assert_tensor_close(lfl.where(c, a, b), {{1, 2, 3}, {10, 20, 30}}, 0, 0)
    t.assert_tensor_close(lfl.where(c, a, -1), {{1, 2, 3}, {-1, -1, -1}}, 0, 0)
    t.assert_tensor_close(lfl.where(c, 7, b), {{7, 7, 7}, {10, 20, 30}}, 0, 0)
    local both = lfl.where(c, 1, 0)
    t.assert_eq(both:dtype(), "f32"); t.assert_tensor_close(both, {{1}, {0}}, 0, 0)
    -- u8 cond (nonzero = true), i64 values, a transposed operand
    local u = lfl.tensor({0, 3, 1}, "u8")
    t.assert_tensor_close(lfl.where(u, lfl.tensor({1, 2, 3}, "i64"), lfl.tensor({-1, -2, -3}, "i64")), {-1, 2, 3}, 0, 0)
    local m = lfl.randn(3, 4)
    local cond = m:transpose():gt(0)
    t.assert_tensor_close(lfl.where(cond, m:transpose(), 0), m:transpose():relu(), 0, 0)
    -- big contiguous case equals the relu it spells
    local big = lfl.randn(300, 300)
    t.assert_eq(count_far(lfl.where(big:gt(0), big, 0), big:relu(), 0, 0), 0)
    t.assert_error(function() lfl.where(lfl.ones(2), a, b) end, "where: cond must be a bool or u8 tensor, got f32")
    t.assert_error(function() lfl.where(c, a, b:double()) end, "where: a and b must have the same dtype (f32 vs f64)")
    t.assert_error(function() lfl.where(c, a, lfl.ones(4)) end, "where: shapes [2,1] (cond), [2,3] (a) and [4] (b) cannot be broadcast")
  end,

  where_gradcheck = function()
    lfl.manual_seed(4)
    local c = lfl.rand(3, 1):gt(0.5)
    c[1][1] = 1; c[2][1] = 0                           -- both branches taken
    local a = lfl.randn(3, 4, "f64"):requires_grad()
    local b = lfl.randn(4, "f64"):requires_grad()      -- broadcast, summed back
    t.gradcheck(function(x, y) return lfl.where(c, x, y) end, {a, b})
    local at = lfl.randn(4, 3, "f64"):transpose():requires_grad()
    local c2 = lfl.randn(3, 4):gt(0)
    t.gradcheck(function(x, y) return lfl.where(c2, x, y) end, {at, b})
    t.gradcheck(function(x) return lfl.where(c2, x, 0) end, {at})
    -- the gradient splits by the condition, and b's sums over the broadcast rows
    local x, y = lfl.ones(2, 2, "f64"):requires_grad(), lfl.ones(2, "f64"):requires_grad()
    local cc = lfl.tensor({{1, 0}, {1, 1}}, "bool")
    lfl.where(cc, x, y):sum():backward()
    t.assert_tensor_close(x.grad, {{1, 0}, {1, 1}}, 0, 0)
    t.assert_tensor_close(y.grad, {0, 1}, 0, 0)
  end,

  masked_fill_semantics_and_grad = function()
    local x = lfl.tensor({{1, 2, 3}, {4, 5, 6}})
    local m = lfl.tensor({true, false, true}, "bool")  -- broadcast over rows
    t.assert_tensor_close(x:masked_fill(m, 0), {{0, 2, 0}, {0, 5, 0}}, 0, 0)
    local neg = x:masked_fill(lfl.tensor({{false}, {true}}, "bool"), -math.huge)
    t.assert(neg[{2, 1}] == -math.huge and neg[{1, 3}] == 3, "attention-style -inf fill")
    t.assert_tensor_close(lfl.tensor({1, 2}, "i64"):masked_fill(lfl.tensor({0, 1}, "u8"), -7), {1, -7}, 0, 0)
    t.assert_tensor_close(x:transpose():masked_fill(lfl.tensor({true, false}, "bool"), 9),
      {{9, 4}, {9, 5}, {9, 6}}, 0, 0)
    local big = lfl.randn(300, 300)                    -- threaded, unit-stride mask
    t.assert_eq(count_far(big:masked_fill(big:lt(0), 0), big:relu(), 0, 0), 0)
    local v = lfl.randn(4, 5, "f64"):requires_grad()
    local mk = lfl.randn(1, 5):gt(0)
    t.gradcheck(function(a) return a:masked_fill(mk, 3.5) end, {v})
    local vt = lfl.randn(5, 4, "f64"):transpose():requires_grad()
    t.gradcheck(function(a) return a:masked_fill(mk, -1) end, {vt})
    -- the gradient is zero exactly where the mask is set
    local o = lfl.ones(2, 3, "f64"):requires_grad()
    o:masked_fill(m, 0):sum():backward()
    t.assert_tensor_close(o.grad, {{0, 1, 0}, {0, 1, 0}}, 0, 0)
    t.assert_error(function() x:masked_fill(lfl.ones(3), 0) end, "masked_fill: mask must be a bool or u8 tensor, got f32")
    t.assert_error(function() x:masked_fill(lfl.tensor({true, false}, "bool"), 0) end,
      "masked_fill: mask [2] does not broadcast to the tensor's shape [2,3]")
    t.assert_error(function() lfl.tensor({1}, "i64"):masked_fill(lfl.tensor({true}, "bool"), 2.5) end,
      "masked_fill: value 2.5 cannot be stored in an i64 tensor")
  end,

  dropout_statistics = function()
    local p, n = 0.3, 200000
    lfl.manual_seed(123)
    local y = lfl.dropout(lfl.ones(n), p)
    local kept = y:gt(0):to("f64"):sum():item()
    -- the kept fraction is Binomial(n, 1-p)/n: sd ~0.001, so 0.005 is 5 sd
    t.assert(abs(kept / n - (1 - p)) < 0.005, "kept fraction " .. kept / n)
    local scale = lfl.tensor({1 / (1 - p)})[1]         -- as f32
    t.assert_eq(count_far(y:masked_fill(y:eq(0), scale), lfl.full({n}, scale), 0, 0), 0,
      "kept values are scaled by 1/(1-p)")
    -- non-trivial input: kept elements equal x/(1-p)
    local x = lfl.randn(1000, "f64")
    local dx = lfl.dropout(x, 0.5)
    t.assert_tensor_close(lfl.where(dx:ne(0), x * 2, 0), dx, 0, 1e-15)
  end,

  dropout_reproducible = function()
    local x = lfl.ones(100003)                         -- not a multiple of 4, threaded
    lfl.manual_seed(9); local a = lfl.dropout(x, 0.4)
    lfl.manual_seed(9); local b = lfl.dropout(x, 0.4)
    t.assert_eq(count_far(a, b, 0, 0), 0, "same seed, same mask")
    local c = lfl.dropout(x, 0.4)                      -- the stream moved on
    t.assert(count_far(a, c, 0, 0) > 1000, "next call draws a new mask")
    local th = lfl.sys.threads()
    lfl.sys.threads(1)
    lfl.manual_seed(9); local d = lfl.dropout(x, 0.4)
    lfl.sys.threads(th)
    t.assert_eq(count_far(a, d, 0, 0), 0, "same mask with one thread")
    -- element i uses word i%4 of counter base + i/4: the same words lfl.rand uses
    lfl.manual_seed(9); local u = lfl.rand(100003)
    t.assert_eq(count_far(a:ne(0):to("f32"), u:ge(0.4):to("f32"), 0, 0), 0, "mask = rand >= p")
    -- transposed input: the mask follows the logical (row-major) order
    local m = lfl.randn(64, 48)
    lfl.manual_seed(2); local e = lfl.dropout(m:transpose(), 0.5)
    lfl.manual_seed(2); local f = lfl.dropout(m:transpose():contiguous(), 0.5)
    t.assert_tensor_close(e, f, 0, 0)
  end,

  dropout_grad_and_edges = function()
    local x = lfl.randn(3, 5, "f64"):requires_grad()
    t.gradcheck(function(a) lfl.manual_seed(77); return lfl.dropout(a, 0.4) end, {x})
    local xt = lfl.randn(5, 3, "f64"):transpose():requires_grad()
    t.gradcheck(function(a) lfl.manual_seed(78); return lfl.dropout(a, 0.5) end, {xt})
    -- backward is g * mask / (1-p): for x = 1 the gradient equals the output
    local o = lfl.ones(1000):requires_grad()
    local y = lfl.dropout(o, 0.25)
    y:sum():backward()
    t.assert_tensor_close(o.grad, y, 0, 0)
    -- p = 0: the input unchanged, draws nothing; p = 1: zeros with zero gradient
    local s0, off0 = lfl.rng_state()
    local z = lfl.randn(4, 4)
    local _, off1 = lfl.rng_state()
    t.assert_tensor_close(lfl.dropout(z, 0), z, 0, 0)
    local _, off2 = lfl.rng_state()
    t.assert_eq(off2, off1, "p = 0 draws nothing")
    local w = lfl.randn(6, "f64"):requires_grad()
    local d1 = lfl.dropout(w, 1)
    t.assert_tensor_close(d1, lfl.zeros(6, "f64"), 0, 0)
    d1:sum():backward()
    t.assert_tensor_close(w.grad, lfl.zeros(6, "f64"), 0, 0)
    t.assert_error(function() lfl.dropout(z, 1.5) end, "dropout: p must be in [0, 1], got 1.5")
    t.assert_error(function() lfl.dropout(z, -0.1) end, "dropout: p must be in [0, 1]")
    t.assert_error(function() lfl.dropout(lfl.tensor({1}, "i64"), 0.5) end, "dropout: expected an f32 or f64 tensor, got i64")
  end,

  error_messages = function()
    local i = lfl.tensor({1, 2}, "i64")
    for _, k in ipairs(KINDS) do
      t.assert_error(function() return lfl[k](i) end, k .. ": expected an f32 or f64 tensor, got i64")
    end
    t.assert_error(function() lfl.exp(lfl.tensor({1}, "bf16")) end, "exp: expected an f32 or f64 tensor, got bf16")
    t.assert_error(function() lfl.exp(3) end, "Tensor expected")
  end,
})

t.run()
