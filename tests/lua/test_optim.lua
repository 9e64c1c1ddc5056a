-- Optimizers and schedules against torch.optim and transformers.get_scheduler.
local t = lfl.test
local gdir = lfl.home .. "/tests/golden/optim/"
local optim = lfl.optim

t.suite("optim", {
  adamw_matches_torch = function()
    local g = lfl.safetensors.load(gdir .. "optim.safetensors")
    local p = g.p0:clone()
    local opt = optim.AdamW({{params = {p}}}, {lr = 1e-2, beta1 = 0.9, beta2 = 0.95, eps = 1e-6, weight_decay = 0.1})
    for i = 1, 5 do
      p.grad = g["grad" .. i]
      opt:step()
      t.assert_tensor_close(p, g["adamw.p" .. i], 1e-6, 1e-5, "adamw step " .. i)
    end
  end,

  sgd_matches_torch = function()
    local g = lfl.safetensors.load(gdir .. "optim.safetensors")
    local p = g.p0:clone()
    local opt = optim.SGD({{params = {p}}}, {lr = 1e-1, momentum = 0.9, weight_decay = 0.01})
    for i = 1, 5 do
      p.grad = g["grad" .. i]
      opt:step()
      t.assert_tensor_close(p, g["sgd.p" .. i], 1e-6, 1e-5, "sgd step " .. i)
    end
  end,

  schedules_match_transformers = function()
    local f = assert(io.open(gdir .. "schedules.json")); local gold = lfl.json.decode(f:read("*a")); f:close()
    for name, case in pairs(gold) do
      local kw = {}
      for k, v in pairs(case.kwargs) do kw[k] = v end
      local fn = optim.schedule(name, 5, 40, kw)
      for s, want in ipairs(case.lrs) do
        t.assert_close(fn(s - 1), want, 1e-9, name .. " step " .. (s - 1))
      end
    end
    t.assert_error(function() optim.schedule("exotic", 1, 10) end, "not supported")
  end,

  clip_grad_norm = function()
    local a, b = lfl.tensor({3, 0}), lfl.tensor({0, 4})
    a.grad, b.grad = lfl.tensor({3, 0}), lfl.tensor({0, 4})
    local n = optim.clip_grad_norm({a, b}, 1.0)
    t.assert_close(n, 5)
    t.assert_tensor_close(a.grad, {0.6, 0}, 1e-6); t.assert_tensor_close(b.grad, {0, 0.8}, 1e-6)
  end,
})

t.run()
