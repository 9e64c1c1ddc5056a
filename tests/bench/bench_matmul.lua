-- bench_matmul: the SmolLM2 / Llama block matmul shapes at seq 512 through
-- lfl.linear and lfl.matmul (forward, and forward + backward), in GFLOP/s,
-- so the overhead over raw OpenBLAS (./build/bench_gemm, same shapes and the
-- same best-of-3 timing) is visible. A figure, not a test.
--
--   ./build/lfl tests/bench/bench_matmul.lua [threads]
--
-- Shapes are M x K x N for y[M, N] = x[M, K] @ w[N, K]^T. fwd+bwd runs
-- y:backward(g) with x and w both requiring grad: three GEMMs, as bench_gemm.
local fmt = string.format
local clock = lfl.sys.clock

local threads = tonumber(arg and arg[1])
if threads then lfl.sys.threads(threads) end
print((lfl.sys.blas()))
print("threads: " .. lfl.sys.threads())
print()

local shapes = {
  {"q / o proj", 512, 576, 576},
  {"k / v proj", 512, 576, 192},
  {"gate / up", 512, 576, 1536},
  {"down", 512, 1536, 576},
  {"LoRA A (r=8)", 512, 576, 8},
  {"LoRA B (r=8)", 512, 8, 576},
}

-- best GFLOP/s over 3 batches, each repeated until it lasts >= 0.2 s
local function measure(flop, fn)
  fn() -- warm-up
  local best = 0
  for _ = 1, 3 do
    local reps, t0, dt = 0, clock(), 0
    repeat fn(); reps = reps + 1; dt = clock() - t0 until dt >= 0.2
    best = math.max(best, flop * reps / dt / 1e9)
  end
  collectgarbage()
  return best
end

print(fmt("%-14s %-14s %10s %10s %12s %12s", "shape", "M x K x N", "linear", "matmul", "linear f+b", "matmul f+b"))
for _, s in ipairs(shapes) do
  local name, m, k, n = s[1], s[2], s[3], s[4]
  local x, w = lfl.randn(m, k), lfl.randn(n, k)
  local g = lfl.randn(m, n)
  local flop = 2 * m * n * k
  local lin = measure(flop, function() return lfl.linear(x, w) end)
  local mm = measure(flop, function() return lfl.matmul(x, w:transpose()) end)
  local xg, wg = x:clone():requires_grad(), w:clone():requires_grad()
  local linb = measure(3 * flop, function()
    xg.grad = nil; wg.grad = nil
    lfl.linear(xg, wg):backward(g)
  end)
  local mmb = measure(3 * flop, function()
    xg.grad = nil; wg.grad = nil
    lfl.matmul(xg, wg:transpose()):backward(g)
  end)
  print(fmt("%-14s %-14s %10.1f %10.1f %12.1f %12.1f", name, fmt("%dx%dx%d", m, k, n), lin, mm, linb, mmb))
end

local a, b = lfl.randn(2048, 2048), lfl.randn(2048, 2048)
print()
print(fmt("lfl.linear 2048^3: %.1f GFLOP/s", measure(2 * 2048 ^ 3, function() return lfl.linear(a, b) end)))
