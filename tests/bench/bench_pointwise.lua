-- Throughput of the f32 pointwise kernels on 16M elements: GB/s counted as
-- bytes read + written (8 bytes per element). Figures only, not pass/fail.
-- Run: ./build/lfl tests/bench/bench_pointwise.lua
local clock, fmt = lfl.sys.clock, string.format

local N, REPS = 16 * 1024 * 1024, 10

local function bench(name, fn, x)
  local y = fn(x) -- warm-up: page-faults the output allocation path
  y = nil
  local best = math.huge
  for _ = 1, REPS do
    local t0 = clock()
    local r = fn(x)
    local dt = clock() - t0
    r = nil
    if dt < best then best = dt end
  end
  collectgarbage()
  print(fmt("%-12s %8.2f ms   %6.2f GB/s   %6.0f Melem/s", name, best * 1e3, 8 * N / best / 1e9, N / best / 1e6))
end

lfl.manual_seed(1)
local x = lfl.randn(N)
print(fmt("pointwise f32, %d elements, %d threads, best of %d", N, lfl.sys.threads(), REPS))
bench("exp", lfl.exp, x)
bench("silu", lfl.silu, x)
bench("copy (ref)", function(t) return t:clone() end, x)
