-- Tensor core through the bridge: creation, dtypes, views, indexing, copies.
local t = lfl.test

t.suite("tensor", {
  creation = function()
    local z = lfl.zeros(2, 3)
    t.assert_eq(z:dim(), 2); t.assert_eq(z:size(1), 2); t.assert_eq(z:size(2), 3); t.assert_eq(#z, 2)
    t.assert_eq(z:dtype(), "f32")
    t.assert_eq(lfl.ones({2, 2}, "f64"):sum():item(), 4)
    t.assert_eq(lfl.full({3}, 2.5):sum():item(), 7.5)
    t.assert_tensor_close(lfl.arange(5), {0, 1, 2, 3, 4})
    t.assert_tensor_close(lfl.arange(2, 8, 2, "i64"), {2, 4, 6})
    t.assert_tensor_close(lfl.eye(2), {{1, 0}, {0, 1}})
    local x = lfl.tensor({{1, 2, 3}, {4, 5, 6}}, "f64")
    t.assert_eq(x:dtype(), "f64"); t.assert_eq(x[2][3], 6)
    t.assert_error(function() lfl.tensor({{1, 2}, {3}}) end, "ragged")
    t.assert_error(function() lfl.zeros(2, 2, "q9") end, "unknown dtype")
  end,

  dtypes_roundtrip = function()
    local x = lfl.tensor({1.5, -2.25, 3.0e4, 1e-3})
    for _, dt in ipairs({"f64", "f16", "bf16"}) do
      local y = x:to(dt):to("f32")
      t.assert_tensor_close(y, x, 0, dt == "f64" and 0 or 1e-2, dt)
    end
    t.assert_tensor_close(lfl.tensor({1.7, -2.2}):to("i64"), {1, -2})
    t.assert_tensor_close(lfl.tensor({0, 3}):to("bool"), {0, 1})
    -- bf16 rounds to nearest even like torch: 1 + 2^-8 is a tie -> 1
    t.assert_eq(lfl.tensor({1 + 2 ^ -8}):to("bf16"):to("f32")[1], 1)
    t.assert_eq(lfl.tensor({1 + 3 * 2 ^ -8}):to("bf16"):to("f32")[1], 1 + 2 ^ -6)
  end,

  rng_reproducible = function()
    lfl.manual_seed(42); local a = lfl.randn(100)
    lfl.manual_seed(42); local b = lfl.randn(100)
    t.assert_tensor_close(a, b, 0, 0)
    local m, s = a:mean():item(), 0
    t.assert(math.abs(m) < 0.4, "randn mean " .. m)
    local u = lfl.rand(10000)
    t.assert(u:mean():item() > 0.45 and u:mean():item() < 0.55, "rand mean")
    local mx = 0
    for i = 1, 10000 do local v = u[i]; t.assert(v >= 0 and v < 1); end
    -- the same draws whatever the thread count
    lfl.manual_seed(7); local p = lfl.randn(100000)
    local th = lfl.sys.threads(); lfl.sys.threads(1)
    lfl.manual_seed(7); local q = lfl.randn(100000)
    lfl.sys.threads(th)
    t.assert_tensor_close(p, q, 0, 0)
  end,

  views = function()
    local x = lfl.arange(24):view(2, 3, 4)
    t.assert_eq(x[2][3][4], 23)
    local p = x:permute(3, 1, 2)
    t.assert_eq(p:size(1), 4); t.assert_eq(p[4][2][3], 23); t.assert(not p:is_contiguous())
    t.assert_eq(x:transpose(1, 3)[4][3][2], 23)
    local n = x:narrow(3, 2, 2)
    t.assert_tensor_close(n[1][1], {1, 2})
    t.assert_tensor_close(x:select(2, -1)[1], {8, 9, 10, 11})
    t.assert_tensor_close(lfl.tensor({1, 2}):view(2, 1):expand(2, 3), {{1, 1, 1}, {2, 2, 2}})
    t.assert_eq(x:unsqueeze(1):dim(), 4); t.assert_eq(x:unsqueeze(1):squeeze():dim(), 3)
    t.assert_eq(x:view(-1, 4):size(1), 6)
    t.assert_error(function() x:view(5, 5) end, "cannot view")
    t.assert_error(function() p:view(24) end, "not contiguous")
    t.assert_eq(p:reshape(24)[24], 23)
    t.assert_error(function() x:select(4, 1) end, "out of range")
    t.assert_error(function() return x[0] end, "1-based")
  end,

  index_slices_and_assign = function()
    local x = lfl.arange(12):view(3, 4)
    t.assert_tensor_close(x[{2, {2, 3}}], {5, 6})
    t.assert_tensor_close(x[{{}, -1}], {3, 7, 11})
    t.assert_tensor_close(x[{{2, -1}, {1, 1}}], {{4}, {8}})
    x[{1, {}}] = 0
    t.assert_tensor_close(x[1], {0, 0, 0, 0})
    x[3] = lfl.tensor({9, 9, 9, 9})
    t.assert_eq(x:sum():item(), 4 + 5 + 6 + 7 + 36)
    t.assert_error(function() x[{{1, 9}}] = 1 end, "out of bounds")
  end,

  copy_broadcast_and_cast = function()
    local d = lfl.zeros(2, 3)
    d:copy_(lfl.tensor({1, 2, 3}))
    t.assert_tensor_close(d, {{1, 2, 3}, {1, 2, 3}})
    local tr = lfl.arange(6):view(2, 3):transpose()
    local c = tr:contiguous()
    t.assert(c:is_contiguous())
    t.assert_tensor_close(c, {{0, 3}, {1, 4}, {2, 5}})
    t.assert_error(function() d:copy_(lfl.zeros(4)) end, "does not broadcast")
  end,

  printing = function()
    local s = tostring(lfl.tensor({{1, 2}, {3, 4}}))
    t.assert(s:find("shape=%[2,2%]") and s:find("dtype=f32") and s:find("1.0000"), s)
    local big = tostring(lfl.zeros(100, 100))
    t.assert(big:find("...", 1, true), "big tensors elide the middle")
    t.assert(#big < 2000, "elided print stays short")
    t.assert(tostring(lfl.tensor({1, 2}, "i64")):find("%[1, 2%]"))
    t.assert(tostring(lfl.randn(2):requires_grad() * 2):find("grad_fn=affine"))
    t.assert(tostring(lfl.tensor(3)):find("tensor%(3.0000"))
  end,

  errors_name_shapes = function()
    local e = t.assert_error(function() lfl.matmul(lfl.zeros(2, 3), lfl.zeros(4, 5)) end)
    t.assert(e:find("matmul: inner dimensions differ: [2,3] @ [4,5] (3 != 4)", 1, true), e)
    t.assert_error(function() lfl.add(lfl.zeros(2, 3), lfl.zeros(4)) end, "cannot be broadcast")
    t.assert_error(function() lfl.add(lfl.zeros(2), lfl.zeros(2, "f64")) end, "dtypes differ")
    t.assert_error(function() lfl.zeros(2):to("cuda") end, "cuda")
  end,
})

t.run()
