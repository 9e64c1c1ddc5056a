-- bench_bf16: lfl.linear with an f32 weight against the same weight stored in
-- bf16 (widened block by block inside the op), at the SmolLM2 shapes: training
-- rows (M = 512, forward and forward + dx backward, the frozen-base LoRA case)
-- and one decoding row (M = 1), where the 16-bit weight halves the bytes read.
-- Also the logits of SmolLM2 loaded as bf16 against f32 on one prompt, when the
-- GGUF file is in the cache. Figures only.
--
--   ./build/lfl tests/bench/bench_bf16.lua [threads]
local fmt, clock = string.format, lfl.sys.clock
local threads = tonumber(arg and arg[1])
if threads then lfl.sys.threads(threads) end
print((lfl.sys.blas()))

-- median ms over 5 batches, each repeated until it lasts >= 0.1 s
local function ms(fn)
  fn()
  local t = {}
  for i = 1, 5 do
    local reps, t0 = 0, clock()
    repeat fn(); reps = reps + 1 until clock() - t0 >= 0.1
    t[i] = (clock() - t0) / reps * 1000
  end
  table.sort(t)
  return t[3]
end

local shapes = {{"q / o proj", 576, 576}, {"k / v proj", 576, 192}, {"gate / up", 576, 1536}, {"down", 1536, 576},
                {"lm_head", 576, 49152}}
print(fmt("%-11s %-16s %9s %9s %11s %11s", "shape", "M x K x N", "f32 ms", "bf16 ms", "f32 f+dx", "bf16 f+dx"))
for _, m in ipairs({512, 1}) do
  for _, s in ipairs(shapes) do
    local name, k, n = s[1], s[2], s[3]
    local x, w = lfl.randn(m, k), lfl.randn(n, k)
    local wb = w:to("bf16")
    local xg = x:clone():requires_grad()
    local g = lfl.randn(m, n)
    local f32 = ms(function() return lfl.linear(x, w) end)
    local b16 = ms(function() return lfl.linear(x, wb) end)
    local f32b = ms(function() lfl.linear(xg, w):backward(g); xg.grad = nil end)
    local b16b = ms(function() lfl.linear(xg, wb):backward(g); xg.grad = nil end)
    print(fmt("%-11s %-16s %9.2f %9.2f %11.2f %11.2f", name, fmt("%dx%dx%d", m, k, n), f32, b16, f32b, b16b))
    collectgarbage()
  end
end

local path = (os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")) .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if io.open(path, "rb") then
  local ids = lfl.tensor({{1, 504, 3458, 314, 253, 1345, 28, 9878, 30, 1117, 3060, 281, 260, 1789, 3470, 30}}, "i64")
  local l32 = lfl.model.load(path):forward(ids)
  collectgarbage()
  local l16 = lfl.model.load(path, {dtype = "bf16"}):forward(ids)
  local d = (l32 - l16):abs():max():item()
  print(fmt("SmolLM2 Q4_1 -> f32 vs -> bf16, 16-token prompt: logits max |diff| %.4g (max |logit| %.2f), "
    .. "same argmax at %d of 16 positions", d, l32:abs():max():item(),
    (l32:argmax(3):eq(l16:argmax(3))):float():sum():item()))
end
