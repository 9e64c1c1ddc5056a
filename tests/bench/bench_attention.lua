-- Causal attention on the CPU at SmolLM2-135M's shape (B = 1, Hq = 9, Hkv = 3,
-- D = 64) for T = 512 and 2048: forward and forward + backward time and GFLOP/s.
-- Figures only (not pass/fail).   ./build/lfl tests/bench/bench_attention.lua [reps]
-- FLOPs are the useful ones under the causal mask (FlashAttention's convention):
-- forward 4 * B * Hq * T^2 * D / 2 (QK^T and PV), backward 2.5x that (5 GEMMs
-- to 2), so forward + backward = 3.5x forward.
local reps = tonumber(arg and arg[1]) or 5
local clock = lfl.sys.clock
local fmt = string.format

local function best(fn, n)
  fn() -- warm-up
  local b = math.huge
  for _ = 1, n do
    local t0 = clock()
    fn()
    local dt = clock() - t0
    if dt < b then b = dt end
  end
  return b
end

print(fmt("threads %d, %s", lfl.sys.threads(), (lfl.sys.blas())))
for _, T in ipairs({512, 2048}) do
  local B, Hq, Hkv, D = 1, 9, 3, 64
  lfl.manual_seed(0)
  local q, k, v = lfl.randn(B, Hq, T, D), lfl.randn(B, Hkv, T, D), lfl.randn(B, Hkv, T, D)
  local go = lfl.randn(B, Hq, T, D)
  local opts = {causal = true}
  local fwd_flop = 4 * B * Hq * T * T * D / 2
  local tf = best(function() lfl.no_grad(function() return lfl.attention(q, k, v, opts) end) end, reps)
  local qg, kg, vg = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
  local tfb = best(function()
    qg.grad, kg.grad, vg.grad = nil, nil, nil
    lfl.attention(qg, kg, vg, opts):backward(go)
  end, reps)
  print(fmt("causal attention B=%d Hq=%d Hkv=%d T=%d D=%d: forward %.2f ms (%.1f GFLOP/s), forward+backward %.2f ms (%.1f GFLOP/s)",
            B, Hq, Hkv, T, D, tf * 1e3, fwd_flop / tf / 1e9, tfb * 1e3, 3.5 * fwd_flop / tfb / 1e9))
end
