-- The autograd engine: accumulation, no_grad, detach, views, custom nodes,
-- checkpointing, and error propagation from Lua callbacks.
local t = lfl.test

t.suite("autograd", {
  square_sum = function()
    local x = lfl.randn(4, 4):requires_grad()
    ;(x * x):sum():backward()
    t.assert_tensor_close(x.grad, x * 2, 1e-6, 1e-6)
  end,

  accumulates_and_resets = function()
    local x = lfl.tensor({1, 2, 3}):requires_grad()
    x:sum():backward(); x:sum():backward()
    t.assert_tensor_close(x.grad, {2, 2, 2})
    x.grad = nil
    t.assert(x.grad == nil)
    ;(x * 3):sum():backward()
    t.assert_tensor_close(x.grad, {3, 3, 3})
  end,

  non_scalar_needs_grad = function()
    local x = lfl.tensor({1, 2}):requires_grad()
    local y = x * 2
    t.assert_error(function() y:backward() end, "non-scalar")
    y:backward(lfl.tensor({1, 10}))
    t.assert_tensor_close(x.grad, {2, 20})
  end,

  no_grad_and_detach = function()
    local x = lfl.tensor({1, 2}):requires_grad()
    local y = lfl.no_grad(function() return x * 2 end)
    t.assert(not y:get_requires_grad() and y:is_leaf())
    t.assert(not x:detach():get_requires_grad())
    t.assert(lfl.is_grad_enabled())
    t.assert_error(function() lfl.no_grad(function() error("boom") end) end, "boom")
    t.assert(lfl.is_grad_enabled(), "grad mode restored after an error")
  end,

  reuse_freed_graph = function()
    local x = lfl.tensor({1, 2}):requires_grad()
    local y = (x * x):sum()
    y:backward()
    t.assert_error(function() y:backward() end, "already used")
  end,

  views_propagate = function()
    local x = lfl.arange(6, "f64"):view(2, 3):requires_grad()
    local y = x:transpose():narrow(1, 2, 2):select(2, 1)   -- x[1][2], x[1][3]
    ;(y * lfl.tensor({10, 100}, "f64")):sum():backward()
    t.assert_tensor_close(x.grad, {{0, 10, 100}, {0, 0, 0}})
    local z = lfl.tensor({1, 2}, "f64"):requires_grad()
    z:view(2, 1):expand(2, 3):sum():backward()
    t.assert_tensor_close(z.grad, {3, 3})
  end,

  diamond_graph = function()
    local x = lfl.tensor({3}, "f64"):requires_grad()
    local a = x * x
    local b = a * x + a   -- x^3 + x^2
    b:sum():backward()
    t.assert_close(x.grad[1], 3 * 9 + 2 * 3)
  end,

  custom_node = function()
    local cube = lfl.custom(function(ctx, x) ctx.x = x; return x * x * x end,
                            function(ctx, g) return g * ctx.x * ctx.x * 3 end)
    local x = lfl.tensor({1, 2}, "f64"):requires_grad()
    cube(x):sum():backward()
    t.assert_tensor_close(x.grad, {3, 12})
    local bad = lfl.custom(function(ctx, x) return x * 1 end, function() error("backward exploded") end)
    local y = bad(lfl.tensor({1}):requires_grad()):sum()
    t.assert_error(function() y:backward() end, "backward exploded")
  end,

  checkpoint_matches_plain = function()
    local w = lfl.randn(4, 4, "f64"):requires_grad()
    local x = lfl.randn(3, 4, "f64"):requires_grad()
    local function block(h) return lfl.matmul(h, w) * lfl.matmul(h, w) end
    block(x):sum():backward()
    local gw, gx = w.grad:clone(), x.grad:clone()
    w.grad = nil; x.grad = nil
    local out = lfl.checkpoint(block, x)
    t.assert(out:grad_fn() == "checkpoint")
    out:sum():backward()
    t.assert_tensor_close(w.grad, gw, 1e-12, 1e-10)
    t.assert_tensor_close(x.grad, gx, 1e-12, 1e-10)
    t.assert_error(function() lfl.checkpoint(function(h) error("inside region") end, x) end, "inside region")
  end,

  checkpoint_error_in_recompute = function()
    local calls = 0
    local x = lfl.randn(2, "f64"):requires_grad()
    local out = lfl.checkpoint(function(h)
      calls = calls + 1
      if calls == 2 then error("recompute failed") end
      return h * h
    end, x)
    t.assert_error(function() out:sum():backward() end, "recompute failed")
  end,

  gradcheck_basic_ops = function()
    local a = lfl.randn(3, 4, "f64"):requires_grad()
    local b = lfl.randn(4, "f64"):requires_grad()      -- broadcast
    t.gradcheck(function(x, y) return x * y + x end, {a, b})
    t.gradcheck(function(x, y) return x / (y * y + 1) - y end, {a, b})
    local m = lfl.randn(4, 2, "f64"):requires_grad()
    t.gradcheck(function(x, y) return lfl.matmul(x, y) end, {a, m})
    local at = lfl.randn(4, 3, "f64"):transpose():requires_grad()  -- non-contiguous
    t.gradcheck(function(x, y) return lfl.matmul(x, y) end, {at, m})
    local bat = lfl.randn(2, 1, 3, 4, "f64"):requires_grad()
    local bm = lfl.randn(5, 4, 2, "f64"):requires_grad()           -- batch broadcast
    t.gradcheck(function(x, y) return lfl.matmul(x, y) end, {bat, bm})
    local w = lfl.randn(5, 4, "f64"):requires_grad()
    local bias = lfl.randn(5, "f64"):requires_grad()
    t.gradcheck(function(x, ww, bb) return lfl.linear(x, ww, bb) end, {a, w, bias})
    t.gradcheck(function(x) return x:sum(2, true) end, {a})
    t.gradcheck(function(x) return x:mean({1, 2}) end, {a})
    t.gradcheck(function(x) return x:affine(3, 1) end, {a})
    t.gradcheck(function(x) return x:to("f32"):to("f64") end, {a}, {eps = 1e-3, atol = 1e-3, rtol = 1e-3})
  end,
})

t.run()
