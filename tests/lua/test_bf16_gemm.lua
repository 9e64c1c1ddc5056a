-- The bf16 GEMM kernels (core/gemm_path.c: "onednn", "own", "f32") end to
-- end: a short LoRA training of the tiny llama with a bf16 base under matmul
-- precision "medium" (what `bf16: true` runs) gives the same losses and
-- adapter weights on every kernel this build and CPU have, and differs from
-- the f32 ("highest") run, so the bf16 GEMMs really ran; sys.bf16_gemm names,
-- switches and refuses kernels; attention's tile products agree across kernels. The tiny model's GEMMs reach the bf16 path
-- (>= 4e6 multiply-adds) through the rows: a [64, 64] batch is 4096 tokens.
local t = lfl.test
local args = require("lfl.train.args")
local trainer = require("lfl.train.trainer")
local optim = lfl.optim
local fmt = string.format
local tiny = lfl.home .. "/tests/golden/models/llama"
-- the kernel chosen on first use (LFL_GEMM or auto), before any test switches it
local first_desc, first_name = lfl.sys.bf16_gemm()

local function batch()
  lfl.manual_seed(11)
  local x = (lfl.rand(64, 64) * 62):to("i64") + 1
  return x, x
end

-- losses of `steps` LoRA steps, the adapters' final weights and their first gradients
local function train(precision, steps)
  local a = args.resolve({model_name_or_path = tiny, do_train = false, finetuning_type = "lora", lora_rank = 4,
    lora_target = "all", bf16 = true, learning_rate = 1e-2})
  lfl.manual_seed(0)
  local model = lfl.model.load(tiny, {dtype = "bf16"})
  local _, params, groups = trainer.setup_method(model, a)
  local opt = trainer.make_optimizer(groups, a, model)
  local x, labels = batch()
  local losses, g = {}, {}
  lfl.sys.matmul_precision(precision)
  local ok, err = pcall(function()
    for i = 1, steps do
      local loss = model:loss(x, labels)
      losses[i] = loss:item()
      loss:backward()
      if i == 1 then for j, p in ipairs(params) do g[j] = p.grad:clone() end end
      optim.clip_grad_norm(params, 1.0)
      opt:step()
      opt:zero_grad()
    end
  end)
  lfl.sys.matmul_precision("highest")
  if not ok then error(err, 0) end
  local w = {}
  for i, p in ipairs(params) do w[i] = p:detach():clone() end
  return losses, w, g
end

local function max_rel(a, b)
  local d = 0
  for i = 1, #a do d = math.max(d, math.abs(a[i] - b[i]) / math.abs(b[i])) end
  return d
end

local function max_w(a, b)
  local d = 0
  for i = 1, #a do d = math.max(d, ((a[i] - b[i]):abs():max() / (b[i]:abs():max() + 1e-30)):item()) end
  return d
end

local function available()
  local out = {}
  for _, k in ipairs({"own", "onednn", "f32"}) do
    if pcall(lfl.sys.bf16_gemm, k) then out[#out + 1] = k end
  end
  return out
end

t.suite("bf16_gemm", {
  describe_and_switch = function()
    local desc, name = first_desc, first_name
    t.assert(desc:find("^" .. name .. ": "), "the description starts with the kernel: " .. desc)
    t.assert(desc:find("CPU: "), "the description names the ISA: " .. desc)
    local env = os.getenv("LFL_GEMM")
    if env == "own" or env == "onednn" or env == "f32" then
      t.assert(name == env or desc:find("unavailable"), fmt("LFL_GEMM=%s chose %s: %s", env, name, desc))
    end
    t.assert(lfl.sys.bf16_gemm("f32") and select(2, lfl.sys.bf16_gemm()) == "f32", "f32 runs on every CPU")
    t.assert_error(function() lfl.sys.bf16_gemm("amx") end, "'amx' is not a kernel")
    local _, now = lfl.sys.bf16_gemm()
    t.assert_eq(now, "f32", "a refused name leaves the kernel")
    lfl.sys.bf16_gemm(name)
  end,

  lora_losses_equal_across_kernels = function()
    local _, start = lfl.sys.bf16_gemm()
    local kernels = available()
    local steps = 4
    local f32_losses, f32_w, f32_g = train("highest", steps)
    local ref, ref_w, ref_g, ref_name
    for _, k in ipairs(kernels) do
      lfl.sys.bf16_gemm(k)
      local losses, w, g = train("medium", steps)
      if os.getenv("LFL_VERBOSE") then
        print(fmt("%s: losses %s; vs highest: losses %.3g, weights %.3g, gradients %.3g%s", k,
          table.concat(losses, " "), max_rel(losses, f32_losses), max_w(w, f32_w), max_w(g, f32_g),
          ref and fmt("; vs %s: losses %.3g, weights %.3g, gradients %.3g", ref_name, max_rel(losses, ref),
          max_w(w, ref_w), max_w(g, ref_g)) or ""))
      end
      -- bf16-rounded operands move the gradients well past the kernels'
      -- differences. Measured on Zen 4 (own, onednn, f32), relative to the
      -- largest value: against highest, gradients 5.1e-3, losses 3-4.3e-6,
      -- weights 0.44 (AdamW's first steps amplify the sign of tiny
      -- gradients); between kernels, gradients 0-3e-4, losses 2.3e-7-1.8e-6,
      -- weights 5e-3-2.3e-2 (the tiny model's k = 32 sums of exact bf16
      -- products are often exact in any order; sgemm's are not)
      t.assert(max_w(g, f32_g) > 2e-3, k .. ": medium's gradients must differ from highest's")
      t.assert(max_rel(losses, f32_losses) > 1e-6, k .. ": medium's losses must differ from highest's")
      if ref then
        t.assert(max_w(g, ref_g) < 1e-3, fmt("%s vs %s: gradients differ by %.3g", k, ref_name, max_w(g, ref_g)))
        t.assert(max_rel(losses, ref) < 1e-5, fmt("%s vs %s: losses differ by %.3g", k, ref_name, max_rel(losses, ref)))
        t.assert(max_w(w, ref_w) < 0.05, fmt("%s vs %s: adapters differ by %.3g", k, ref_name, max_w(w, ref_w)))
      else
        ref, ref_w, ref_g, ref_name = losses, w, g, k
      end
    end
    lfl.sys.bf16_gemm(start)
    if #kernels < 2 then print("SKIP  only the " .. kernels[1] .. " kernel here: nothing to compare it with") end
  end,

  -- the attention's tile products under "medium": the same bf16-rounded
  -- operands on every kernel (vdpbf16ps tiles for own / onednn, sgemm on
  -- rounded copies for f32), so outputs and gradients agree to f32 sums, far
  -- closer than to "highest"
  attention_tiles_equal_across_kernels = function()
    local _, start = lfl.sys.bf16_gemm()
    lfl.manual_seed(5)
    local q, k, v, go = lfl.randn(1, 4, 130, 64), lfl.randn(1, 2, 130, 64), lfl.randn(1, 2, 130, 64), lfl.randn(1, 4, 130, 64)
    local function run(prec)
      lfl.sys.matmul_precision(prec)
      local ok, res = pcall(function()
        local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
        local out = lfl.attention(a, b, c, {causal = true})
        out:backward(go)
        return {out, a.grad, b.grad, c.grad}
      end)
      lfl.sys.matmul_precision("highest")
      if not ok then error(res, 0) end
      return res
    end
    local hi, ref, ref_name = run("highest"), nil, nil
    for _, kname in ipairs(available()) do
      lfl.sys.bf16_gemm(kname)
      local got = run("medium")
      for i, what in ipairs({"out", "dq", "dk", "dv"}) do
        local scale = hi[i]:abs():max():item()
        local d_hi = (got[i] - hi[i]):abs():max():item() / scale
        t.assert(d_hi > 1e-4, fmt("%s %s: medium equals highest (%.3g)", kname, what, d_hi))
        if ref then
          local d = (got[i] - ref[i]):abs():max():item() / scale
          -- measured on Zen 5: 0 (onednn: the same tiles) and <= 1.7e-7 (f32)
          -- between kernels, 3e-3 to 7e-3 against highest
          t.assert(d < 1e-5, fmt("%s vs %s %s: %.3g apart (%.3g from highest)", kname, ref_name, what, d, d_hi))
        end
      end
      if not ref then ref, ref_name = got, kname end
    end
    lfl.sys.bf16_gemm(start)
  end,
})

t.run()
