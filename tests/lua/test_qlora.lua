-- QLoRA's 4-bit weights: bitsandbytes' NF4/FP4 quantization (with and without
-- double quantization) against goldens from bitsandbytes itself
-- (tests/ref/make_nf4_goldens.py), the 4-bit linear and lora_linear against
-- dequantize-then-GEMM, and the settings that must each change the result.
local t = lfl.test
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

t.run()
