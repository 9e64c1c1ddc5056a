-- Throughput of the f32 pointwise kernels: GB/s counted as bytes read +
-- written (8 bytes per element), for 16M elements and, to show the kernels
-- without the memory system in the way, 1M (4 MB: cache-resident, and run
-- first so that glibc's adaptive mmap threshold recycles the outputs).
-- Figures only, not pass/fail.
-- At 16M every call gets a fresh 64 MB output that glibc maps anew (first-touch
-- page faults), so the copy line is the ceiling there; running with
-- MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 keeps
-- the memory mapped between calls.
-- Run: ./build/lfl tests/bench/bench_pointwise.lua
local clock, fmt = lfl.sys.clock, string.format

local function bench(name, fn, x, reps)
  local n = x:numel()
  fn(x) -- warm-up
  local best = math.huge
  for _ = 1, reps do
    local t0 = clock()
    local r = fn(x)
    local dt = clock() - t0
    r = nil
    if dt < best then best = dt end
  end
  collectgarbage()
  print(fmt("  %-12s %8.3f ms   %6.2f GB/s   %6.0f Melem/s", name, best * 1e3, 8 * n / best / 1e9, n / best / 1e6))
end

lfl.manual_seed(1)
for _, n in ipairs({1024 * 1024, 16 * 1024 * 1024}) do
  local reps = n > 4e6 and 10 or 50
  local x = lfl.randn(n)
  print(fmt("pointwise f32, %d elements, %d threads, best of %d", n, lfl.sys.threads(), reps))
  bench("exp", lfl.exp, x, reps)
  bench("silu", lfl.silu, x, reps)
  bench("copy (ref)", function(t) return t:clone() end, x, reps)
end
