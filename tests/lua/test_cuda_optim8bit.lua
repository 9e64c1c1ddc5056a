-- 8-bit AdamW (lfl.optim.AdamW8bit) with its parameter on a CUDA device: the
-- codes and absmax are made on the parameter's device, the steps there follow
-- the CPU's bit for bit, the states dequantize for inspection and a
-- checkpoint's states load onto the device. Runs where a CUDA device exists
-- (a GPU, or the emulator of the LFL_CUDA=EMU build in build-emu/); skipped
-- with the reason elsewhere.
local t = lfl.test
local optim = lfl.optim
local desc, count = lfl.sys.cuda()
if count < 1 then
  print("test_cuda_optim8bit: skipped: no CUDA device (" .. desc .. ")")
  return
end
print("test_cuda_optim8bit on " .. desc)

local function same(a, b, what)
  t.assert_tensor_close(a:to("cpu"):to("f32"), b:to("cpu"):to("f32"), 0, 0, what)
end

local function opts() return {lr = 1e-2, weight_decay = 0.01, min_8bit_size = 0} end

t.suite("cuda_optim8bit", {
  steps_on_the_device_follow_the_cpu = function()
    lfl.manual_seed(3)
    local p = lfl.randn(40, 130) -- 5200 elements: 20 blocks of 256 and a tail of 80
    local pd = p:to("cuda")
    local o, od = optim.AdamW8bit({{params = {p}}}, opts()), optim.AdamW8bit({{params = {pd}}}, opts())
    for i = 1, 4 do
      local g = lfl.randn(40, 130) * (i == 2 and 5 or 0.1)
      p.grad, pd.grad = g, g:to("cuda")
      o:step()
      od:step()
    end
    local st, sd = o.state[p], od.state[pd]
    for _, k in ipairs({"q1", "a1", "q2", "a2"}) do
      t.assert_eq(sd[k]:device(), "cuda:0", k .. " on the parameter's device")
      same(sd[k], st[k], k .. " equal to the CPU's")
    end
    t.assert_eq(sd.q1:dtype(), "u8")
    same(pd, p, "parameters equal to the CPU's")
    local m, v = o:dequantized_state(p)
    local md, vd = od:dequantized_state(pd)
    same(md, m, "exp_avg dequantized from the device")
    same(vd, v, "exp_avg_sq dequantized from the device")
    t.assert_eq(od:state_bytes(), o:state_bytes())
  end,

  a_checkpoint_resumes_on_the_device = function()
    lfl.manual_seed(4)
    local p = lfl.randn(5000)
    local o = optim.AdamW8bit({{params = {p}, names = {"w"}}}, opts())
    p.grad = lfl.randn(5000) * 0.1
    o:step()
    local ts, meta = o:state_tensors()
    local pd = p:to("cuda")
    local od = optim.AdamW8bit({{params = {pd}, names = {"w"}}}, opts())
    od:load_state_tensors(ts, meta)
    t.assert_eq(od.state[pd].q1:device(), "cuda:0", "loaded codes on the device")
    t.assert_eq(od.state[pd].a2:device(), "cuda:0", "loaded absmax on the device")
    local g = lfl.randn(5000) * 0.1
    p.grad, pd.grad = g, g:to("cuda")
    o:step()
    od:step()
    same(pd, p, "the resumed step equals the CPU's")
    same(od.state[pd].q2, o.state[p].q2, "exp_avg_sq codes after the resumed step")
  end,
})
t.run()
