-- bf16 / f16 weights: the ops that take a 16-bit weight with f32 activations
-- (linear, matmul, embedding, linear_cross_entropy) must equal the f32 op on
-- the weight round-tripped through the 16-bit type (f64 gradchecks cannot use
-- a 16-bit weight, so this is the check), forward and backward, on strided and
-- broadcast shapes and across weight blocks; models loaded with dtype = "bf16"
-- keep 16-bit matrices and match the round-tripped f32 model; LoRA / full /
-- freeze training with bf16 and pure_bf16 lowers the loss with the specified
-- parameter dtypes; merge, PiSSA and export keep a bf16 base in bf16; matmul
-- precision "medium" equals f32 GEMMs of bf16-rounded operands.
local t = lfl.test
local args = require("lfl.train.args")
local trainer = require("lfl.train.trainer")
local peft = require("lfl.train.peft")
local optim = lfl.optim
local fmt = string.format
local home = lfl.home
local tiny = home .. "/tests/golden/models/llama"

-- max |a - b| / max |b|
local function rel(a, b)
  local d = (a:float() - b:float()):abs():max():item()
  local s = b:float():abs():max():item()
  return d / math.max(s, 1e-30)
end

local function close(a, b, tol, what)
  t.assert_eq(a:dtype(), "f32", what .. ": dtype")
  local r = rel(a, b)
  t.assert(r <= (tol or 2e-6), fmt("%s: relative difference %.3g", what, r))
end

-- a leaf copy that requires grad
local function leaf(x) return x:detach():clone():requires_grad() end

-- linear(x, w16, b) against linear(x, w16 -> f32, b): output, dx, dw, db
local function check_linear(x, w16, bias, what)
  local wf = w16:to("f32")
  local x1, x2 = leaf(x), leaf(x)
  local w1, w2 = w16:detach():requires_grad(), leaf(wf)
  local b1, b2 = bias and leaf(bias), bias and leaf(bias)
  local y1, y2 = lfl.linear(x1, w1, b1), lfl.linear(x2, w2, b2)
  close(y1, y2, nil, what .. " forward")
  local g = lfl.randn(y1:size())
  y1:backward(g)
  y2:backward(g)
  close(x1.grad, x2.grad, nil, what .. " dx")
  t.assert_eq(w1.grad:dtype(), "f32", what .. ": the gradient of a 16-bit weight is f32")
  close(w1.grad, w2.grad, nil, what .. " dw")
  if bias then close(b1.grad, b2.grad, nil, what .. " dbias") end
end

t.suite("bf16_ops", {
  linear = function()
    lfl.manual_seed(1)
    for _, dt in ipairs({"bf16", "f16"}) do
      -- K = 4096 makes 64-row weight blocks: 150 rows cross three of them
      check_linear(lfl.randn(3, 4096), lfl.randn(150, 4096):to(dt), nil, dt .. " multi-block")
      -- strided x ([2, 5, 37] transposed view) and a transposed weight view
      local x = lfl.randn(2, 37, 5):transpose(2, 3)
      local w = lfl.randn(37, 70):to(dt):transpose(1, 2)
      t.assert(not w:is_contiguous())
      check_linear(x, w, lfl.randn(70), dt .. " strided")
      -- 4500 output rows: the backward's dx sums over K = 4500 in slices
      check_linear(lfl.randn(6, 40), lfl.randn(4500, 40):to(dt), nil, dt .. " K-sliced dx")
      -- a 4-D input with a bias and a contiguous weight
      check_linear(lfl.randn(2, 3, 4, 33), lfl.randn(17, 33):to(dt), lfl.randn(17), dt .. " 4-D")
    end
  end,

  linear_frozen_weight_gets_no_grad = function()
    local w = lfl.randn(8, 6):to("bf16")
    local x = leaf(lfl.randn(4, 6))
    lfl.linear(x, w):sum():backward()
    t.assert(w.grad == nil)
    t.assert(x.grad ~= nil)
  end,

  matmul = function()
    lfl.manual_seed(2)
    for _, dt in ipairs({"bf16", "f16"}) do
      local a = lfl.randn(2, 1, 5, 37)
      local b16 = lfl.randn(3, 37, 20):to(dt)
      -- 16-bit on the right, batch-broadcast
      local a1, a2 = leaf(a), leaf(a)
      local b1, b2 = b16:detach():requires_grad(), leaf(b16:to("f32"))
      local y1, y2 = lfl.matmul(a1, b1), lfl.matmul(a2, b2)
      close(y1, y2, nil, dt .. " matmul right")
      local g = lfl.randn(y1:size())
      y1:backward(g); y2:backward(g)
      close(a1.grad, a2.grad, nil, dt .. " matmul right da")
      close(b1.grad, b2.grad, nil, dt .. " matmul right db")
      -- 16-bit on the left, as a transposed view, f32 right operand strided
      local l16 = lfl.randn(3, 20, 37):to(dt):transpose(2, 3) -- [3, 37, 20]
      local r = lfl.randn(2, 1, 9, 20):transpose(3, 4)        -- [2, 1, 20, 9]
      local l1, l2 = l16:detach():requires_grad(), leaf(l16:to("f32"))
      local r1, r2 = leaf(r), leaf(r)
      y1, y2 = lfl.matmul(l1, r1), lfl.matmul(l2, r2)
      close(y1, y2, nil, dt .. " matmul left")
      g = lfl.randn(y1:size())
      y1:backward(g); y2:backward(g)
      close(l1.grad, l2.grad, nil, dt .. " matmul left da")
      close(r1.grad, r2.grad, nil, dt .. " matmul left db")
      -- many rows of a 16-bit left operand cross its row blocks
      local big = lfl.randn(300, 2000):to(dt)
      local v = lfl.randn(2000, 3)
      close(lfl.matmul(big, v), lfl.matmul(big:to("f32"), v), nil, dt .. " matmul left blocks")
      -- a long reduction (K = 3000) is summed in slices on either side
      local wide = lfl.randn(50, 3000):to(dt)
      local u = lfl.randn(3000, 4)
      close(lfl.matmul(wide, u), lfl.matmul(wide:to("f32"), u), nil, dt .. " matmul left K slices")
      local q = lfl.randn(7, 3000)
      close(lfl.matmul(q, wide:transpose(1, 2)), lfl.matmul(q, wide:to("f32"):transpose(1, 2)), nil,
        dt .. " matmul right K slices")
    end
  end,

  embedding = function()
    lfl.manual_seed(3)
    for _, dt in ipairs({"bf16", "f16"}) do
      local e16 = lfl.randn(50, 12):to(dt)
      local ids = lfl.tensor({{3, 7, 3}, {49, 0, 12}}, "i64")
      local w1, w2 = e16:detach():requires_grad(), leaf(e16:to("f32"))
      local y1, y2 = lfl.embedding(w1, ids), lfl.embedding(w2, ids)
      t.assert_eq(y1:dtype(), "f32")
      close(y1, y2, 0, dt .. " embedding")
      local g = lfl.randn(y1:size())
      y1:backward(g); y2:backward(g)
      close(w1.grad, w2.grad, 0, dt .. " embedding dw")
    end
  end,

  linear_cross_entropy = function()
    lfl.manual_seed(4)
    local h = lfl.randn(2, 7, 64)
    local w16 = lfl.randn(1000, 64):to("bf16")
    local lab = lfl.tensor({{1, 2, -100, 4, 5, 999, 0}, {9, 8, 7, 6, 5, 4, 3}}, "i64")
    local h1, h2 = leaf(h), leaf(h)
    local w1, w2 = w16:detach():requires_grad(), leaf(w16:to("f32"))
    local l1 = lfl.linear_cross_entropy(h1, w1, lab, {chunk = 96})
    local l2 = lfl.linear_cross_entropy(h2, w2, lab, {chunk = 96})
    t.assert_close(l1:item(), l2:item(), 1e-6)
    l1:backward(); l2:backward()
    close(h1.grad, h2.grad, nil, "lce dhidden")
    close(w1.grad, w2.grad, nil, "lce dw")
  end,

  conversions = function()
    -- the contiguous fast path and the strided path round alike (nearest even)
    local x = lfl.randn(64, 48) * 100
    local fast = x:to("bf16"):to("f32")
    local slow = x:transpose(1, 2):to("bf16"):transpose(1, 2):to("f32")
    t.assert_eq((fast - slow):abs():max():item(), 0)
    local v = lfl.tensor({1 + 2 ^ -8, 1 + 3 * 2 ^ -8, -(1 + 2 ^ -8), 65504, 1 / 0, -1 / 0})
    local r = v:to("bf16"):to("f32")
    t.assert_eq(r:_at(1), 1.0, "a tie rounds to even")
    t.assert_eq(r:_at(2), 1 + 2 ^ -6, "a tie rounds to even (up)")
    t.assert_eq(r:_at(3), -1.0)
    t.assert_eq(r:_at(4), 65536)
    t.assert_eq(r:_at(5), 1 / 0)
    t.assert_eq(r:_at(6), -1 / 0)
    local n = lfl.tensor({0 / 0}):to("bf16"):to("f32"):_at(1)
    t.assert(n ~= n, "NaN stays NaN")
    local h = lfl.tensor({0.1, 1000.5, -3.25}):to("f16"):to("f32")
    t.assert_close(h:_at(1), 0.0999755859375, 1e-12)
    t.assert_eq(h:_at(2), 1000.5)
  end,

  weight_row_norm_blocks = function()
    lfl.manual_seed(5)
    local w = lfl.randn(700, 1000):to("bf16") -- 262 rows per block: three blocks
    local B, A = lfl.randn(700, 4), lfl.randn(4, 1000)
    local ref = peft.row_norm(w:to("f32") + lfl.matmul(B, A) * 0.5)
    close(peft.weight_row_norm(w, B, A, 0.5), ref, 1e-6, "blocked DoRA norm")
    close(peft.weight_row_norm(w), peft.row_norm(w:to("f32")), 1e-6, "blocked row norm")
  end,

  errors = function()
    local w = lfl.randn(4, 3):to("bf16")
    t.assert_error(function() lfl.linear(lfl.randn(2, 3):double(), w) end, "linear: a bf16 weight takes f32 input")
    t.assert_error(function() lfl.matmul(w, w:transpose(1, 2)) end, "matmul: a bf16 operand needs an f32 partner")
    t.assert_error(function() lfl.linear(lfl.randn(2, 3), w, lfl.randn(4):to("bf16")) end, "linear: bias [4] should be [4] of f32")
    t.assert_error(function() lfl.linear_cross_entropy(lfl.randn(2, 3):double(), w, lfl.tensor({1, 2}, "i64")) end,
      "a bf16 w takes f32 hidden")
    t.assert_error(function() lfl.model.load(tiny, {dtype = "q8"}) end, "dtype 'q8' is not supported")
  end,
})

-- ---------------------------------------------------------------- models

local ids = lfl.tensor({{1, 5, 9, 33, 2, 7, 11, 60}, {3, 4, 5, 6, 7, 8, 9, 10}}, "i64")

-- the f32 model whose matrices went through bf16 and back
local function roundtripped(dir)
  local m = lfl.model.load(dir)
  local p = {}
  for _, n in ipairs(m.names) do
    local w = m.params[n]
    p[n] = w:dim() >= 2 and w:to("bf16"):to("f32") or w
  end
  return lfl.model.from_params(m.config, p)
end

local function check_dtypes(m, what)
  for _, n in ipairs(m.names) do
    local p = m.params[n]
    local want = p:dim() >= 2 and "bf16" or "f32"
    t.assert_eq(p:dtype(), want, what .. ": " .. n)
  end
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p '" .. d .. "'")
  return d
end

t.suite("bf16_models", {
  logits_match_roundtripped = function()
    for _, name in ipairs({"llama", "qwen2", "gemma", "llama_tied_llama3rope", "cohere_qknorm", "mixtral"}) do
      local dir = home .. "/tests/golden/models/" .. name
      local m16 = lfl.model.load(dir, {dtype = "bf16"})
      check_dtypes(m16, name)
      t.assert_eq(m16.dtype, "bf16")
      local l16 = m16:forward(ids)
      local lrt = roundtripped(dir):forward(ids)
      t.assert_tensor_close(l16, lrt, 1e-5, 1e-5, name .. " logits vs round-tripped f32")
      -- and the loss through the fused linear + cross-entropy
      t.assert_close(m16:loss(ids, ids):item(), roundtripped(dir):loss(ids, ids):item(), 1e-5, name .. " loss")
      -- against the plain f32 model only bf16 rounding of the weights separates them
      local l32 = lfl.model.load(dir):forward(ids)
      t.assert(rel(l16, l32) < 0.05, name .. ": bf16 logits far from f32")
    end
  end,

  default_stays_f32 = function()
    local m = lfl.model.load(tiny)
    for _, n in ipairs(m.names) do t.assert_eq(m.params[n]:dtype(), "f32", n) end
  end,

  bf16_folder_is_zero_copy = function()
    -- a bf16 checkpoint saved and loaded back as bf16 maps its matrices: the
    -- tensor heap grows only by the f32 norm vectors, not the weights
    local d = tmpdir()
    local m = lfl.model.load(tiny, {dtype = "bf16"})
    m:save(d)
    for k, v in pairs(lfl.safetensors.load(d .. "/model.safetensors")) do
      t.assert_eq(v:dtype(), k:find("norm") and "f32" or "bf16", "saved " .. k)
    end
    m = nil
    collectgarbage(); collectgarbage()
    local before = lfl.memory()
    local m2 = lfl.model.load(d, {dtype = "bf16"})
    local grown = lfl.memory() - before
    local matrices = 0
    for _, n in ipairs(m2.names) do if m2.params[n]:dim() >= 2 then matrices = matrices + 2 * m2.params[n]:numel() end end
    t.assert(grown < matrices / 4, fmt("heap grew by %d bytes for %d bytes of bf16 matrices", grown, matrices))
    check_dtypes(m2, "reloaded")
    t.assert_tensor_close(m2:forward(ids), roundtripped(tiny):forward(ids), 1e-5, 1e-5, "reloaded logits")
    os.execute("rm -rf '" .. d .. "'")
  end,

  generate_with_cache = function()
    -- the KV-cache decode path on bf16 weights equals the full forward
    local m = lfl.model.load(tiny, {dtype = "bf16"})
    local full = m:forward(ids:narrow(1, 1, 1))
    local cache = require("lfl.model.decoder").new_cache()
    local a = m:forward(ids:narrow(1, 1, 1):narrow(2, 1, 7), {cache = cache})
    local b = m:forward(ids:narrow(1, 1, 1):narrow(2, 8, 1), {cache = cache})
    t.assert_tensor_close(b:narrow(2, 1, 1), full:narrow(2, 8, 1), 1e-4, 1e-4, "cached step")
    t.assert_tensor_close(a, full:narrow(2, 1, 7), 1e-5, 1e-5, "prefill")
  end,
})

-- ---------------------------------------------------------------- training

local function batch()
  math.randomseed(11)
  local rows = {}
  for b = 1, 4 do rows[b] = {}; for i = 1, 16 do rows[b][i] = math.random(3, 63) end end
  local x = lfl.tensor(rows, "i64")
  return x, x
end

-- `steps` optimizer steps on a fixed batch with the model loaded as the
-- trainer loads it for these args; returns first and last loss
local function train(recipe, steps)
  recipe.model_name_or_path, recipe.do_train = tiny, false
  recipe.learning_rate = recipe.learning_rate or 1e-2
  local a = args.resolve(recipe)
  lfl.manual_seed(0)
  local model = lfl.model.load(tiny, {dtype = (a.bf16 or a.pure_bf16) and "bf16" or nil})
  local names, params, groups = trainer.setup_method(model, a)
  local opt = trainer.make_optimizer(groups, a, model)
  local x, labels = batch()
  local first, last
  for _ = 1, steps or 20 do
    local loss = model:loss(x, labels)
    first = first or loss:item()
    last = loss:item()
    loss:backward()
    optim.clip_grad_norm(params, 1.0)
    opt:step()
    opt:zero_grad()
  end
  return first, last, model, names, params, opt
end

local function falls(first, last, factor, what)
  t.assert(last < first * factor, fmt("%s: loss %.4f -> %.4f", what, first, last))
  if os.getenv("LFL_VERBOSE") then print(fmt("%s: loss %.4f -> %.4f", what, first, last)) end
end

-- matmul precision "medium": large GEMMs multiply bf16-rounded operands
-- (sums in f32), 16-bit weights and f32 weights alike; "highest" is f32
t.suite("matmul_precision", {
  linear_medium = function()
    local prec, has = lfl.sys.matmul_precision()
    t.assert_eq(prec, "highest", "the default precision")
    if not has then
      print("SKIP  matmul_precision.linear_medium: this CPU has no AVX512_BF16, \"medium\" keeps f32 GEMMs")
      return
    end
    lfl.manual_seed(3)
    local x = lfl.randn(64, 256)
    local xr = x:to("bf16"):to("f32")
    for _, wdt in ipairs({"bf16", "f32"}) do
      local w = lfl.randn(300, 256):to(wdt)
      local wr = w:to("bf16"):to("f32")
      local g = lfl.randn(64, 300)
      local gr = g:to("bf16"):to("f32")
      lfl.sys.matmul_precision("medium")
      local x1 = leaf(x)
      local y1 = lfl.linear(x1, w)
      y1:backward(g)
      lfl.sys.matmul_precision("highest")
      local want_y = lfl.linear(xr, wr)
      local want_dx = lfl.matmul(gr, wr)
      close(y1, want_y, 1e-6, wdt .. " weight: forward = f32 GEMM of bf16-rounded operands")
      close(x1.grad, want_dx, 1e-6, wdt .. " weight: dx = f32 GEMM of bf16-rounded operands")
      t.assert(rel(y1, lfl.linear(x, w:to("f32"))) > 1e-5, wdt .. ": medium must differ from highest")
    end
  end,

  errors = function()
    t.assert_error(function() lfl.sys.matmul_precision("low") end, "'low' is not a precision (want \"highest\" or \"medium\")")
    t.assert_eq(lfl.sys.matmul_precision(), "highest")
  end,
})

t.suite("bf16_train", {
  lora_bf16 = function()
    local first, last, model, _, params = train({finetuning_type = "lora", lora_rank = 4, bf16 = true})
    falls(first, last, 0.92, "lora bf16")
    check_dtypes(model, "lora bf16 base")
    for _, p in ipairs(params) do t.assert_eq(p:dtype(), "f32", "LoRA factors are f32") end
    for _, n in ipairs(model.names) do t.assert(model.params[n].grad == nil, "frozen base got a gradient: " .. n) end
  end,

  dora_bf16 = function()
    local first, last, model = train({finetuning_type = "lora", lora_rank = 4, use_dora = true, bf16 = true})
    falls(first, last, 0.95, "dora bf16")
    check_dtypes(model, "dora bf16 base")
  end,

  freeze_bf16_masters = function()
    local first, last, model, names = train({finetuning_type = "freeze", freeze_trainable_layers = 1, bf16 = true})
    falls(first, last, 0.9, "freeze bf16")
    local trained = {}
    for _, n in ipairs(names) do
      trained[n] = true
      t.assert_eq(model.params[n]:dtype(), "f32", "trainable " .. n .. " has an f32 master")
    end
    for _, n in ipairs(model.names) do
      if not trained[n] then
        t.assert_eq(model.params[n]:dtype(), model.params[n]:dim() >= 2 and "bf16" or "f32", "frozen " .. n)
      end
    end
  end,

  pure_bf16_full = function()
    local first, last, model, names, params, opt = train({finetuning_type = "full", pure_bf16 = true}, 8)
    falls(first, last, 0.9, "pure_bf16 full")
    check_dtypes(model, "pure_bf16")
    t.assert_eq(#names, #model.names)
    for p, st in pairs(opt.state) do t.assert_eq(st.m:dtype(), "f32", "optimizer state is f32") end
  end,

  pure_bf16_lora = function()
    local first, last, model, _, params = train({finetuning_type = "lora", lora_rank = 4, pure_bf16 = true,
      learning_rate = 2e-2})
    falls(first, last, 0.95, "pure_bf16 lora")
    for _, p in ipairs(params) do t.assert_eq(p:dtype(), "bf16", "pure_bf16 LoRA factors are bf16") end
  end,

  bf16_update_writes_back = function()
    -- an AdamW step on a bf16 parameter equals the f32 step rounded to bf16
    local p16 = lfl.randn(300):to("bf16"):requires_grad()
    local p32 = p16:to("f32"):detach():clone():requires_grad()
    local g = lfl.randn(300)
    p16.grad, p32.grad = g:clone(), g:clone()
    optim.AdamW({{params = {p16}}}, {lr = 0.1}):step()
    optim.AdamW({{params = {p32}}}, {lr = 0.1}):step()
    t.assert_eq(p16:dtype(), "bf16")
    t.assert_eq((p16:to("f32") - p32:to("bf16"):to("f32")):abs():max():item(), 0)
  end,
})

t.suite("bf16_peft", {
  merge_and_export_keep_bf16 = function()
    lfl.manual_seed(6)
    local m = lfl.model.load(tiny, {dtype = "bf16"})
    peft.add_lora(m, {rank = 4})
    for _, e in pairs(m.adapters) do e.B:normal_(0, 0.1) end
    local before = lfl.no_grad(function() return m:forward(ids) end)
    local d = tmpdir()
    peft.save_adapter(m, d .. "/adapter")
    for k, v in pairs(lfl.safetensors.load(d .. "/adapter/adapter_model.safetensors")) do
      t.assert_eq(v:dtype(), "f32", "adapter " .. k)
    end
    peft.merge(m)
    check_dtypes(m, "merged")
    local after = m:forward(ids)
    t.assert(rel(after, before) < 0.02, fmt("merged bf16 model drifts: %.3g", rel(after, before)))
    -- the export command merges into a bf16 base when infer_dtype asks for it
    local export = require("lfl.cmd.export")
    local a = args.resolve({model_name_or_path = tiny, adapter_name_or_path = d .. "/adapter",
      export_dir = d .. "/out", infer_dtype = "bfloat16", do_train = false}, nil, "export")
    export.export(a)
    for k, v in pairs(lfl.safetensors.load(d .. "/out/model.safetensors")) do
      t.assert_eq(v:dtype(), k:find("norm") and "f32" or "bf16", "exported " .. k)
    end
    local e = lfl.model.load(d .. "/out", {dtype = "bf16"})
    t.assert_tensor_close(e:forward(ids), after, 1e-5, 1e-5, "exported logits")
    os.execute("rm -rf '" .. d .. "'")
  end,

  pissa_bf16_base = function()
    lfl.manual_seed(7)
    local m = lfl.model.load(tiny, {dtype = "bf16"})
    local before = m:forward(ids)
    peft.add_lora(m, {rank = 4, init = "pissa", pissa_iter = -1})
    check_dtypes(m, "pissa residual")
    local after = m:forward(ids)
    t.assert(rel(after, before) < 0.02, fmt("PiSSA on a bf16 base changes the output: %.3g", rel(after, before)))
  end,
})

t.run()
