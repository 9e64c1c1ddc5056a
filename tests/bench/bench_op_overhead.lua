-- Per-call cost of small ops, where the fixed cost of an op (bridge, checks,
-- output allocation, the dispatch-table lookup, the autograd bookkeeping)
-- dominates: microseconds per call on tiny tensors, forward with no_grad and
-- forward with a node recorded. Figures only, not pass/fail.
--   ./build/lfl tests/bench/bench_op_overhead.lua [calls]
local n = tonumber(arg and arg[1]) or 100000
local clock, fmt = lfl.sys.clock, string.format

local function best(fn)
  local b = math.huge
  for _ = 1, 3 do
    collectgarbage()
    local t0 = clock()
    for _ = 1, n do fn() end
    local dt = clock() - t0
    if dt < b then b = dt end
  end
  return b / n * 1e6
end

lfl.manual_seed(0)
local a, b = lfl.randn(4, 8), lfl.randn(4, 8)
local w = lfl.ones(8)
local ga = lfl.randn(4, 8):requires_grad()
local cases = {
  {"add", function() return a + b end},
  {"mul (scalar)", function() return a * 2 end},
  {"exp", function() return a:exp() end},
  {"sum", function() return a:sum() end},
  {"softmax", function() return lfl.softmax(a, 2) end},
  {"rmsnorm", function() return lfl.rmsnorm(a, w, 1e-6) end},
  {"matmul 4x8x4", function() return lfl.matmul(a, b:transpose(1, 2)) end},
}
print(fmt("per-call time of small ops ([4, 8] f32), best of 3 x %d calls, %d threads", n, lfl.sys.threads()))
for _, c in ipairs(cases) do
  local f = c[2]
  local us = best(function() lfl.no_grad(f) end)
  print(fmt("  %-14s %6.2f us", c[1], us))
end
local us = best(function() return (ga * 2 + ga):sum() end)
print(fmt("  %-14s %6.2f us (3 ops, nodes recorded)", "ga*2+ga, sum", us))
