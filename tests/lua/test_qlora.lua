-- QLoRA's 4-bit weights: bitsandbytes' NF4/FP4 quantization (with and without
-- double quantization) against goldens from bitsandbytes itself
-- (tests/ref/make_nf4_goldens.py), the 4-bit linear and lora_linear against
-- dequantize-then-GEMM, and the settings that must each change the result.
local t = lfl.test
local fmt = string.format
local golden = lfl.home .. "/tests/golden/quant/bnb4.safetensors"

local function eq_bytes(a, b, what)
  t.assert_eq(a:numel(), b:numel(), what .. " size")
  local d = (a:to("f32") - b:to("f32")):abs():max():item()
  t.assert_eq(d, 0, what .. ": codes differ")
end

t.suite("bnb4 goldens", {
  code_values = function()
    local g = lfl.safetensors.load(golden)
    for _, k in ipairs({"nf4", "fp4"}) do
      local st = lfl.q4_state(lfl.quantize_4bit(lfl.randn(64), k, false))
      t.assert_tensor_close(st.code, g["code." .. k], 0, 0, k .. " code values")
    end
  end,

  match_bitsandbytes = function()
    local g = lfl.safetensors.load(golden)
    for _, m in ipairs({"rand", "real"}) do
      local A = g[m .. ".input"]
      for _, case in ipairs({"nf4", "nf4_dq", "fp4", "fp4_dq"}) do
        local key = m .. "." .. case
        local kind, dq = case:sub(1, 3), case:find("_dq") ~= nil
        local q = lfl.quantize_4bit(A, kind, dq)
        t.assert_eq(q:dtype(), kind, key)
        local st = lfl.q4_state(q)
        eq_bytes(st.packed, g[key .. ".packed"], key .. " packed")
        if dq then
          eq_bytes(st.qabsmax, g[key .. ".absmax"], key .. " quantized absmax")
          t.assert_tensor_close(st.absmax2, g[key .. ".absmax2"], 1e-6, 0, key .. " absmax2")
          t.assert_tensor_close(st.code2, g[key .. ".code2"], 0, 0, key .. " code2")
          t.assert_close(st.offset, g[key .. ".offset"]:item(), 1e-6, key .. " offset")
        else
          t.assert_tensor_close(st.absmax, g[key .. ".absmax"], 0, 0, key .. " absmax")
        end
        local want = g[key .. ".dequant"]
        if want then
          -- the values are code * scale in f32, so they agree to the scale's own rounding;
          -- bitsandbytes returns the input's dtype (bf16 for the real matrix)
          local got = q:to("f32")
          if A:dtype() == "bf16" then got = q:to("bf16"):to("f32") end
          t.assert_tensor_close(got, want, 1e-6, 1e-6, key .. " dequantized")
        end
      end
    end
  end,

  matmul_4bit = function()
    local g = lfl.safetensors.load(golden)
    local q = lfl.quantize_4bit(g["rand.input"], "nf4", true)
    t.assert_tensor_close(lfl.linear(g["rand.nf4_dq.x"], q), g["rand.nf4_dq.y"], 1e-5, 1e-6, "bnb.matmul_4bit")
  end,
})

-- y = x W^T (+ bias) and dx through the 4-bit GEMM, against the same on W
-- dequantized to f32 (tolerance: f32 GEMMs summing in another order)
local function check_linear(rows, fout, fin, kind, dq, what)
  local W = lfl.randn(fout, fin) * 0.05
  local q = lfl.quantize_4bit(W, kind, dq)
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
  return q, Wd
end

t.suite("4-bit linear", {
  matches_dequantized_gemm = function()
    check_linear(5, 96, 128, "nf4", true, "small")
    check_linear(7, 50, 96, "fp4", false, "blocks across rows")          -- 96-wide rows: blocks straddle them
    check_linear(64, 384, 576, "nf4", true, "threaded")                  -- past the threading threshold
    check_linear(16, 96, 2304, "nf4", false, "k in slices")              -- 2304 * 128 > the 1 MB scratch
  end,

  lora_linear = function()
    local q, Wd = check_linear(3, 64, 128, "nf4", true, "base")
    for _, s in ipairs({0.5, 2 / math.sqrt(8)}) do -- LoRA's alpha / r and rsLoRA's alpha / sqrt(r)
      local x, b = lfl.randn(2, 9, 128):requires_grad(), lfl.randn(64)
      local A, B = (lfl.randn(8, 128) * 0.1):requires_grad(), (lfl.randn(64, 8) * 0.1):requires_grad()
      local g = lfl.randn(2, 9, 64)
      local y1 = lfl.lora_linear(x, q, b, A, B, s)
      y1:backward(g)
      local gx, gA, gB = x.grad, A.grad, B.grad
      x.grad, A.grad, B.grad = nil, nil, nil
      local y2 = lfl.lora_linear(x, Wd, b, A, B, s)
      y2:backward(g)
      t.assert_tensor_close(y1, y2, 1e-5, 1e-5, "forward")
      t.assert_tensor_close(gx, x.grad, 1e-5, 1e-5, "dx")
      t.assert_tensor_close(gA, A.grad, 1e-5, 1e-5, "dA")
      t.assert_tensor_close(gB, B.grad, 1e-5, 1e-5, "dB")
    end
  end,

  dora_row_norm = function()
    -- DoRA's ||W + s B A||_row on a 4-bit W: dequantized a block of rows at a time
    local peft = require("lfl.train.peft")
    local q = lfl.quantize_4bit(lfl.randn(700, 512) * 0.05, "nf4", true) -- 700 rows: more than one block of rows
    local Wd = q:to("f32")
    local A, B = lfl.randn(4, 512) * 0.1, lfl.randn(700, 4) * 0.1
    t.assert_tensor_close(peft.weight_row_norm(q, B, A, 0.5), peft.weight_row_norm(Wd, B, A, 0.5), 1e-5, 1e-5)
    t.assert_tensor_close(peft.weight_row_norm(q), peft.row_norm(Wd), 1e-5, 1e-5)
    t.assert_tensor_close(lfl.q4_rows(q, 5, 3), Wd:narrow(1, 5, 3), 0, 0, "q4_rows")
    t.assert_error(function() lfl.q4_rows(q, 699, 3) end, "outside the 700 rows")
  end,

  refusals = function()
    local q = lfl.quantize_4bit(lfl.randn(64, 64), "nf4", true)
    t.assert_error(function() lfl.linear(lfl.randn(2, 64):double(), q) end, "takes f32 input")
    t.assert_error(function() q:detach():requires_grad() end, "only floating tensors can require grad")
    t.assert_error(function() q:narrow(1, 1, 32) end, "nf4 tensors cannot be sliced")
    t.assert_error(function() lfl.quantize_4bit(lfl.randn(3, 7), "nf4", true) end, "not a (non-zero) multiple of the block of 64")
    t.assert_error(function() lfl.quantize_4bit(lfl.randn(64), "int4", true) end, "'int4' is not nf4 or fp4")
    t.assert_error(function() lfl.quantize_4bit(lfl.randn(64):double(), "nf4", true) end, "f32, bf16, f16 or GGUF block")
    local tiny = lfl.home .. "/tests/golden/peft/qlora_llama64"
    t.assert_error(function() lfl.model.load(tiny, {quantize = {type = "int4", double_quant = true}}) end,
      "quantize.type must be nf4, fp4 or int8, got int4")
    t.assert_error(function() lfl.model.load(tiny, {quantize = {type = "nf4"}}) end,
      "quantize.double_quant must be true or false, got nil")
  end,
})

t.suite("which weights", {
  decoder_linears_only = function()
    local M, w, v = lfl.model, lfl.zeros(4, 64), lfl.zeros(64)
    for name, want in pairs({["model.layers.0.self_attn.q_proj.weight"] = true, ["model.layers.11.mlp.down_proj.weight"] = true,
        ["model.layers.2.block_sparse_moe.experts.3.w1.weight"] = true, ["model.layers.2.block_sparse_moe.gate.weight"] = true,
        ["model.layers.0.self_attn.q_norm.weight"] = false, ["lm_head.weight"] = false,
        ["model.embed_tokens.weight"] = false, ["model.norm.weight"] = false}) do
      t.assert_eq(M.quantizes(name, w), want, name)
    end
    t.assert_eq(M.quantizes("model.layers.0.self_attn.q_proj.bias", v), false)
  end,
})

-- every setting changes what is stored and what the layer computes
t.suite("settings take effect", {
  type_and_double_quant = function()
    local W, x = lfl.randn(128, 256) * 0.05, lfl.randn(3, 256)
    local nf4, fp4 = lfl.quantize_4bit(W, "nf4", false), lfl.quantize_4bit(W, "fp4", false)
    local nf4dq = lfl.quantize_4bit(W, "nf4", true)
    local s1, s2, s3 = lfl.q4_state(nf4), lfl.q4_state(fp4), lfl.q4_state(nf4dq)
    t.assert(s1.packed:ne(s2.packed):to("f32"):sum():item() > 0, "fp4 stores the same codes as nf4")
    t.assert(lfl.linear(x, nf4):ne(lfl.linear(x, fp4)):to("f32"):sum():item() > 0, "fp4 computes what nf4 does")
    -- double quantization: 1 byte per block (+ an f32 per 256 blocks) instead of 4
    t.assert_eq(s1.nbytes, 128 * 256 / 2 + 4 * 512)
    t.assert_eq(s3.nbytes, 128 * 256 / 2 + 512 + 4 * 2 + 4)
    t.assert(s3.absmax == nil and s3.qabsmax ~= nil, "double quantization kept f32 absmaxes")
    t.assert(s3.scales:ne(s1.absmax):to("f32"):sum():item() > 0, "double quantization left the scales exact")
    t.assert_tensor_close(s3.scales, s1.absmax, 2e-3, 0, "double-quantized scales near the f32 ones")
    t.assert(lfl.linear(x, nf4):ne(lfl.linear(x, nf4dq)):to("f32"):sum():item() > 0, "double quantization changed nothing")
  end,
})

-- a QLoRA run against PEFT + bitsandbytes (tests/ref/make_qlora_goldens.py): the
-- tiny llama loaded with 4-bit linears, PEFT's LoRA from the same initial values,
-- 5 AdamW steps: the same logits, per-step losses and adapter updates
t.suite("qlora vs peft + bitsandbytes", (function()
  local cases = {}
  local root = lfl.home .. "/tests/golden/"
  local function rel_err(a, b)
    local d = a:double() - b:double()
    return math.sqrt((d * d):sum():item()) / math.max(math.sqrt((b:double() * b:double()):sum():item()), 1e-30)
  end
  for case, q in pairs({nf4_dq = {type = "nf4", double_quant = true}, fp4 = {type = "fp4", double_quant = false}}) do
    cases[case] = function()
      local g = lfl.safetensors.load(root .. "peft/llama_qlora_" .. case .. ".safetensors")
      local m = lfl.model.load(root .. "peft/qlora_llama64", {quantize = q})
      t.assert_eq(m.params["model.layers.0.mlp.up_proj.weight"]:dtype(), q.type)
      for _, name in ipairs({"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
                             "model.layers.0.input_layernorm.weight"}) do
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
        t.assert_close(loss:item(), g.losses[step], 1e-4, fmt("%s loss before step %d", case, step))
        loss:backward()
        opt:step()
        if step == 1 or step == 5 then
          for k, p in pairs(lookup) do
            local e = rel_err(p - init[k], g[fmt("step%d.%s", step, k)] - init[k])
            t.assert(e <= 2e-3, fmt("%s step %d: %s update relative error %.3g", case, step, k, e))
          end
        end
      end
      local final = lfl.no_grad(function() return m:loss(g.input_ids, g.labels):item() end)
      t.assert_close(final, g.losses[6], 1e-4, case .. " loss after step 5")
    end
  end
  return cases
end)())

t.run()
