-- bench_loss: fused linear_cross_entropy against lfl.linear + lfl.cross_entropy
-- at the SmolLM2 lm_head size (N = 2048 tokens, H = 576, V = 49152), f32:
-- peak tensor-heap memory above the inputs (lfl.memory) and time, forward +
-- backward. A figure, not a test.
--
--   ./build/lfl tests/bench/bench_loss.lua [N] [chunk]
--
-- Each variant runs with w trained and with w frozen (a LoRA run's lm_head).
-- lfl.memory's peak is a process-wide high-water mark with no reset, so the
-- variants run from the smallest expected peak up; a peak that did not rise
-- above the previous one is an upper bound, printed as "<=".
local fmt = string.format
local clock = lfl.sys.clock
local MB = 1024 * 1024

local N = tonumber(arg and arg[1]) or 2048
local chunk = tonumber(arg and arg[2]) or 0
local H, V = 576, 49152
print((lfl.sys.blas()))
print(fmt("N = %d, H = %d, V = %d, f32; [N, V] logits = %.1f MB", N, H, V, N * V * 4 / MB))

lfl.manual_seed(0)
local hidden = lfl.zeros(N, H):normal_(0, 0.5):requires_grad()   -- in place: no creation peak
local w = lfl.zeros(V, H):normal_(0, 0.05):requires_grad()
local lt = {}
for i = 1, N do lt[i] = (i % 17 == 0) and -100 or (i * 7919) % V end
local labels = lfl.tensor(lt, "i64")

local function run(name, f, frozen_w)
  hidden.grad = nil; w.grad = nil
  local wt = frozen_w and w:detach() or w
  collectgarbage(); collectgarbage()
  local base, peak0 = lfl.memory()
  local t0 = clock()
  local loss = f(wt)
  local t1 = clock()
  loss:backward()
  local t2 = clock()
  local _, peak = lfl.memory()
  local grads = hidden.grad:numel() * 4 + (frozen_w and 0 or w.grad:numel() * 4)
  local extra = peak - base
  print(fmt("%-20s loss %.6f  fwd %5.2f s  bwd %5.2f s  peak above inputs %s%7.1f MB (grads %.1f MB)",
            name, loss:item(), t1 - t0, t2 - t1, peak > peak0 and "" or "<= ", extra / MB, grads / MB))
  return loss:item(), extra, hidden.grad, not frozen_w and w.grad or nil
end

local function fused(wt) return lfl.linear_cross_entropy(hidden, wt, labels, {chunk = chunk}) end
local function unfused(wt) return lfl.cross_entropy(lfl.linear(hidden, wt), labels) end

-- smallest peaks first (the high-water mark only rises): frozen lm_head (LoRA) then trained
local _, mff = run("fused, w frozen", fused, true)
local lf, mf, gh, gw = run("fused", fused)
gh, gw = gh:clone(), gw:clone()
local _, muf = run("unfused, w frozen", unfused, true)
local lu, mu, uh, uw = run("unfused", unfused)
print(fmt("peak extra memory, w trained: fused %.1f MB vs unfused %.1f MB (%.1fx less, %.1f MB saved)",
          mf / MB, mu / MB, mu / mf, (mu - mf) / MB))
print(fmt("peak extra memory, w frozen:  fused %.1f MB vs unfused %.1f MB (%.1fx less, %.1f MB saved)",
          mff / MB, muf / MB, muf / mff, (muf - mff) / MB))
print(fmt("agreement: |loss diff| %.2g, max |dhidden diff| %.2g, max |dw diff| %.2g",
          math.abs(lf - lu), lfl.test.max_abs_diff(gh, uh), lfl.test.max_abs_diff(gw, uw)))
