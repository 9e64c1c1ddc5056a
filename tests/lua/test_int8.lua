-- LLM.int8 weights (quantization_bit 8, transformers' load_in_8bit): bitsandbytes'
-- row-wise int8 quantization against goldens from bitsandbytes itself
-- (tests/ref/make_int8_goldens.py), Linear8bitLt's training-mode forward and
-- input gradient and its eval-mode LLM.int8 matmul (outlier decomposition),
-- the int8 linear and lora_linear against dequantize-then-GEMM, and a LoRA run
-- on an 8-bit base against PEFT + bitsandbytes, in training and eval mode.
local t = lfl.test
local fmt = string.format
local root = lfl.home .. "/tests/golden/"
local golden = root .. "quant/bnb8.safetensors"

t.suite("bnb8 goldens", {
  match_bitsandbytes = function()
    local g = lfl.safetensors.load(golden)
    for _, m in ipairs({"rand", "real"}) do
      local A = g[m .. ".input"]
      local q = lfl.quantize_8bit(A)
      t.assert_eq(q:dtype(), "int8", m)
      t.assert_eq(table.concat(q:size(), ","), table.concat(A:size(), ","), m .. " shape")
      local st = lfl.int8_state(q)
      -- CB as bytes (int8 codes), SCB as f32: both bit for bit
      t.assert_tensor_close(st.CB:reshape(-1):to("f32"), g[m .. ".CB"]:to("f32"), 0, 0, m .. " CB")
      t.assert_tensor_close(st.SCB, g[m .. ".SCB"], 0, 0, m .. " SCB")
      t.assert_eq(st.nbytes, A:numel() + 4 * A:size(1), m .. " bytes: 1 per weight + an f32 per row")
    end
    -- the weight MatMul8bitFp computes with: CB * (SCB * f32(1/127)), exactly
    t.assert_tensor_close(lfl.quantize_8bit(g["rand.input"]):to("f32"), g["rand.dequant"], 0, 0, "dequantized")
  end,

  zero_and_tiny_rows = function()
    -- an all-zero row keeps SCB 0 and codes 0 (bitsandbytes' 0 * inf -> NaN -> int8 0);
    -- the tiny row's f16 subnormals need torch's reciprocal-then-multiply to round as it does
    local g = lfl.safetensors.load(golden)
    local st = lfl.int8_state(lfl.quantize_8bit(g["rand.input"]))
    t.assert_eq(st.SCB:narrow(1, 8, 1):item(), 0)
    t.assert_eq(st.CB:narrow(1, 8, 1):to("f32"):abs():sum():item(), 0)
    t.assert_tensor_close(st.CB:narrow(1, 10, 1):reshape(-1):to("f32"),
      g["rand.CB"]:reshape(48, 128):narrow(1, 10, 1):reshape(-1):to("f32"), 0, 0, "tiny row")
    -- an inf or NaN weight: its row's SCB is inf / NaN (torch.max keeps a NaN) and its codes 0,
    -- as bitsandbytes gives them on x86 (checked by hand against int8_vectorwise_quant)
    local w = lfl.randn(3, 64) * 0.05
    w:narrow(1, 2, 1):narrow(2, 5, 1):fill_(1 / 0)
    w:narrow(1, 3, 1):narrow(2, 7, 1):fill_(0 / 0)
    local s2 = lfl.int8_state(lfl.quantize_8bit(w))
    t.assert_eq(s2.SCB:narrow(1, 2, 1):item(), 1 / 0)
    local nan = s2.SCB:narrow(1, 3, 1):item()
    t.assert(nan ~= nan, "NaN row scale")
    t.assert_eq(s2.CB:narrow(1, 2, 2):to("f32"):abs():sum():item(), 0)
  end,

  linear8bitlt_training_mode = function()
    -- Linear8bitLt in training mode on the CPU (MatMul8bitFp): the f32 GEMM on the
    -- dequantized weight, forward and input gradient (tolerance: f32 summation order)
    local g = lfl.safetensors.load(golden)
    local q = lfl.quantize_8bit(g["rand.input"])
    local x = g["lin.x"]:clone():requires_grad()
    local y = lfl.linear(x, q, g["lin.bias"])
    y:backward(g["lin.g"])
    t.assert_tensor_close(y, g["lin.y_train"], 1e-5, 1e-6, "forward")
    t.assert_tensor_close(x.grad, g["lin.dx_train"], 1e-5, 1e-6, "dx")
    -- eval mode (MatMul8bitLt, int8 activations) is another computation
    t.assert(t.max_abs_diff(y, g["lin.y_eval"]) > 1e-3, "the eval-mode golden is not the training one")
  end,

  linear8bitlt_eval_mode = function()
    -- MatMul8bitLt (lfl.int8_linear_lt): the int8 product is exact; the outlier
    -- columns' f32 addmm agrees to the last bit with one outlier column and to
    -- torch's summation order (1e-6) with several
    local g = lfl.safetensors.load(golden)
    local q = lfl.quantize_8bit(g["rand.input"])
    t.assert_tensor_close(lfl.int8_linear_lt(g["lin.x"], q, g["lin.bias"], 0), g["lin.y_eval0"], 0, 0, "threshold 0")
    t.assert_tensor_close(lfl.int8_linear_lt(g["lin.x"], q, g["lin.bias"], 6), g["lin.y_eval"], 1e-6, 0, "outliers")
    t.assert_tensor_close(lfl.int8_linear_lt(g["lin.x1"], q, g["lin.bias"], 6), g["lin.y_eval1"], 0, 0, "one row")
    local qo = lfl.quantize_8bit(g["odd.input"])
    t.assert_tensor_close(lfl.int8_state(qo).CB:reshape(-1):to("f32"), g["odd.CB"]:to("f32"), 0, 0, "odd CB")
    t.assert_tensor_close(lfl.int8_linear_lt(g["odd.x"], qo, nil, 6), g["odd.y_eval"], 1e-6, 0, "200 wide, no bias")
    -- the threshold takes effect: without the decomposition the outlier columns are quantized too
    t.assert(t.max_abs_diff(lfl.int8_linear_lt(g["lin.x"], q, g["lin.bias"], 0), g["lin.y_eval"]) > 1e-4,
      "threshold 6 and 0 agree")
    t.assert_error(function() lfl.int8_linear_lt(g["lin.x"]:clone():requires_grad(), q, nil, 6) end,
      "bitsandbytes' inference path takes no gradient")
    t.assert_error(function() lfl.int8_linear_lt(g["lin.x"], q, nil, -1) end, "threshold must be >= 0")
    t.assert_error(function() lfl.int8_linear_lt(lfl.randn(2, 64), q, nil, 6) end, "does not match the int8 weight [48, 128]")
  end,
})

local function check_linear(rows, fout, fin, what)
  local W = lfl.randn(fout, fin) * 0.05
  local q = lfl.quantize_8bit(W)
  local Wd = q:to("f32")
  local x, b, g = lfl.randn(rows, fin):requires_grad(), lfl.randn(fout), lfl.randn(rows, fout)
  local y1 = lfl.linear(x, q, b)
  y1:backward(g)
  local gx = x.grad
  x.grad = nil
  local y2 = lfl.linear(x, Wd, b)
  y2:backward(g)
  t.assert_tensor_close(y1, y2, 1e-5, 1e-5, what .. " forward")
  t.assert_tensor_close(gx, x.grad, 1e-5, 1e-5, what .. " dx")
  -- quantization error: half a step (SCB / 127 / 2) plus the f16 rounding of the weight at most
  local err, wmax = (Wd - W):abs():max():item(), W:abs():max():item()
  t.assert(err <= wmax * (0.5 / 127 + 2^-11) * 1.01, fmt("%s: quantization error %.3g", what, err))
  return q, Wd
end

t.suite("int8 linear", {
  matches_dequantized_gemm = function()
    check_linear(5, 96, 128, "small")
    check_linear(7, 50, 97, "odd width")
    check_linear(64, 384, 576, "threaded")
    check_linear(16, 96, 2304, "k in slices")
  end,

  lora_linear = function()
    local q, Wd = check_linear(3, 64, 128, "base")
    local x, b = lfl.randn(2, 9, 128):requires_grad(), lfl.randn(64)
    local A, B = (lfl.randn(8, 128) * 0.1):requires_grad(), (lfl.randn(64, 8) * 0.1):requires_grad()
    local g = lfl.randn(2, 9, 64)
    local y1 = lfl.lora_linear(x, q, b, A, B, 0.5)
    y1:backward(g)
    local gx, gA, gB = x.grad, A.grad, B.grad
    x.grad, A.grad, B.grad = nil, nil, nil
    local y2 = lfl.lora_linear(x, Wd, b, A, B, 0.5)
    y2:backward(g)
    t.assert_tensor_close(y1, y2, 1e-5, 1e-5, "forward")
    t.assert_tensor_close(gx, x.grad, 1e-5, 1e-5, "dx")
    t.assert_tensor_close(gA, A.grad, 1e-5, 1e-5, "dA")
    t.assert_tensor_close(gB, B.grad, 1e-5, 1e-5, "dB")
  end,

  dora_row_norm = function()
    local peft = require("lfl.train.peft")
    local q = lfl.quantize_8bit(lfl.randn(700, 512) * 0.05)
    local Wd = q:to("f32")
    local A, B = lfl.randn(4, 512) * 0.1, lfl.randn(700, 4) * 0.1
    t.assert_tensor_close(peft.weight_row_norm(q, B, A, 0.5), peft.weight_row_norm(Wd, B, A, 0.5), 1e-5, 1e-5)
    t.assert_tensor_close(lfl.q4_rows(q, 5, 3), Wd:narrow(1, 5, 3), 0, 0, "q4_rows of int8")
  end,

  from_bf16_and_f16 = function()
    -- the weight goes to f16 first whatever it was stored in (Int8Params._quantize)
    local W = lfl.randn(16, 64) * 0.05
    local s32 = lfl.int8_state(lfl.quantize_8bit(W))
    local s16 = lfl.int8_state(lfl.quantize_8bit(W:to("f16")))
    t.assert_tensor_close(s32.CB:to("f32"), s16.CB:to("f32"), 0, 0, "f32 and its f16 rounding give one CB")
    t.assert_tensor_close(s32.SCB, s16.SCB, 0, 0, "and one SCB")
    local sb = lfl.int8_state(lfl.quantize_8bit(W:to("bf16")))
    t.assert_tensor_close(sb.SCB, W:to("bf16"):to("f16"):to("f32"):abs():max(2), 0, 0, "bf16: SCB of the f16 values")
  end,

  refusals = function()
    local q = lfl.quantize_8bit(lfl.randn(64, 64))
    t.assert_error(function() lfl.linear(lfl.randn(2, 64):double(), q) end, "takes f32 input")
    t.assert_error(function() q:detach():requires_grad() end, "only floating tensors can require grad")
    t.assert_error(function() lfl.linear(lfl.randn(2, 32), q:narrow(2, 1, 32)) end, "a view of an int8 tensor")
    t.assert_error(function() lfl.quantize_8bit(lfl.randn(64)) end, "takes a non-empty 2-D weight [out, in], got [64]")
    t.assert_error(function() lfl.quantize_8bit(lfl.randn(4, 64):double()) end, "f32, bf16, f16 or GGUF block")
    t.assert_error(function() lfl.int8_state(lfl.quantize_4bit(lfl.randn(64, 64), "nf4", true)) end,
      "nf4 tensor has no 8-bit row scales")
    t.assert_error(function() lfl.zeros(4, 4):copy_(q:narrow(1, 1, 4)) end, "int8 (LLM.int8) tensors copy only to int8")
    local tiny = root .. "peft/qlora_llama64"
    t.assert_error(function() lfl.model.load(tiny, {quantize = {type = "int8", double_quant = true}}) end,
      "quantize.double_quant applies to nf4/fp4, not int8")
    local peft = require("lfl.train.peft")
    local m = lfl.model.load(tiny, {quantize = {type = "int8"}})
    peft.add_lora(m, {r = 4, alpha = 8, target = "all"})
    t.assert_error(function() peft.merge(m) end, "is bitsandbytes int8 (a QLoRA base): adapters cannot be merged")
  end,
})

-- a LoRA run on an 8-bit base against PEFT + bitsandbytes (make_int8_goldens.py):
-- the tiny llama loaded with load_in_8bit (f32 compute), PEFT's LoRA from the
-- same initial values, 5 AdamW steps in training mode
t.suite("int8 lora vs peft + bitsandbytes", {
  int8 = function()
    local function rel_err(a, b)
      local d = a:double() - b:double()
      return math.sqrt((d * d):sum():item()) / math.max(math.sqrt((b:double() * b:double()):sum():item()), 1e-30)
    end
    local g = lfl.safetensors.load(root .. "peft/llama_qlora_int8.safetensors")
    local m = lfl.model.load(root .. "peft/qlora_llama64", {quantize = {type = "int8"}})
    t.assert_eq(m.params["model.layers.0.mlp.up_proj.weight"]:dtype(), "int8")
    t.assert_eq(m.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "int8")
    for _, name in ipairs({"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"}) do
      t.assert_eq(m.params[name]:dtype(), "f32", name .. " is not quantized (as transformers does it)")
    end
    local trainer = require("lfl.train.trainer")
    local a = {learning_rate = 1e-3, weight_decay = 0.01, lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
               lora_target = "all", finetuning_type = "lora"}
    local names, _, groups = trainer.setup_method(m, a)
    local lookup = {}
    for _, k in ipairs(names) do
      local mod, kind = k:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
      lookup[k] = m.adapters[mod][kind]
      t.assert(g["init." .. k], "golden has " .. k)
      lfl.no_grad(function() lookup[k]:copy_(g["init." .. k]) end)
    end
    local logits = lfl.no_grad(function() return m:forward(g.input_ids) end)
    t.assert(t.max_abs_diff(logits, g.logits0) <= 1e-4, fmt("logits max abs diff %.3g", t.max_abs_diff(logits, g.logits0)))
    local init = {}
    for k, p in pairs(lookup) do init[k] = p:detach():clone() end
    local opt = lfl.optim.AdamW(groups, {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01})
    for step = 1, 5 do
      opt:zero_grad()
      local loss = m:loss(g.input_ids, g.labels)
      t.assert_close(loss:item(), g.losses[step], 1e-4, fmt("loss before step %d", step))
      loss:backward()
      opt:step()
      if step == 1 or step == 5 then
        for k, p in pairs(lookup) do
          local e = rel_err(p - init[k], g[fmt("step%d.%s", step, k)] - init[k])
          t.assert(e <= 2e-3, fmt("step %d: %s update relative error %.3g", step, k, e))
        end
      end
    end
    t.assert_close(lfl.no_grad(function() return m:loss(g.input_ids, g.labels):item() end), g.losses[6], 1e-4,
      "loss after step 5")
  end,

  -- the initial model in eval mode (transformers' model.eval(): Linear8bitLt takes
  -- LLM.int8's MatMul8bitLt with threshold 6.0) as lfl's evaluation runs it
  int8_eval_mode = function()
    local g = lfl.safetensors.load(root .. "peft/llama_qlora_int8.safetensors")
    local m = lfl.model.load(root .. "peft/qlora_llama64", {quantize = {type = "int8"}})
    t.assert_eq(m.quantization.threshold, 6.0, "transformers' llm_int8_threshold")
    local trainer = require("lfl.train.trainer")
    local names = trainer.setup_method(m, {lora_rank = 4, lora_alpha = 8, lora_dropout = 0, lora_target = "all",
                                           finetuning_type = "lora", learning_rate = 1e-3})
    for _, k in ipairs(names) do
      local mod, kind = k:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
      lfl.no_grad(function() m.adapters[mod][kind]:copy_(g["init." .. k]) end)
    end
    local train_logits = lfl.no_grad(function() return m:forward(g.input_ids) end)
    m.int8_eval = m.quantization.threshold
    local logits = lfl.no_grad(function() return m:forward(g.input_ids) end)
    local loss = lfl.no_grad(function() return m:loss(g.input_ids, g.labels):item() end)
    m.int8_eval = nil
    t.assert(t.max_abs_diff(logits, g.eval_logits0) <= 1e-4, fmt("eval logits max abs diff %.3g",
      t.max_abs_diff(logits, g.eval_logits0)))
    t.assert_close(loss, g.eval_loss0:item(), 1e-4, "eval-mode loss")
    t.assert(t.max_abs_diff(train_logits, g.eval_logits0) > 1e-3, "eval mode computes what training mode does")
  end,

  -- OFT on an 8-bit base in eval mode: the rotated input goes through LLM.int8's matmul
  -- (an identity rotation, OFT's initial one, leaves the base's eval-mode logits)
  oft_int8_eval_mode = function()
    local ids = lfl.tensor({{5, 9, 17, 33, 2, 40}}, "i64")
    local m = lfl.model.load(root .. "peft/qlora_llama64", {quantize = {type = "int8"}})
    m.int8_eval = 6.0
    local base = lfl.no_grad(function() return m:forward(ids) end)
    local trainer = require("lfl.train.trainer")
    local names, params = trainer.setup_method(m, {finetuning_type = "oft", oft_rank = 0, oft_block_size = 16,
      module_dropout = 0, lora_target = "all", learning_rate = 1e-3, weight_decay = 0})
    t.assert_tensor_close(lfl.no_grad(function() return m:forward(ids) end), base, 1e-5, 0, "identity rotation")
    lfl.no_grad(function() for _, p in ipairs(params) do p:copy_(lfl.randn(p:size()) * 0.05) end end)
    local rotated = lfl.no_grad(function() return m:forward(ids) end)
    m.int8_eval = nil
    local train_mode = lfl.no_grad(function() return m:forward(ids) end)
    t.assert(t.max_abs_diff(rotated, base) > 1e-3, "the rotation changes the eval-mode output")
    local d = t.max_abs_diff(rotated, train_mode)
    t.assert(d > 0 and d < 0.05 * train_mode:abs():max():item(), fmt("eval vs training mode %.3g", d))
  end,
})

t.run()
