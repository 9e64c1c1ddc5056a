-- Dim-wise and indexing ops: max/min/argmax, softmax/log_softmax, embedding,
-- index_select, gather, scatter_add, cat, stack, split. Values against plain-Lua
-- computations, finite-difference gradient checks (f64, negative dims,
-- transposed inputs) and the error messages. Index tensors are 0-based data.
local t = lfl.test

lfl.manual_seed(1234)
math.randomseed(1234)

-- ---- plain-Lua references ----

local function flat(x)
  local r = {}
  for i = 1, x:numel() do r[i] = x:_at(i) end
  return r
end

-- A logical (row-major) shape seen as [outer, len, inner] around 1-based dim d.
local function split3(shape, d)
  local outer, inner = 1, 1
  for k = 1, d - 1 do outer = outer * shape[k] end
  for k = d + 1, #shape do inner = inner * shape[k] end
  return outer, shape[d], inner
end

-- calls fn(out_pos, positions) for every fiber along d (positions 1-based flat)
local function each_fiber(shape, d, fn)
  local outer, len, inner = split3(shape, d)
  for o = 0, outer - 1 do
    for i = 0, inner - 1 do
      local ps = {}
      for k = 0, len - 1 do ps[#ps + 1] = (o * len + k) * inner + i + 1 end
      fn(o * inner + i + 1, ps)
    end
  end
end

local function ref_extremum(x, d, is_min)
  local v, idx, vals = flat(x), {}, {}
  each_fiber(x:size(), d, function(o, ps)
    local b, bi = v[ps[1]], 0
    for k = 2, #ps do
      local c = v[ps[k]]
      if (is_min and c < b) or (not is_min and c > b) then b, bi = c, k - 1 end
    end
    vals[o], idx[o] = b, bi
  end)
  return vals, idx
end

local function ref_softmax(x, d, log)
  local v, out = flat(x), {}
  each_fiber(x:size(), d, function(_, ps)
    local m, s = -math.huge, 0
    for _, p in ipairs(ps) do m = math.max(m, v[p]) end
    for _, p in ipairs(ps) do s = s + math.exp(v[p] - m) end
    for _, p in ipairs(ps) do out[p] = log and (v[p] - m - math.log(s)) or math.exp(v[p] - m) / s end
  end)
  return out
end

local function assert_list_close(got, want, tol, msg)
  t.assert_eq(#got, #want, (msg or "") .. " length")
  for i = 1, #want do
    local a, b = got[i], want[i]
    if not (math.abs(a - b) <= tol * math.max(1, math.abs(b))) then
      error(string.format("%s element %d: got %.10g, want %.10g", msg or "", i, a, b), 2)
    end
  end
end

local function assert_shape(x, shape, msg)
  local s = x:size()
  t.assert_eq(table.concat(s, ","), table.concat(shape, ","), msg or "shape")
end

local function ids_tensor(n, v, dtype)
  local r = {}
  for i = 1, n do r[i] = math.random(0, v - 1) end
  return lfl.tensor(r, dtype or "i64"), r
end

local function r64(...) return lfl.randn(...):double():requires_grad() end

-- ---- max / min / argmax ----

t.suite("max_min", {
  values_and_indices = function()
    for _, shape in ipairs({{5}, {3, 4}, {2, 3, 4}, {4, 1, 3}}) do
      local x = lfl.randn(shape)
      for d = 1, #shape do
        for _, is_min in ipairs({false, true}) do
          local f = is_min and lfl.min or lfl.max
          local v, i = f(x, d)
          local rv, ri = ref_extremum(x, d, is_min)
          assert_list_close(flat(v), rv, 0, "values")
          assert_list_close(flat(i), ri, 0, "indices")
          t.assert_eq(i:dtype(), "i64")
          -- the same through a negative dim, with keepdim
          local kv, ki = f(x, d - #shape - 1, true)
          local ks = {}
          for k = 1, #shape do ks[k] = k == d and 1 or shape[k] end
          assert_shape(kv, ks, "keepdim values"); assert_shape(ki, ks, "keepdim indices")
          assert_list_close(flat(kv), rv, 0, "keepdim values")
        end
      end
    end
  end,

  ties_first_and_nan = function()
    local x = lfl.tensor({{1, 3, 3, 0}, {2, 2, 2, 2}, {-1, -5, 4, -5}})
    local _, i = lfl.max(x, 2)
    assert_list_close(flat(i), {1, 0, 2}, 0, "max ties")
    local _, j = lfl.min(x, 2)
    assert_list_close(flat(j), {3, 0, 1}, 0, "min ties")
    t.assert_tensor_close(x:argmax(-1), {1, 0, 2}, 0, 0)
    -- a NaN wins (and the first of several), as in torch
    local n = lfl.tensor({1, 0 / 0, 5, 0 / 0})
    local v, k = lfl.max(n, 1)
    t.assert(v:item() ~= v:item(), "max of a row with NaN is NaN")
    t.assert_eq(k:item(), 1)
    local _, k2 = lfl.min(n, 1)
    t.assert_eq(k2:item(), 1)
  end,

  non_contiguous_and_global = function()
    local base = lfl.randn(4, 6)
    local x = base:transpose()            -- [6, 4], strided
    for d = 1, 2 do
      local v, i = lfl.max(x, d)
      local rv, ri = ref_extremum(x, d, false)
      assert_list_close(flat(v), rv, 0, "values"); assert_list_close(flat(i), ri, 0, "indices")
    end
    -- no dim: over all elements, index 0-based in the flattened tensor
    local v, i = lfl.max(x)
    assert_shape(v, {}); assert_shape(i, {})
    local fx, best, bi = flat(x), -math.huge, -1
    for k = 1, #fx do if fx[k] > best then best, bi = fx[k], k - 1 end end
    t.assert_eq(v:item(), best); t.assert_eq(i:item(), bi)
    t.assert_eq(x:argmax():item(), bi)
    t.assert_eq(lfl.min(x):item(), math.min(unpack(fx)))
  end,

  integer_tensors = function()
    local x = lfl.tensor({{3, -7, 9}, {4, 4, -1}}, "i64")
    local v, i = x:max(2)
    t.assert_eq(v:dtype(), "i64")
    t.assert_tensor_close(v, {9, 4}, 0, 0); t.assert_tensor_close(i, {2, 0}, 0, 0)
    local w, j = lfl.min(x:to("i32"), 1)
    t.assert_eq(w:dtype(), "i32")
    t.assert_tensor_close(w, {3, -7, -1}, 0, 0); t.assert_tensor_close(j, {0, 0, 1}, 0, 0)
  end,

  argmax_gives_token_ids = function()
    -- logits [B, T, V]: argmax over V is the 0-based token id, used as data directly
    local logits = lfl.randn(2, 3, 11)
    local ids = logits:argmax(-1)
    assert_shape(ids, {2, 3})
    t.assert_eq(ids:dtype(), "i64")
    local _, ri = ref_extremum(logits, 3, false)
    assert_list_close(flat(ids), ri, 0, "token ids")
    -- round trip: the logit at each picked id is the row max
    local picked = logits:gather(3, ids:view(2, 3, 1))
    t.assert_tensor_close(picked:view(2, 3), (lfl.max(logits, 3)), 0, 0)
    assert_shape(logits:argmax(2, true), {2, 1, 11})
    t.assert(not lfl.max(logits:requires_grad(), 3):is_leaf(), "max values carry grad")
  end,

  large_parallel = function()
    -- above the OpenMP threshold: rows (inner == 1) and columns (inner > 1)
    local x = lfl.randn(96, 700)
    for _, d in ipairs({1, 2}) do
      local v, i = lfl.max(x, d)
      local rv, ri = ref_extremum(x, d, false)
      assert_list_close(flat(v), rv, 0, "values dim " .. d)
      assert_list_close(flat(i), ri, 0, "indices dim " .. d)
    end
  end,

  gradcheck = function()
    local x = r64(3, 4, 2)
    for _, d in ipairs({1, 2, -1}) do
      t.gradcheck(function(a) return (lfl.max(a, d)) end, {x})
      t.gradcheck(function(a) return (lfl.min(a, d, true)) end, {x})
    end
    local xt = lfl.randn(5, 3, "f64"):transpose():requires_grad()
    t.gradcheck(function(a) return (lfl.max(a, -2)) end, {xt})
    t.gradcheck(function(a) return (lfl.max(a)) end, {xt})
    -- the f32 backward agrees with the f64 one (dim not last: inner > 1)
    local a64 = lfl.randn(4, 5, 3, "f64")
    local g = lfl.randn(4, 3, "f64")
    local a, b = a64:clone():requires_grad(), a64:float():requires_grad()
    lfl.backward((lfl.max(a, 2)), g); lfl.backward((lfl.max(b, 2)), g:float())
    t.assert_tensor_close(b.grad:double(), a.grad, 1e-6, 1e-6)
    -- ties: the whole gradient goes to the first occurrence
    local y = lfl.tensor({{2, 5, 5}, {1, 1, 0}}, "f64"):requires_grad()
    lfl.max(y, 2):sum():backward()
    t.assert_tensor_close(y.grad, {{0, 1, 0}, {1, 0, 0}}, 0, 0)
  end,

  errors = function()
    local x = lfl.randn(2, 3)
    t.assert_error(function() lfl.max(x, 3) end, "dim 3 out of range")
    t.assert_error(function() lfl.max(x, 0) end, "out of range")
    t.assert_error(function() lfl.min(x, -3) end, "out of range")
    t.assert_error(function() lfl.max(lfl.zeros(2, 0), 2) end, "size 0")
    t.assert_error(function() x:to("bf16"):argmax(1) end, "bf16")
  end,
})

-- ---- softmax / log_softmax ----

t.suite("softmax", {
  values_every_dim = function()
    local x = lfl.randn(2, 3, 4, "f64")
    for d = 1, 3 do
      for _, log in ipairs({false, true}) do
        local f = log and x.log_softmax or x.softmax
        assert_list_close(flat(f(x, d)), ref_softmax(x, d, log), 1e-12, "f64 dim " .. d)
        assert_list_close(flat(f(x, d - 4)), ref_softmax(x, d, log), 1e-12, "negative dim " .. d)
        local xf = x:float()
        assert_list_close(flat(f(xf, d)), ref_softmax(xf, d, log), 2e-6, "f32 dim " .. d)
      end
    end
    -- rows sum to 1
    t.assert_tensor_close(x:softmax(2):sum(2), lfl.ones(2, 4, "f64"), 1e-12, 0)
  end,

  non_contiguous = function()
    local x = lfl.randn(5, 4):transpose()    -- [4, 5]; the last dim is strided
    for _, d in ipairs({1, 2}) do
      assert_list_close(flat(x:softmax(d)), ref_softmax(x, d, false), 2e-6, "softmax")
      assert_list_close(flat(x:log_softmax(d)), ref_softmax(x, d, true), 2e-6, "log_softmax")
    end
  end,

  stable_and_masked = function()
    -- huge logits do not overflow; -inf entries get exactly 0 (log: -inf)
    local x = lfl.tensor({{1000, 1001, 999}, {-1e30, 0, -1 / 0}})
    local p = x:softmax(-1)
    local e1, e2 = math.exp(-1), math.exp(-2)
    t.assert_tensor_close(p[1], {e1 / (1 + e1 + e2), 1 / (1 + e1 + e2), e2 / (1 + e1 + e2)}, 1e-6, 1e-5)
    t.assert_eq(p[2][3], 0); t.assert_eq(p[2][2], 1)
    local l = x:log_softmax(-1)
    t.assert_eq(l[2][3], -math.huge)
    t.assert_close(l[1][2], -math.log(1 + e1 + e2), 1e-6)
    -- the same along a non-last dim
    local pc = x:transpose():contiguous():softmax(1)
    t.assert_tensor_close(pc:transpose(), p, 1e-7, 0)
  end,

  large_parallel = function()
    -- f32 last-dim fast path and the column path, above the OpenMP threshold
    local x = lfl.randn(48, 1000) * 4
    local x64 = x:double()
    for _, d in ipairs({2, 1}) do
      t.assert_tensor_close(x:softmax(d), x64:softmax(d), 1e-7, 1e-5, "softmax dim " .. d)
      t.assert_tensor_close(x:log_softmax(d), x64:log_softmax(d), 1e-5, 1e-6, "log_softmax dim " .. d)
    end
    -- one row of the f64 result against plain Lua
    local row = x64:narrow(1, 7, 1)
    assert_list_close(flat(row:softmax(2)), ref_softmax(row, 2, false), 1e-12, "row")
  end,

  gradcheck = function()
    local x = r64(2, 3, 4)
    local xt = lfl.randn(4, 3, "f64"):transpose():requires_grad()
    for _, d in ipairs({1, 2, 3, -1, -2}) do
      t.gradcheck(function(a) return a:softmax(d) end, {x})
      t.gradcheck(function(a) return a:log_softmax(d) end, {x})
    end
    for _, d in ipairs({1, -1}) do
      t.gradcheck(function(a) return a:softmax(d) end, {xt})
      t.gradcheck(function(a) return a:log_softmax(d) end, {xt})
    end
    -- f32 backward agrees with f64
    local a64 = lfl.randn(3, 7, "f64")
    local g = lfl.randn(3, 7, "f64")
    for _, log in ipairs({false, true}) do
      local a = a64:clone():requires_grad()
      local b = a64:float():requires_grad()
      local name = log and "log_softmax" or "softmax"
      lfl.backward(a[name](a, -1), g); lfl.backward(b[name](b, -1), g:float())
      t.assert_tensor_close(b.grad:double(), a.grad, 1e-6, 1e-5, name)
    end
  end,

  errors = function()
    local x = lfl.randn(2, 3)
    t.assert_error(function() x:softmax() end, "dim is required")
    t.assert_error(function() x:log_softmax() end, "dim is required")
    t.assert_error(function() x:softmax(3) end, "dim 3 out of range")
    t.assert_error(function() x:softmax(-3) end, "out of range")
    t.assert_error(function() lfl.tensor({1, 2}, "i64"):softmax(1) end, "expected an f32 or f64")
  end,
})

-- ---- embedding ----

-- the reference gradient: one-hot[N, V]^T @ g[N, H]
local function onehot_grad(ids, v, g)
  local n = #ids
  local oh = lfl.zeros({n, v}, g:dtype())
  for k = 1, n do oh[{k, ids[k] + 1}] = 1 end
  return lfl.matmul(oh:transpose(), g:reshape(n, -1))
end

t.suite("embedding", {
  values = function()
    local w = lfl.randn(7, 5)
    local ids = lfl.tensor({{0, 6, 3}, {3, 3, 1}}, "i64")
    local e = lfl.embedding(w, ids)
    assert_shape(e, {2, 3, 5})
    for b = 1, 2 do
      for s = 1, 3 do
        local id = ids[b][s]
        t.assert_tensor_close(e[b][s], w[id + 1], 0, 0)   -- id is 0-based: row id + 1 in Lua
      end
    end
    -- i32 ids, a 0-dim id, a transposed weight, the method form
    t.assert_tensor_close(lfl.embedding(w, ids:to("i32")), e, 0, 0)
    t.assert_tensor_close(lfl.embedding(w, lfl.tensor(4, "i64")), w[5], 0, 0)
    local wt = w:transpose():contiguous():transpose()
    t.assert(not wt:is_contiguous())
    t.assert_tensor_close(wt:embedding(ids), e, 0, 0)
    assert_shape(lfl.embedding(w, lfl.zeros({0}, "i64")), {0, 5})
  end,

  backward_matches_onehot = function()
    local v, h = 50, 8
    local ids_t, ids = ids_tensor(40, v)
    ids[3], ids[9] = ids[1], ids[1]                    -- make repeats certain
    ids_t = lfl.tensor(ids, "i64"):view(5, 8)
    local w = lfl.randn(v, h, "f64"):requires_grad()
    local g = lfl.randn(5, 8, h, "f64")
    lfl.backward(lfl.embedding(w, ids_t), g)
    t.assert_tensor_close(w.grad, onehot_grad(ids, v, g), 1e-12, 1e-12)
  end,

  backward_parallel_deterministic = function()
    -- past the OpenMP threshold, with heavy repeats (a padding id): the same
    -- result as the reference and bit-identical on one thread
    local v, h, n = 300, 96, 2000
    local _, ids = ids_tensor(n, v)
    for k = 1, n, 3 do ids[k] = 0 end
    local ids_t = lfl.tensor(ids, "i64")
    local g = lfl.randn(n, h)
    local function grad()
      local w = lfl.zeros(v, h):requires_grad()
      lfl.backward(lfl.embedding(w, ids_t), g)
      return w.grad
    end
    local g1 = grad()
    t.assert_tensor_close(g1, onehot_grad(ids, v, g), 1e-4, 1e-5)
    local th = lfl.sys.threads(); lfl.sys.threads(1)
    local ok, g2 = pcall(grad)
    lfl.sys.threads(th)
    t.assert(ok, tostring(g2))
    t.assert_tensor_close(g2, g1, 0, 0)
  end,

  gradcheck = function()
    local w = r64(6, 3)
    local ids = lfl.tensor({{1, 5, 1}, {0, 1, 4}}, "i64")
    t.gradcheck(function(a) return lfl.embedding(a, ids) end, {w})
    local wt = lfl.randn(3, 6, "f64"):transpose():requires_grad()
    t.gradcheck(function(a) return lfl.embedding(a, ids:to("i32")) end, {wt})
  end,

  errors = function()
    local w = lfl.randn(10, 4)
    local e = t.assert_error(function() lfl.embedding(w, lfl.tensor({3, 10, 2}, "i64")) end, "id 10")
    t.assert(e:find("V = 10", 1, true), e)
    t.assert_error(function() lfl.embedding(w, lfl.tensor({-1}, "i64")) end, "id -1")
    t.assert_error(function() lfl.embedding(w, lfl.tensor({1, 2})) end, "i64 or i32")
    t.assert_error(function() lfl.embedding(lfl.randn(10), lfl.tensor({1}, "i64")) end, "[V, H]")
  end,
})

-- ---- index_select / gather / scatter_add ----

t.suite("indexing", {
  nonzero = function()
    local mask = lfl.tensor({-100, 3, -100, 5, 7}, "i64"):ne(-100)
    local idx = lfl.nonzero(mask)
    t.assert_eq(idx:dtype(), "i64")
    t.assert_tensor_close(idx:double(), {1, 3, 4}, 0, 0)
    -- a strided mask, an empty result, and what it refuses
    local strided = lfl.tensor({{1, 0}, {0, 0}, {1, 1}}):ne(0):select(2, 1)
    t.assert_tensor_close(lfl.nonzero(strided):double(), {0, 2}, 0, 0)
    t.assert_eq(lfl.nonzero(lfl.zeros(4):ne(0)):numel(), 0)
    t.assert_error(function() lfl.nonzero(lfl.zeros(2, 2):ne(0)) end, "nonzero: want a 1-D bool mask, got bool [2,2]")
    t.assert_error(function() lfl.nonzero(lfl.zeros(3)) end, "got f32 [3]")
  end,

  index_select_values = function()
    local x = lfl.randn(3, 4, 5)
    local idx = {3, 0, 3, 1}
    local it = lfl.tensor(idx, "i64")
    for d = 1, 3 do
      local ok_idx = {}
      for k, v in ipairs(idx) do ok_idx[k] = v % x:size(d) end
      local o = x:index_select(d - 4, lfl.tensor(ok_idx, "i32"))
      for k, v in ipairs(ok_idx) do
        t.assert_tensor_close(o:select(d, k), x:select(d, v + 1), 0, 0)
      end
    end
    -- strided input, integer data
    local y = lfl.arange(12, "i64"):view(3, 4):transpose()   -- [4, 3]
    t.assert_tensor_close(y:index_select(2, lfl.tensor({2, 2, 0}, "i64")),
                          {{8, 8, 0}, {9, 9, 1}, {10, 10, 2}, {11, 11, 3}}, 0, 0)
    t.assert_tensor_close(y:index_select(1, it:narrow(1, 1, 1)), {{3, 7, 11}}, 0, 0)
  end,

  gather_values = function()
    local x = lfl.randn(3, 4, "f64")
    local idx = lfl.tensor({{3, 0, 0}, {1, 1, 2}}, "i64")     -- [2, 3]: smaller than x off dim 2
    local o = x:gather(2, idx)
    assert_shape(o, {2, 3})
    for i = 1, 2 do for j = 1, 3 do t.assert_eq(o[i][j], x[i][idx[i][j] + 1]) end end
    local idx1 = lfl.tensor({{2, 0, 1, 2}, {0, 0, 0, 1}}, "i64")
    local o1 = x:gather(1, idx1)
    for i = 1, 2 do for j = 1, 4 do t.assert_eq(o1[i][j], x[idx1[i][j] + 1][j]) end end
    -- token log-probs style: logits [B, T, V] at labels [B, T, 1]
    local lp = lfl.randn(2, 5, 9):log_softmax(-1)
    local labels = lfl.tensor({{{1}, {8}, {0}, {3}, {3}}, {{2}, {2}, {7}, {6}, {5}}}, "i64")
    local got = lp:gather(-1, labels)
    for b = 1, 2 do for s = 1, 5 do t.assert_eq(got[b][s][1], lp[b][s][labels[b][s][1] + 1]) end end
    -- transposed source
    local xt = x:transpose()
    local ot = xt:gather(1, lfl.tensor({{0, 3, 1}}, "i64"))
    t.assert_tensor_close(ot, {{x[1][1], x[2][4], x[3][2]}}, 0, 0)
  end,

  scatter_add_values = function()
    local a = lfl.zeros(3, 5, "f64")
    local idx = lfl.tensor({{0, 4, 4}, {2, 2, 2}}, "i64")
    local src = lfl.tensor({{1, 2, 3, 99}, {10, 20, 30, 99}, {7, 7, 7, 7}}, "f64")  -- larger than idx
    local o = a:scatter_add(2, idx, src)
    t.assert_tensor_close(o, {{1, 0, 0, 0, 5}, {0, 0, 60, 0, 0}, {0, 0, 0, 0, 0}}, 0, 0)
    t.assert_tensor_close(a, lfl.zeros(3, 5, "f64"), 0, 0, "input untouched")
    -- along dim 1 with repeats, onto a non-zero strided input
    local b = lfl.arange(6, "f64"):view(3, 2):transpose()       -- [2, 3]
    local o1 = b:scatter_add(1, lfl.tensor({{1, 1, 0}, {1, 0, 0}}, "i64"), lfl.ones(2, 3, "f64"))
    t.assert_tensor_close(o1, {{0, 3, 6}, {3, 4, 5}}, 0, 0)
    -- gather then scatter_add of ones counts how often each slot was picked
    local ids = lfl.tensor({{0, 2, 2, 2}}, "i64")
    local cnt = lfl.zeros(1, 3):scatter_add(2, ids, lfl.ones(1, 4))
    t.assert_tensor_close(cnt, {{1, 0, 3}}, 0, 0)
  end,

  large_parallel = function()
    -- scatter_add with heavy repeats past the OpenMP threshold, against one thread
    local idx = lfl.tensor({}, "i64")
    local n, v = 400, 7
    local rows = {}
    for r = 1, 100 do local row = {}; for k = 1, n do row[k] = (r * k) % v end; rows[r] = row end
    idx = lfl.tensor(rows, "i64")
    local src = lfl.randn(100, n)
    local o = lfl.zeros(100, v):scatter_add(2, idx, src)
    local th = lfl.sys.threads(); lfl.sys.threads(1)
    local o1 = lfl.zeros(100, v):scatter_add(2, idx, src)
    lfl.sys.threads(th)
    t.assert_tensor_close(o, o1, 0, 0)
    -- row 3 by hand
    local want = {}
    for k = 1, v do want[k] = 0 end
    for k = 1, n do want[rows[3][k] + 1] = want[rows[3][k] + 1] + src[3][k] end
    assert_list_close(flat(o[3]), want, 1e-5, "row 3")
    t.assert_tensor_close(o:sum(2), src:sum(2), 1e-4, 1e-5, "every src element lands once")
  end,

  gradcheck = function()
    local x = r64(3, 4)
    local xt = lfl.randn(4, 3, "f64"):transpose():requires_grad()
    local i1 = lfl.tensor({2, 0, 2, 1, 2}, "i64")
    t.gradcheck(function(a) return a:index_select(1, i1:narrow(1, 1, 3)) end, {x})
    t.gradcheck(function(a) return a:index_select(-1, i1) end, {x})
    t.gradcheck(function(a) return a:index_select(2, i1) end, {xt})
    local g2 = lfl.tensor({{3, 3, 0}, {1, 2, 2}}, "i64")
    t.gradcheck(function(a) return a:gather(2, g2) end, {x})
    t.gradcheck(function(a) return a:gather(-1, g2) end, {xt})
    local g1 = lfl.tensor({{2, 2, 0, 1}, {0, 0, 0, 0}}, "i32")
    t.gradcheck(function(a) return a:gather(1, g1) end, {x})
    -- scatter_add: gradients to both the input and src (src larger than index)
    local src = r64(3, 5)
    t.gradcheck(function(a, s) return a:scatter_add(2, g2, s) end, {x, src})
    t.gradcheck(function(a, s) return a:scatter_add(-2, g1, s) end, {xt, lfl.randn(2, 4, "f64"):requires_grad()})
  end,

  f32_backward = function()
    -- the f32 loops of the backward passes against the f64 ones
    local x64, src64 = lfl.randn(3, 4, "f64"), lfl.randn(3, 4, "f64")
    local idx = lfl.tensor({{3, 3, 0}, {1, 2, 2}}, "i64")
    local sel = lfl.tensor({2, 0, 2, 1, 2}, "i64")
    local cases = {
      function(a) return a:gather(2, idx) end,
      function(a) return a:index_select(2, sel) end,
      function(a) return a:index_select(1, sel:narrow(1, 1, 2)) end,
      function(a, s) return a:scatter_add(2, idx, s) * a end,
    }
    for k, f in ipairs(cases) do
      local a, s = x64:clone():requires_grad(), src64:clone():requires_grad()
      local af, sf = x64:float():requires_grad(), src64:float():requires_grad()
      local o = f(a, s)
      local g = lfl.randn(o:size(), "f64")
      lfl.backward(o, g); lfl.backward(f(af, sf), g:float())
      t.assert_tensor_close(af.grad:double(), a.grad, 1e-5, 1e-5, "case " .. k)
      if s.grad then t.assert_tensor_close(sf.grad:double(), s.grad, 1e-5, 1e-5, "case " .. k .. " src") end
    end
  end,

  errors = function()
    local x = lfl.randn(3, 4)
    local e = t.assert_error(function() x:index_select(2, lfl.tensor({0, 4}, "i64")) end, "index 4")
    t.assert(e:find("size 4", 1, true), e)
    t.assert_error(function() x:index_select(1, lfl.tensor({-1}, "i64")) end, "index -1")
    t.assert_error(function() x:index_select(1, lfl.tensor({{0}}, "i64")) end, "1-D")
    t.assert_error(function() x:index_select(3, lfl.tensor({0}, "i64")) end, "out of range")
    t.assert_error(function() x:index_select(1, lfl.tensor({0})) end, "i64 or i32")
    t.assert_error(function() x:gather(2, lfl.tensor({{0, 9}}, "i64")) end, "index 9")
    t.assert_error(function() x:gather(2, lfl.tensor({0}, "i64")) end, "as many dims")
    t.assert_error(function() x:gather(2, lfl.zeros({4, 1}, "i64")) end, "larger than the input")
    t.assert_error(function() x:scatter_add(1, lfl.zeros({2, 2}, "i64"), lfl.ones(1, 2)) end, "larger than src")
    t.assert_error(function() x:scatter_add(1, lfl.zeros({1, 2}, "i64"), lfl.ones(1, 2, "f64")) end, "dtypes differ")
    t.assert_error(function() x:scatter_add(1, lfl.tensor({{3, 0}}, "i64"), lfl.ones(1, 2)) end, "index 3")
  end,
})

-- ---- cat / stack / split ----

t.suite("cat_stack_split", {
  cat_values = function()
    local a, b = lfl.randn(2, 3), lfl.randn(2, 1)
    local c = lfl.randn(3, 2):transpose()                 -- strided [2, 3]
    local o = lfl.cat({a, b, c}, 2)
    assert_shape(o, {2, 7})
    t.assert_tensor_close(o:narrow(2, 1, 3), a, 0, 0)
    t.assert_tensor_close(o:narrow(2, 4, 1), b, 0, 0)
    t.assert_tensor_close(o:narrow(2, 5, 3), c, 0, 0)
    local o1 = lfl.cat({a, c, lfl.zeros(0, 3)})           -- default dim 1, an empty piece
    assert_shape(o1, {4, 3})
    t.assert_tensor_close(o1[3], c[1], 0, 0)
    t.assert_tensor_close(lfl.cat({a}, -1), a, 0, 0)
    local i = lfl.cat({lfl.tensor({1, 2}, "i64"), lfl.tensor({7}, "i64")})
    t.assert_eq(i:dtype(), "i64"); t.assert_tensor_close(i, {1, 2, 7}, 0, 0)
  end,

  stack_values = function()
    local a, b = lfl.randn(2, 3), lfl.randn(3, 2):transpose()
    local s = lfl.stack({a, b})
    assert_shape(s, {2, 2, 3})
    t.assert_tensor_close(s[2], b, 0, 0)
    local s3 = lfl.stack({a, b, a}, -1)
    assert_shape(s3, {2, 3, 3})
    t.assert_tensor_close(s3:select(3, 2), b, 0, 0)
    assert_shape(lfl.stack({a, b}, 2), {2, 2, 3})
    t.assert_tensor_close(lfl.stack({a, b}, 2):select(2, 1), a, 0, 0)
  end,

  split_values = function()
    local x = lfl.arange(2 * 7, "f64"):view(2, 7)
    local p = x:split(3, 2)
    t.assert_eq(#p, 3)
    assert_shape(p[1], {2, 3}); assert_shape(p[3], {2, 1})
    t.assert_tensor_close(p[3], {{6}, {13}}, 0, 0)
    local q = x:split({1, 0, 4, 2}, -1)
    t.assert_eq(#q, 4)
    assert_shape(q[2], {2, 0})
    t.assert_tensor_close(q[3], x:narrow(2, 2, 4), 0, 0)
    local r = x:split(1)                                  -- default dim 1
    t.assert_eq(#r, 2); t.assert_tensor_close(r[2], {{7, 8, 9, 10, 11, 12, 13}}, 0, 0)
    -- pieces are views of the input, as in torch
    p[2]:fill_(-1)
    t.assert_eq(x[1][4], -1)
    t.assert_tensor_close(lfl.cat(x:split(2, 2), 2), x, 0, 0)
  end,

  gradcheck = function()
    local a = r64(2, 3)
    local b = lfl.randn(2, 1, "f64"):requires_grad()
    local c = lfl.randn(3, 2, "f64"):transpose():requires_grad()
    t.gradcheck(function(x, y, z) return lfl.cat({x, y, z}, -1) end, {a, b, c})
    t.gradcheck(function(x, z) return lfl.cat({x, z * 2, x}, 1) end, {a, c})
    t.gradcheck(function(x, z) return lfl.stack({x, z}, -1) end, {a, c})
    t.gradcheck(function(x, z) return lfl.stack({z, x, z}, 1) end, {a, c})
    -- split: more than 4 pieces (output shapes kept past the first 4), some unused
    local x = r64(3, 8)
    t.gradcheck(function(v)
      local p = v:split(1, -1)
      return lfl.cat({p[1] * 2, p[6], p[8] * 3, p[2]}, 2)
    end, {x})
    t.gradcheck(function(v)
      local p = v:split({2, 1, 5}, 2)
      return p[3] * p[3]
    end, {x})
    local xt = lfl.randn(8, 3, "f64"):transpose():requires_grad()
    t.gradcheck(function(v)
      local p = v:split(3, 2)
      return lfl.cat({p[3], p[1]}, 2)
    end, {xt})
    t.gradcheck(function(v) return v:split(2, 1)[2] end, {x})
  end,

  errors = function()
    local a, b = lfl.randn(2, 3), lfl.randn(2, 4)
    local e = t.assert_error(function() lfl.cat({a, b}, 1) end, "tensor 2 has shape [2,4]")
    t.assert(e:find("tensor 1 has [2,3]", 1, true), e)
    t.assert_error(function() lfl.cat({a, lfl.randn(3)}, 1) end, "tensor 2 has shape [3]")
    t.assert_error(function() lfl.cat({a, a:double()}, 1) end, "tensor 2 is f64")
    t.assert_error(function() lfl.cat({}, 1) end, "empty")
    t.assert_error(function() lfl.cat({a, 3}, 1) end, "list entry 2")
    t.assert_error(function() lfl.cat({a, b}, 3) end, "dim 3 out of range")
    t.assert_error(function() lfl.stack({a, b}) end, "tensor 2 has shape [2,4]")
    t.assert_error(function() lfl.stack({a, a}, 4) end, "dim 4 out of range")
    t.assert_error(function() a:split({1, 1}, 2) end, "sum to 2 but dim 2 has size 3")
    t.assert_error(function() a:split({4, -1}, 2) end, "negative size")
    t.assert_error(function() a:split(0, 2) end, "positive")
    t.assert_error(function() a:split(1, 3) end, "out of range")
  end,
})

t.run()
