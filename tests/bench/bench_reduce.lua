-- Timings of the dim-wise ops at model scale (figures only, no pass/fail):
-- softmax over [4096, 49152] f32 (a batch of logits over a SmolLM-size
-- vocabulary) and the embedding backward of 4096 ids into a [49152, 576] table.
-- Run: ./build/lfl tests/bench/bench_reduce.lua [repeats]
local reps = tonumber(arg and arg[1]) or 3
local clock = lfl.sys.clock

local function best_of(n, fn)
  local best = math.huge
  for _ = 1, n do
    local t0 = clock()
    fn()
    best = math.min(best, clock() - t0)
  end
  return best
end

print(string.format("threads %d, blas %s", lfl.sys.threads(), tostring(lfl.sys.blas())))

do
  local n, v = 4096, 49152
  lfl.manual_seed(0)
  local x = lfl.randn(n, v) * 3
  local y
  local s = best_of(reps, function() y = nil; y = x:softmax(-1) end)
  local gb = 2 * n * v * 4 / 1e9 -- one read, one write
  print(string.format("softmax [%d, %d] f32, last dim: %.3f s (%.1f GB/s of input + output)", n, v, s, gb / s))
  s = best_of(reps, function() y = nil; y = x:log_softmax(-1) end)
  print(string.format("log_softmax [%d, %d] f32, last dim: %.3f s", n, v, s))
  -- what a fresh output of that size costs by itself (allocation, page faults, one copy)
  s = best_of(reps, function() y = nil; y = x:clone() end)
  print(string.format("  baseline: clone of the input: %.3f s", s))
  y, x = nil, nil
  collectgarbage()
end

do
  local v, h, n = 49152, 576, 4096
  lfl.manual_seed(1)
  local w = lfl.randn(v, h):requires_grad()
  local ids = (lfl.rand(n) * v):long()
  local g = lfl.randn(n, h)
  local f = best_of(reps, function() lfl.no_grad(function() return lfl.embedding(w, ids) end) end)
  local s = best_of(reps, function()
    w.grad = nil
    lfl.backward(lfl.embedding(w, ids), g)
  end)
  print(string.format("embedding [%d, %d], %d ids: forward %.2f ms, forward + backward %.2f ms", v, h, n, f * 1e3, s * 1e3))
  -- the engine copies a leaf's first gradient into w.grad: a [V, H] clone
  local z = lfl.zeros(v, h)
  s = best_of(reps, function() local c = z:clone() end)
  print(string.format("  baseline: clone of a [%d, %d] gradient: %.2f ms", v, h, s * 1e3))
end
