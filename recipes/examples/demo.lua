-- The main job, until the LoRA SFT demo on SmolLM2 lands: fits a tiny
-- two-layer network built from core ops, with plain SGD, and prints the loss.
local steps = tonumber(arg and arg[1]) or 200
lfl.manual_seed(0)

-- data: y = x @ w_true + noise
local n, d_in, d_h = 256, 8, 16
local x = lfl.randn(n, d_in)
local w_true = lfl.randn(1, d_in)
local y = lfl.linear(x, w_true) + lfl.randn(n, 1) * 0.01

local w1 = (lfl.randn(d_h, d_in) * (1 / math.sqrt(d_in))):requires_grad()
local b1 = lfl.zeros(d_h):requires_grad()
local w2 = (lfl.randn(1, d_h) * (1 / math.sqrt(d_h))):requires_grad()
local params = {w1, b1, w2}

local function forward(inp)
  local h = lfl.linear(inp, w1, b1)
  return lfl.linear(h, w2)
end

local lr, first, last = 0.05, nil, nil
local t0 = lfl.sys.clock()
for step = 1, steps do
  local err = forward(x) - y
  local loss = (err * err):mean()
  loss:backward()
  lfl.no_grad(function()
    for _, p in ipairs(params) do
      p:copy_(p - p.grad * lr)
      p.grad = nil
    end
  end)
  last = loss:item()
  first = first or last
  if step % 50 == 0 or step == 1 then print(string.format("step %4d  loss %.6f", step, last)) end
end
print(string.format("loss %.6f -> %.6f in %d steps (%.2fs)", first, last, steps, lfl.sys.clock() - t0))
assert(last < first * 0.05, "the loss did not fall")
