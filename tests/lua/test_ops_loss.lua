-- The loss ops: cross_entropy, linear_cross_entropy (chunked, logits never
-- whole) and token_logprobs. Finite-difference gradchecks in f64, values
-- against a plain Lua log-sum-exp, ignore_index -100, reductions, the fused
-- op against linear + cross_entropy, numerical stability and errors.
local t = lfl.test

local function labels(tbl) return lfl.tensor(tbl, "i64") end

-- per-row -log softmax(x)[label] computed element by element in Lua (x: [R, V] f64)
local function ref_rows(x, lab)
  local R, V = x:size()[1], x:size()[2]
  local out = {}
  for r = 1, R do
    local l = lab[r]
    if l == -100 then out[r] = 0 else
      local m = -math.huge
      for j = 1, V do m = math.max(m, x[r][j]) end
      local s = 0
      for j = 1, V do s = s + math.exp(x[r][j] - m) end
      out[r] = m + math.log(s) - x[r][l + 1]
    end
  end
  return out
end

-- random labels in [0, V) with the given 1-based positions set to -100
local function rand_labels(n, V, ignored)
  local tbl = {}
  for i = 1, n do tbl[i] = math.floor(lfl.rand(1):item() * V) % V end
  for _, i in ipairs(ignored or {}) do tbl[i] = -100 end
  return labels(tbl)
end

t.suite("cross_entropy", {
  values_match_lua_reference = function()
    local x = lfl.randn(5, 7, "f64") * 3
    local lab = labels({0, 6, -100, 3, 2})
    local want = ref_rows(x, lab)
    t.assert_tensor_close(lfl.cross_entropy(x, lab, {reduction = "none"}), want, 1e-12, 1e-12)
    local sum = want[1] + want[2] + want[4] + want[5]
    t.assert_close(lfl.cross_entropy(x, lab, {reduction = "sum"}):item(), sum, 1e-12)
    t.assert_close(lfl.cross_entropy(x, lab):item(), sum / 4, 1e-12, "mean over the 4 non-ignored")
    t.assert_close(x:cross_entropy(lab, {reduction = "mean"}):item(), sum / 4, 1e-12, "method form")
    -- f32 agrees with f64
    t.assert_tensor_close(lfl.cross_entropy(x:float(), lab, {reduction = "none"}), want, 1e-5, 1e-5)
  end,

  gradcheck_reductions = function()
    local x = lfl.randn(4, 6, "f64"):requires_grad()
    local lab = labels({1, -100, 5, 0})
    for _, red in ipairs({"mean", "sum", "none"}) do
      t.gradcheck(function(a) return lfl.cross_entropy(a, lab, {reduction = red}) end, {x})
    end
  end,

  gradcheck_3d_noncontiguous_i32 = function()
    -- logits [2, 3, 5] as a permuted view; labels as i32
    local x = lfl.randn(5, 2, 3, "f64"):permute(2, 3, 1):requires_grad()
    t.assert(not x:is_contiguous())
    local lab = lfl.tensor({{4, 0, -100}, {2, -100, 1}}, "i32")
    t.gradcheck(function(a) return lfl.cross_entropy(a, lab, {reduction = "none"}) end, {x})
    t.gradcheck(function(a) return lfl.cross_entropy(a, lab) end, {x})
  end,

  ignored_rows_have_zero_grad = function()
    local x = lfl.randn(3, 4, "f64"):requires_grad()
    local lab = labels({-100, 2, -100})
    local l = lfl.cross_entropy(x, lab, {reduction = "none"})
    t.assert_eq(l[1], 0); t.assert_eq(l[3], 0)
    l:sum():backward()
    for j = 1, 4 do t.assert_eq(x.grad[1][j], 0); t.assert_eq(x.grad[3][j], 0) end
    -- the live row: softmax - onehot, sums to 0
    local s = 0
    for j = 1, 4 do s = s + x.grad[2][j] end
    t.assert_close(s, 0, 1e-12)
    t.assert(x.grad[2][3] < 0)
  end,

  all_ignored = function()
    local x = lfl.randn(3, 4):requires_grad()
    local lab = labels({-100, -100, -100})
    local m = lfl.cross_entropy(x, lab)
    t.assert(m:item() ~= m:item(), "mean over zero targets is NaN, as in torch")
    m:backward()
    t.assert_tensor_close(x.grad, lfl.zeros(3, 4), 0, 0)
    t.assert_eq(lfl.cross_entropy(x, lab, {reduction = "sum"}):item(), 0)
  end,

  stable_for_large_logits = function()
    local x = lfl.tensor({{1e4, 1e4 - 1, 1e4 - 2}, {-1e4, -1e4 + 3, -1e4}}):requires_grad()
    local l = lfl.cross_entropy(x, labels({1, 1}), {reduction = "none"})
    local a = math.log(1 + math.exp(1) + math.exp(-1))       -- row 1: lse - (max - 1)
    local b = math.log(1 + 2 * math.exp(-3))                  -- row 2: label is the max
    t.assert_tensor_close(l, {a, b}, 1e-5, 1e-5)
    l:sum():backward()
    for i = 1, x:numel() do local g = x.grad:view(-1)[i]; t.assert(g == g, "finite grad") end
  end,

  vector_logits = function()
    local x = lfl.randn(6, "f64")
    local lab = labels({4}):view({})
    t.assert_eq(lab:dim(), 0)
    t.assert_close(lfl.cross_entropy(x, lab):item(), ref_rows(x:view(1, 6), labels({4}))[1], 1e-12)
  end,

  no_grad_records_nothing = function()
    local x = lfl.randn(2, 3):requires_grad()
    local l = lfl.no_grad(function() return lfl.cross_entropy(x, labels({0, 1})) end)
    t.assert(not l:get_requires_grad())
  end,

  errors = function()
    local x = lfl.randn(2, 3, 5)
    local bad = labels({{0, 1, 2}, {3, 5, 0}})
    local e = t.assert_error(function() lfl.cross_entropy(x, bad) end, "label 5 at position [1,1]")
    t.assert(e:find("[0, 5)", 1, true), e)
    t.assert_error(function() lfl.cross_entropy(x, labels({{0, 1, 2}, {-1, 0, 0}})) end, "label -1")
    t.assert_error(function() lfl.cross_entropy(x, labels({{0, 1, 2}, {-101, 0, 0}})) end, "-100 marks")
    t.assert_error(function() lfl.cross_entropy(x, lfl.zeros(2, 3)) end, "labels must be i64 (or i32)")
    t.assert_error(function() lfl.cross_entropy(x, labels({0, 1})) end, "want [2,3]")
    t.assert_error(function() lfl.cross_entropy(lfl.arange(6, "i64"):view(2, 3), labels({0, 1})) end, "cross_entropy")
    t.assert_error(function() lfl.cross_entropy(x, bad, {reduction = "avg"}) end, 'reduction must be "mean"')
    t.assert_error(function() lfl.cross_entropy(lfl.zeros(2, 0), labels({-100, -100})) end, "at least one class")
  end,
})

t.suite("linear_cross_entropy", {
  gradcheck_chunk_not_dividing_V = function()
    local h = lfl.randn(5, 4, "f64"):requires_grad()
    local w = lfl.randn(7, 4, "f64"):requires_grad()
    local lab = labels({1, 6, -100, 3, 0})
    for _, red in ipairs({"mean", "sum", "none"}) do
      t.gradcheck(function(a, b) return lfl.linear_cross_entropy(a, b, lab, {reduction = red, chunk = 3}) end, {h, w})
    end
  end,

  gradcheck_3d_noncontiguous_w = function()
    local h = lfl.randn(2, 3, 4, "f64"):requires_grad()
    local w = lfl.randn(4, 9, "f64"):transpose():requires_grad()   -- [9, 4] view, tied-embedding style
    t.assert(not w:is_contiguous())
    local lab = lfl.tensor({{8, -100, 2}, {-100, -100, -100}}, "i32")
    t.gradcheck(function(a, b) return lfl.linear_cross_entropy(a, b, lab, {chunk = 4}) end, {h, w})
    t.gradcheck(function(a, b) return lfl.linear_cross_entropy(a, b, lab, {chunk = 2, reduction = "none"}) end, {h, w})
  end,

  matches_unfused = function()
    local h = lfl.randn(64, 32):requires_grad()
    local w = (lfl.randn(1000, 32) * 0.5):requires_grad()
    local ign = {}
    for i = 1, 64, 7 do ign[#ign + 1] = i end
    local lab = rand_labels(64, 1000, ign)
    for _, c in ipairs({300, 1000, 0, 4096}) do
      local f = lfl.linear_cross_entropy(h, w, lab, {chunk = c})
      f:backward()
      local gh, gw = h.grad, w.grad
      h.grad = nil; w.grad = nil
      local u = lfl.cross_entropy(lfl.linear(h, w), lab)
      u:backward()
      t.assert_close(f:item(), u:item(), 1e-6, "loss chunk " .. c)
      t.assert_tensor_close(gh, h.grad, 1e-6, 1e-4, "dhidden chunk " .. c)
      t.assert_tensor_close(gw, w.grad, 1e-6, 1e-4, "dw chunk " .. c)
      h.grad = nil; w.grad = nil
    end
  end,

  frozen_w_gets_no_grad = function()
    local h = lfl.randn(3, 4, "f64"):requires_grad()
    local w = lfl.randn(5, 4, "f64")
    t.gradcheck(function(a) return lfl.linear_cross_entropy(a, w, labels({4, 0, -100}), {chunk = 2}) end, {h})
    t.assert(w.grad == nil)
    -- and hidden frozen, w trained (the LoRA-free lm_head case)
    local hf, wt = lfl.randn(3, 4, "f64"), lfl.randn(5, 4, "f64"):requires_grad()
    t.gradcheck(function(b) return lfl.linear_cross_entropy(hf, b, labels({1, 2, 3}), {chunk = 3}) end, {wt})
    t.assert(hf.grad == nil)
  end,

  -- a frozen w: dhidden comes from the forward's single pass (online softmax
  -- sum, rows rescaled as their max grows); every reduction, chunks, ignores
  eager_frozen_w = function()
    local h = lfl.randn(2, 3, 4, "f64"):requires_grad()
    local w = lfl.randn(9, 4, "f64") * 3 -- spread logits: row maxima move across chunks
    local lab = lfl.tensor({{8, -100, 2}, {0, 5, 7}}, "i64")
    for _, red in ipairs({"mean", "sum", "none"}) do
      for _, c in ipairs({2, 4, 9}) do
        t.gradcheck(function(a) return lfl.linear_cross_entropy(a, w, lab, {reduction = red, chunk = c}) end, {h})
      end
    end
    local hf = lfl.randn(64, 32):requires_grad()
    local wf = lfl.randn(1000, 32) * 0.5
    local lab2 = rand_labels(64, 1000, {3, 9})
    for _, c in ipairs({300, 0}) do
      local f = lfl.linear_cross_entropy(hf, wf, lab2, {chunk = c})
      f:backward()
      local gh = hf.grad
      hf.grad = nil
      local u = lfl.cross_entropy(lfl.linear(hf, wf), lab2)
      u:backward()
      t.assert_close(f:item(), u:item(), 1e-6, "loss chunk " .. c)
      t.assert_tensor_close(gh, hf.grad, 1e-6, 1e-4, "dhidden chunk " .. c)
      hf.grad = nil
    end
    local ha = lfl.randn(2, 3):requires_grad()
    lfl.linear_cross_entropy(ha, lfl.randn(4, 3), labels({-100, -100}), {chunk = 3}):backward()
    t.assert_tensor_close(ha.grad, lfl.zeros(2, 3), 0, 0)
  end,

  all_ignored_and_empty = function()
    local h, w = lfl.randn(2, 3):requires_grad(), lfl.randn(4, 3):requires_grad()
    local m = lfl.linear_cross_entropy(h, w, labels({-100, -100}), {chunk = 3})
    t.assert(m:item() ~= m:item(), "NaN like torch")
    m:backward()
    t.assert_tensor_close(h.grad, lfl.zeros(2, 3), 0, 0)
    t.assert_tensor_close(w.grad, lfl.zeros(4, 3), 0, 0)
    local s = lfl.linear_cross_entropy(lfl.zeros(0, 3), w, lfl.tensor({}, "i64"), {reduction = "sum"})
    t.assert_eq(s:item(), 0)
  end,

  errors = function()
    local h, w = lfl.randn(2, 3), lfl.randn(4, 3)
    t.assert_error(function() lfl.linear_cross_entropy(h, lfl.randn(4, 2), labels({0, 1})) end, "want hidden [..., H]")
    t.assert_error(function() lfl.linear_cross_entropy(h, w, labels({0, 4})) end, "label 4 at position [1]")
    t.assert_error(function() lfl.linear_cross_entropy(h, w, labels({0, 1, 2})) end, "want [2]")
    t.assert_error(function() lfl.linear_cross_entropy(h, w, labels({0, 1}), {chunk = -1}) end, "chunk must be >= 0")
    t.assert_error(function() lfl.linear_cross_entropy(h, w, labels({0, 1}), {chunk = "x"}) end, "chunk must be a number")
    t.assert_error(function() lfl.linear_cross_entropy(h, w:double(), labels({0, 1})) end, "linear_cross_entropy")
    t.assert_error(function() lfl.linear_cross_entropy(h, w, labels({0, 1}), {reduction = 3}) end, "reduction must be")
  end,
})

t.suite("token_logprobs", {
  values_and_gradcheck = function()
    local x = lfl.randn(2, 3, 6, "f64"):requires_grad()
    local lab = labels({{5, -100, 0}, {1, 2, -100}})
    local lp = lfl.token_logprobs(x, lab)
    t.assert_eq(lp:size()[1], 2); t.assert_eq(lp:size()[2], 3)
    local want = ref_rows(x:detach():view(6, 6), lab:view(6))
    for i = 1, 6 do want[i] = -want[i] end
    t.assert_tensor_close(lp:view(6), want, 1e-12, 1e-12)
    t.assert_eq(lp[1][2], 0); t.assert_eq(lp[2][3], 0)
    t.gradcheck(function(a) return lfl.token_logprobs(a, lab) end, {x})
    local xt = lfl.randn(6, 3, "f64"):transpose():requires_grad()   -- non-contiguous [3, 6]
    t.gradcheck(function(a) return a:token_logprobs(labels({0, -100, 5})) end, {xt})
  end,

  is_minus_cross_entropy = function()
    local x = lfl.randn(4, 9)
    local lab = labels({3, 8, -100, 0})
    t.assert_tensor_close(lfl.token_logprobs(x, lab), lfl.cross_entropy(x, lab, {reduction = "none"}) * -1, 0, 0)
  end,

  errors = function()
    t.assert_error(function() lfl.token_logprobs(lfl.randn(2, 3), labels({0, 3})) end, "token_logprobs: label 3")
    t.assert_error(function() lfl.token_logprobs(lfl.randn(2, 3), lfl.zeros(2)) end, "labels must be i64")
  end,
})

t.run()
