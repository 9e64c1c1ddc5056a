-- The op x device dispatch table seen from Lua: lfl.sys.ops() lists which
-- entries each device kind implements (every one on the CPU; on CUDA the
-- kernels of kernels/optable.c, none in a CPU-only build), and an entry taken
-- out of the table (lfl.sys.op_remove, a test hook) gives the one uniform
-- error, in forward and in backward, until it is put back.
local t = lfl.test

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

t.suite("dispatch", {
  ops_lists_every_entry_on_the_cpu = function()
    local ops = lfl.sys.ops()
    t.assert(type(ops.cpu) == "table" and type(ops.cuda) == "table", "ops() has a cpu and a cuda list")
    t.assert(#ops.cpu > 40, "the CPU implements the whole table (" .. #ops.cpu .. " entries)")
    local cpu = set(ops.cpu)
    for _, name in ipairs({"add", "matmul", "softmax", "softmax_backward", "attention", "attention_backward",
                           "rmsnorm_backward", "linear_cross_entropy_backward", "rope_cos_sin", "nonzero"}) do
      t.assert(cpu[name], name .. " is in the table with a CPU kernel")
    end
    local distinct = 0
    for _ in pairs(cpu) do distinct = distinct + 1 end
    t.assert_eq(distinct, #ops.cpu, "names are unique")
    for _, name in ipairs(ops.cuda) do t.assert(cpu[name], "CUDA entry " .. name .. " is an op of the table") end
    -- CUDA kernels exist in the table only when the CUDA backend was built
    local built = not lfl.sys.cuda():find("not built", 1, true)
    if built then
      local cuda = set(ops.cuda)
      for _, name in ipairs({"add", "sub", "mul", "div", "matmul"}) do t.assert(cuda[name], "cuda has " .. name) end
    else
      t.assert_eq(#ops.cuda, 0, "a CPU-only build has no CUDA kernel")
    end
  end,

  missing_kernel_gives_the_uniform_error = function()
    local x = lfl.randn(3, 5)
    local want = lfl.softmax(x, 2)
    lfl.sys.op_remove("softmax", "cpu")
    local ok, err = pcall(lfl.softmax, x, 2)
    lfl.sys.op_restore("softmax", "cpu")
    t.assert(not ok, "softmax without its kernel fails")
    t.assert(tostring(err):find("softmax: not implemented on cpu (no kernel in the dispatch table)", 1, true),
             "the uniform error, got: " .. tostring(err))
    t.assert_tensor_close(lfl.softmax(x, 2), want, 0, 0, "back in the table, the same result")
    -- removing is not sticky for other ops
    t.assert_tensor_close(lfl.log_softmax(x, 2):exp(), want, 1e-6, 1e-6)
  end,

  shared_entry_names_the_op_called = function()
    local x = lfl.randn(4)
    lfl.sys.op_remove("unary", "cpu")
    local ok, err = pcall(function() return x:sigmoid() end)
    lfl.sys.op_restore("unary", "cpu")
    t.assert(not ok and tostring(err):find("sigmoid: not implemented on cpu (no unary kernel in the dispatch table)",
                                            1, true), "error: " .. tostring(err))
    t.assert_eq(x:sigmoid():numel(), 4)
  end,

  missing_backward_kernel = function()
    local x = lfl.randn(2, 6):requires_grad()
    lfl.sys.op_remove("rmsnorm_backward", "cpu")
    local y = lfl.rmsnorm(x, lfl.ones(6), 1e-6):sum()
    local ok, err = pcall(function() y:backward() end)
    lfl.sys.op_restore("rmsnorm_backward", "cpu")
    t.assert(not ok and tostring(err):find("rmsnorm_backward: not implemented on cpu (no kernel in the dispatch table)",
                                            1, true), "error: " .. tostring(err))
    lfl.rmsnorm(x, lfl.ones(6), 1e-6):sum():backward()
    t.assert(x.grad ~= nil, "backward runs once the kernel is back")
  end,

  hooks_check_their_arguments = function()
    t.assert_error(function() lfl.sys.op_remove("no_such_op", "cpu") end, "'no_such_op' is not an entry")
    t.assert_error(function() lfl.sys.op_remove("add", "tpu") end, "'tpu' is not a device kind")
    lfl.sys.op_restore("add", "cpu") -- restoring what was never removed changes nothing
    t.assert_tensor_close(lfl.tensor({1, 2}) + lfl.tensor({3, 4}), {4, 6})
  end,
})

t.run()
