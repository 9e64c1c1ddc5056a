-- GPTQ / AWQ 4-bit weights kept quantized (gptq4: core/quant/gptq_kept.c,
-- core/ops/gptq_gemm.c). Every layout (GPTQ v1 sym and asym, act-order g_idx,
-- GPTQ v2 zeros, AutoAWQ's interleaved GEMM words; f16, bf16 and f32 scales)
-- dequantizes bit for bit as lfl.gptq_dequantize / lfl.awq_dequantize (which
-- test_ptq checks against GPTQModel's and AutoAWQ's code) with both the
-- AVX-512 and the portable tile kernel; linear and lora_linear on the kept
-- weight, forward and input gradient, equal the same ops on that dequantized
-- weight within 1e-5 (f32 GEMMs summing in another order); the golden
-- checkpoints load kept at about half a byte per weight, give the
-- dequantize-at-load logits and transformers', and LoRA's gradients on them
-- equal those on the dequantized model.
local t = lfl.test
local fmt = string.format

math.randomseed(7)
local function words(n)
  local v = {}
  for i = 1, n do v[i] = math.random(-2147483648, 2147483647) end
  return v
end

-- a linear [out, in] in one layout: its checkpoint tensors, the kept weight,
-- the reference dequantization
local function layer(kind, out, fin, gs, sdt, opts)
  opts = opts or {}
  local groups = math.floor((fin + gs - 1) / gs)
  local sc = (lfl.rand(groups, out) * 0.02 + 0.001):to(sdt)
  if kind == "awq" then
    local qw = lfl.tensor(words(fin * out / 8), "i32"):view(fin, out / 8)
    local qz = lfl.tensor(words(groups * out / 8), "i32"):view(groups, out / 8)
    return lfl.awq_pack(qw, qz, sc, gs), lfl.awq_dequantize(qw, qz, sc, gs)
  end
  local qw = lfl.tensor(words(fin / 8 * out), "i32"):view(fin / 8, out)
  local qz
  if opts.sym then -- symmetric: every zero 8, stored 7 in v1 (0x77777777 a word)
    local v = {}
    for i = 1, groups * out / 8 do v[i] = opts.v1 and 0x77777777 or -2004318072 end -- 0x88888888
    qz = lfl.tensor(v, "i32"):view(groups, out / 8)
  else
    qz = lfl.tensor(words(groups * out / 8), "i32"):view(groups, out / 8)
  end
  local gi
  if opts.act_order then -- desc_act: the groups follow a permutation of the inputs
    local perm = {}
    for i = 1, fin do perm[i] = i - 1 end
    for i = fin, 2, -1 do
      local j = math.random(1, i)
      perm[i], perm[j] = perm[j], perm[i]
    end
    local g = {}
    for i = 1, fin do g[i] = math.floor(perm[i] / gs) end
    gi = lfl.tensor(g, "i32")
  elseif opts.g_idx then -- the plain g_idx (i / group_size) a checkpoint may carry
    local g = {}
    for i = 1, fin do g[i] = math.floor((i - 1) / gs) end
    gi = lfl.tensor(g, "i32")
  end
  return lfl.gptq_pack(qw, qz, sc, gi, gs, opts.v1), lfl.gptq_dequantize(qw, qz, sc, gi, gs, opts.v1)
end

local LAYOUTS = {
  {"gptq v1 sym", "gptq", {v1 = true, sym = true}},
  {"gptq v1 asym", "gptq", {v1 = true}},
  {"gptq v1 asym plain g_idx", "gptq", {v1 = true, g_idx = true}},
  {"gptq v1 act-order", "gptq", {v1 = true, act_order = true}},
  {"gptq v2 sym", "gptq", {sym = true}},
  {"gptq v2 act-order", "gptq", {act_order = true}},
  {"awq gemm", "awq", {}},
}

-- y = x W^T + b and dx through the kept weight against the dequantized one
local function check_linear(q, Wd, rows, what)
  local fout, fin = Wd:size(1), Wd:size(2)
  local x, b, g = lfl.randn(rows, fin):requires_grad(), lfl.randn(fout), lfl.randn(rows, fout)
  local y1 = lfl.linear(x, q, b)
  y1:backward(g)
  local gx = x.grad
  x.grad = nil
  local y2 = lfl.linear(x, Wd, b)
  y2:backward(g)
  t.assert_tensor_close(y1, y2, 1e-5, 1e-5, what .. " forward")
  t.assert_tensor_close(gx, x.grad, 1e-5, 1e-5, what .. " dx")
end

local function with_kernels(fn)
  local prev = lfl.gptq_portable()
  for _, portable in ipairs({false, true}) do
    lfl.gptq_portable(portable)
    local ok, err = pcall(fn, portable and "portable" or "native")
    if not ok then lfl.gptq_portable(prev); error(err, 0) end
  end
  lfl.gptq_portable(prev)
end

t.suite("gptq4 weight", {
  dequantizes_as_the_reference = function()
    with_kernels(function(k)
      for _, L in ipairs(LAYOUTS) do
        for _, sdt in ipairs({"f16", "bf16", "f32"}) do
          -- 72 outputs: four full 16-lane steps and a masked tail of 8
          local q, Wd = layer(L[2], 72, 256, 128, sdt, L[3])
          t.assert_eq(q:dtype(), "gptq4")
          t.assert_eq(lfl.gptq_state(q).act_order, L[3].act_order == true, L[1] .. ": act_order kept only when needed")
          t.assert_tensor_close(q:to("f32"), Wd, 0, 0, fmt("%s %s scales (%s)", L[1], sdt, k))
          t.assert_tensor_close(lfl.q4_rows(q, 9, 5), Wd:narrow(1, 9, 5), 0, 0, L[1] .. " q4_rows")
        end
      end
    end)
  end,

  linear_matches_dequantized = function()
    with_kernels(function(k)
      for _, L in ipairs(LAYOUTS) do
        local q, Wd = layer(L[2], 72, 256, 128, "f16", L[3])
        check_linear(q, Wd, 5, fmt("%s (%s)", L[1], k))
      end
    end)
    local q, Wd = layer("gptq", 384, 576, 64, "f16", {v1 = true, act_order = true})
    check_linear(q, Wd, 64, "threaded")                      -- past the threading threshold
    q, Wd = layer("awq", 96, 2304, 128, "f16")
    check_linear(q, Wd, 16, "k in slices (forward)")         -- 2304 inputs * 128 > the 1 MB scratch
    q, Wd = layer("gptq", 2304, 64, 32, "bf16", {act_order = true})
    check_linear(q, Wd, 16, "k in slices (input gradient)") -- 2304 outputs: the backward's k
    q, Wd = layer("gptq", 8, 24, 128, "f16", {v1 = true})
    check_linear(q, Wd, 3, "one partial group, 8 outputs")
  end,

  medium_precision = function()
    -- bf16: true (matmul precision "medium"): the tiles go to the bf16 GEMM as a
    -- float weight's operands do, so the kept weight still equals the dequantized one
    local q, Wd = layer("gptq", 384, 576, 128, "f16", {v1 = true, act_order = true})
    local x = lfl.randn(64, 576)
    local hi = lfl.linear(x, q)
    local prev = lfl.sys.matmul_precision()
    lfl.sys.matmul_precision("medium")
    local ok, err = pcall(function()
      check_linear(q, Wd, 64, "medium precision")
      local d = (lfl.linear(x, q) - hi):abs():max():item()
      t.assert(d > 1e-4, fmt("the bf16 GEMM rounds the operands (%.3g from highest precision)", d))
    end)
    lfl.sys.matmul_precision(prev)
    if not ok then error(err, 0) end
  end,

  lora_linear = function()
    for _, L in ipairs({LAYOUTS[4], LAYOUTS[7]}) do
      local q, Wd = layer(L[2], 64, 128, 32, "f16", L[3])
      local x, b = lfl.randn(2, 9, 128):requires_grad(), lfl.randn(64)
      local A, B = (lfl.randn(8, 128) * 0.1):requires_grad(), (lfl.randn(64, 8) * 0.1):requires_grad()
      local g = lfl.randn(2, 9, 64)
      local y1 = lfl.lora_linear(x, q, b, A, B, 0.5)
      y1:backward(g)
      local gx, gA, gB = x.grad, A.grad, B.grad
      x.grad, A.grad, B.grad = nil, nil, nil
      local y2 = lfl.lora_linear(x, Wd, b, A, B, 0.5)
      y2:backward(g)
      t.assert_tensor_close(y1, y2, 1e-5, 1e-5, L[1] .. " forward")
      t.assert_tensor_close(gx, x.grad, 1e-5, 1e-5, L[1] .. " dx")
      t.assert_tensor_close(gA, A.grad, 1e-5, 1e-5, L[1] .. " dA")
      t.assert_tensor_close(gB, B.grad, 1e-5, 1e-5, L[1] .. " dB")
    end
  end,

  dora_row_norm = function()
    local peft = require("lfl.train.peft")
    local q, Wd = layer("gptq", 696, 512, 128, "f16", {v1 = true, act_order = true}) -- 696 rows: two blocks of rows
    local A, B = lfl.randn(4, 512) * 0.1, lfl.randn(696, 4) * 0.1
    t.assert_tensor_close(peft.weight_row_norm(q, B, A, 0.5), peft.weight_row_norm(Wd, B, A, 0.5), 1e-5, 1e-5)
    t.assert_error(function() lfl.q4_rows(q, 695, 3) end, "outside the 696 rows")
  end,

  bytes_per_weight = function()
    -- groups of 128 (the checkpoints' usual size): codes 0.5 B, a u8 zero and a
    -- 16-bit scale per group and output 3 / 128 B; act-order adds 4 B per input
    for _, L in ipairs(LAYOUTS) do
      local q = layer(L[2], 512, 1024, 128, "f16", L[3])
      local bpw = lfl.gptq_state(q).nbytes / q:numel()
      local want = 0.5 + 3 / 128 + (L[3].act_order and 4 / 512 or 0)
      t.assert_close(bpw, want, 1e-9, L[1] .. " bytes per weight")
      t.assert(bpw < 0.54, fmt("%s: %.4f bytes per weight", L[1], bpw))
    end
  end,

  refusals = function()
    local q = layer("gptq", 32, 64, 32, "f16", {v1 = true})
    t.assert_error(function() q:requires_grad() end, "only floating tensors can require grad (this is gptq4)")
    t.assert_error(function() lfl.linear(lfl.randn(2, 32), q:narrow(2, 1, 32)) end, "gptq4 tensors cannot be sliced")
    t.assert_error(function() lfl.linear(lfl.randn(2, 64):to("f64"), q) end, "takes f32 input")
    t.assert_error(function() q:to("bf16"):to("gptq4") end, "needs (de)quantization")
    local qw = lfl.tensor(words(8 * 16), "i32"):view(8, 16)
    t.assert_error(function() lfl.gptq_pack(qw, lfl.tensor(words(2), "i32"):view(1, 2), lfl.rand(1, 16), nil, 16, true) end,
      "gptq: 64 inputs in groups of 16 do not make 1 groups")
    t.assert_error(function()
      lfl.gptq_pack(qw, lfl.tensor(words(4), "i32"):view(2, 2), lfl.rand(2, 16):to("f16"), lfl.tensor({0, 5}, "i32"), 32, true)
    end, "g_idx has 2 rows, qweight unpacks to 64 inputs")
    t.assert_error(function() lfl.awq_pack(lfl.tensor(words(12 * 2), "i32"):view(12, 2),
      lfl.tensor(words(2), "i32"):view(1, 2), lfl.rand(1, 16), 12) end, "kept quantized, a linear needs a multiple of 8")
  end,
})

local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/quant/ptq.safetensors")

t.suite("gptq4 checkpoints", {
  load_kept = function()
    for _, kind in ipairs({"gptq", "awq"}) do
      local dir = lfl.home .. "/tests/golden/quant/" .. kind .. "_llama"
      local before = lfl.memory()
      local m = lfl.model.load(dir)
      local heap = lfl.memory() - before
      local deq = lfl.model.load(dir, {dequantize = true})
      t.assert_eq(m.ptq.kept, 14, kind .. ": 14 linears kept")
      t.assert_eq(deq.ptq.kept, 0, kind .. ": dequantize keeps none")
      local bytes, n = require("lfl.model.ptq").kept_bytes(m)
      t.assert_eq(n, 2 * (4 * 32 * 32 + 3 * 32 * 48 - 2 * 16 * 32), kind .. ": the linears' weights") -- k/v are [16, 32]
      -- groups of 16 here: codes 0.5 B, zero + f16 scale 3 / 16 B, act-order's g_idx 4 B per input
      t.assert(bytes / n < (kind == "gptq" and 0.9 or 0.7), fmt("%s: %.3f bytes per weight", kind, bytes / n))
      t.assert(heap < bytes + 32 * 1024, fmt("%s: the load took %d heap bytes, the kept weights %d", kind, heap, bytes))
      for _, name in ipairs(m.names) do
        local w = m.params[name]
        if name:match("_proj%.weight$") then
          t.assert_eq(w:dtype(), "gptq4", name)
          t.assert_tensor_close(w:to("f32"), deq.params[name], 0, 0, name)
        end
      end
      local l1 = m:forward(gold.ids)
      t.assert_tensor_close(l1, deq:forward(gold.ids), 1e-5, 1e-5, kind .. " logits: kept vs dequantized at load")
      t.assert_tensor_close(l1, gold[kind .. ".logits"], 1e-5, 1e-5, kind .. " logits: transformers")
    end
  end,

  lora_gradients_match_dequantized = function()
    local trainer = require("lfl.train.trainer")
    for _, kind in ipairs({"gptq", "awq"}) do
      local dir = lfl.home .. "/tests/golden/quant/" .. kind .. "_llama"
      local models, grads, losses = {}, {}, {}
      for i, keep in ipairs({true, false}) do
        local m = lfl.model.load(dir, {dequantize = not keep})
        lfl.manual_seed(3)
        local a = {learning_rate = 1e-2, weight_decay = 0, lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
                   lora_target = "all", finetuning_type = "lora"}
        local names, _, groups = trainer.setup_method(m, a)
        -- B starts at zero (PEFT): give it values so the gradient of A is not zero either
        lfl.manual_seed(5)
        for _, k in ipairs(names) do
          local mod, part = k:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
          local p = m.adapters[mod][part]
          if part == "B" then lfl.no_grad(function() p:copy_(lfl.randn(p:size(1), p:size(2)) * 0.05) end) end
        end
        local labels = gold.ids:clone()
        local loss = m:loss(gold.ids, labels)
        loss:backward()
        grads[i] = {}
        for _, k in ipairs(names) do
          local mod, part = k:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
          grads[i][k] = m.adapters[mod][part].grad:clone()
        end
        -- a few AdamW steps: the loss falls on the kept base
        if keep then
          local opt = lfl.optim.AdamW(groups, {lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0})
          losses[1] = loss:item()
          opt:step()
          for step = 2, 6 do
            opt:zero_grad()
            local l = m:loss(gold.ids, labels)
            l:backward()
            opt:step()
            losses[step] = l:item()
          end
        end
        models[i] = m
      end
      local n = 0
      for k, g in pairs(grads[1]) do
        t.assert_tensor_close(g, grads[2][k], 1e-5, 1e-4, kind .. " grad " .. k)
        t.assert(g:abs():max():item() > 0, kind .. " grad " .. k .. " is not zero")
        n = n + 1
      end
      t.assert_eq(n, 2 * 14, kind .. ": A and B of 14 linears")
      t.assert(losses[6] < losses[1] * 0.97, fmt("%s: loss falls %.4f -> %.4f", kind, losses[1], losses[6]))
    end
  end,
})

t.suite("gptq4 merge and save", {
  merge_and_save = function()
    local trainer, peft = require("lfl.train.trainer"), require("lfl.train.peft")
    local dir = lfl.home .. "/tests/golden/quant/awq_llama"
    local deq = lfl.model.load(dir, {dequantize = true})
    local tmp = os.tmpname()
    os.remove(tmp)
    local ok, err = pcall(function()
      -- a saved kept model is the float model it stands for
      local m = lfl.model.load(dir)
      m:save(tmp .. "/plain", {tokenizer = false})
      local back = lfl.model.load(tmp .. "/plain")
      t.assert(back.ptq == nil, "saved as a float model")
      for _, name in ipairs(deq.names) do
        t.assert_tensor_close(back.params[name], deq.params[name], 0, 0, "saved " .. name)
      end
      -- an adapter merges into the dequantized linears it targets; the others stay kept
      m = lfl.model.load(dir)
      trainer.setup_method(m, {learning_rate = 1e-3, weight_decay = 0, lora_rank = 4, lora_alpha = 8,
        lora_dropout = 0, lora_target = "q_proj,v_proj", finetuning_type = "lora"})
      lfl.manual_seed(11)
      for mod, f in pairs(m.adapters) do
        lfl.no_grad(function() f.B:copy_(lfl.randn(f.B:size(1), f.B:size(2)) * 0.05) end)
      end
      local want = lfl.no_grad(function() return m:forward(gold.ids) end)
      peft.merge(m)
      t.assert_eq(m.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "f32", "merged q_proj")
      t.assert_eq(m.params["model.layers.0.mlp.up_proj.weight"]:dtype(), "gptq4", "up_proj (not targeted) stays kept")
      t.assert_tensor_close(lfl.no_grad(function() return m:forward(gold.ids) end), want, 1e-5, 1e-5, "merged logits")
      m:save(tmp .. "/merged", {tokenizer = false})
      t.assert_tensor_close(lfl.no_grad(function() return lfl.model.load(tmp .. "/merged"):forward(gold.ids) end), want,
        1e-5, 1e-5, "the saved merged model's logits")
    end)
    lfl.fs.remove(tmp)
    if not ok then error(err, 0) end
  end,
})

return t.run()
