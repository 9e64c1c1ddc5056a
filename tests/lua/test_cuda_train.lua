-- The CUDA path end to end on the tiny golden llama, against the CPU: the
-- forward's logits, greedy decoding's tokens, and 10 steps of LoRA and of
-- full SFT through lfl.trainer with device: cuda reproducing the CPU's loss
-- and grad-norm curves; plus the refusals of what the device path does not
-- cover yet (QLoRA and the preference stages: test_cuda_pref.lua). Runs
-- where a CUDA device exists (a GPU, or the emulator of the LFL_CUDA=EMU
-- build in build-emu/); skipped with the reason elsewhere.
local t = lfl.test
local fmt = string.format
if not t.cuda_device("test_cuda_train") then return end
local tmp = t.tiny_llama_dir("cuda_train")

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "sft", dataset = "alpaca_demo", template = "chatml",
    cutoff_len = 24, max_samples = 20, per_device_train_batch_size = 2, gradient_accumulation_steps = 2,
    max_steps = 10, logging_steps = 1, save_steps = 1000, learning_rate = 1e-2, lr_scheduler_type = "cosine",
    warmup_steps = 1, max_grad_norm = 0.1, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
    finetuning_type = "lora", output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return lfl.args.resolve(r, {}, "test")
end

local function curve(a)
  local out = {}
  lfl.trainer.run(a, {on_step = function(st, info) out[st.global_step] = {info.loss, info.grad_norm} end})
  return out
end

local function max_rel(x, y)
  local d = (x - y):abs():max():item()
  return d / math.max(1e-30, y:abs():max():item())
end

t.suite("cuda_train", {
  forward_logits_and_loss_match_the_cpu = function()
    local m = lfl.model.load(tmp .. "/model")
    local ids = lfl.tensor({{1, 5, 9, 3, 7, 11, 2}, {4, 4, 8, 15, 16, 23, 42}}, "i64")
    local ref = m:forward(ids)
    local lref = m:loss(ids, ids):item()
    m:to("cuda")
    local got = m:forward(ids)
    t.assert_eq(got:device(), "cuda:0", "logits on the device")
    local e = max_rel(got:to("cpu"), ref)
    t.assert(e < 1e-5, fmt("logits: relative error %.3g", e))
    local l = m:loss(ids, ids):item()
    t.assert(math.abs(l - lref) < 1e-5 * math.abs(lref), fmt("loss %.9g vs cpu %.9g", l, lref))
  end,

  greedy_decoding_gives_the_cpu_tokens = function()
    local m = lfl.model.load(tmp .. "/model")
    local prompt = {1, 5, 9, 3}
    local g = require("lfl.infer.generate")
    local ref = g.generate(m, prompt, {max_new_tokens = 8})
    m:to("cuda")
    local got = g.generate(m, prompt, {max_new_tokens = 8})
    t.assert_eq(#got, 8, "eight new tokens")
    t.assert_eq(lfl.json.encode(got), lfl.json.encode(ref), "greedy tokens")
  end,

  chat_load_puts_the_model_on_the_device = function()
    local chat = require("lfl.cmd.chat")
    local m = chat.load({model = tmp .. "/model", device = "cuda"})
    t.assert_eq(require("lfl.model.decoder").device_of(m), "cuda:0")
    local g = require("lfl.infer.generate")
    local ref = g.generate(chat.load({model = tmp .. "/model"}), {1, 5, 9, 3}, {max_new_tokens = 6})
    t.assert_eq(lfl.json.encode(g.generate(m, {1, 5, 9, 3}, {max_new_tokens = 6})), lfl.json.encode(ref))
  end,

  lora_sft_curve_matches_the_cpu = function()
    local ref = curve(recipe({output_dir = tmp .. "/lora_cpu"}))
    local got = curve(recipe({output_dir = tmp .. "/lora_cuda", device = "cuda"}))
    t.assert_eq(#got, 10, "ten steps on the device")
    for s = 1, 10 do
      t.assert(math.abs(got[s][1] - ref[s][1]) <= 1e-4 * math.abs(ref[s][1]),
        fmt("step %d loss %.9g vs cpu %.9g", s, got[s][1], ref[s][1]))
      t.assert(math.abs(got[s][2] - ref[s][2]) <= 1e-3 * math.abs(ref[s][2]) + 1e-6,
        fmt("step %d grad_norm %.9g vs cpu %.9g", s, got[s][2], ref[s][2]))
    end
  end,

  full_sft_curve_matches_the_cpu = function()
    local ref = curve(recipe({output_dir = tmp .. "/full_cpu", finetuning_type = "full", learning_rate = 1e-3}))
    local got = curve(recipe({output_dir = tmp .. "/full_cuda", finetuning_type = "full", learning_rate = 1e-3,
      device = "cuda"}))
    for s = 1, 10 do
      t.assert(math.abs(got[s][1] - ref[s][1]) <= 1e-4 * math.abs(ref[s][1]),
        fmt("step %d loss %.9g vs cpu %.9g", s, got[s][1], ref[s][1]))
    end
  end,

  bf16_on_the_device_says_what_it_does = function()
    local lines, real_print = {}, print
    print = function(...) lines[#lines + 1] = table.concat({...}, " "); real_print(...) end
    local ok, err = pcall(curve, recipe({output_dir = tmp .. "/bf16_cuda", device = "cuda", bf16 = true, max_steps = 2}))
    print = real_print
    t.assert(ok, tostring(err))
    t.assert(table.concat(lines, "\n"):find("bf16 storage, f32 arithmetic", 1, true),
      "the trainer says bf16 on CUDA widens to f32 GEMMs")
  end,

  what_the_device_path_lacks_is_refused = function()
    t.assert_error(function() lfl.trainer.run(recipe({device = "cuda:7"})) end, "device: cuda:7 requested, but there is only 1")
    t.assert_error(function() lfl.trainer.run(recipe({device = "cuda", finetuning_type = "oft"})) end,
      "device cuda:0: finetuning_type oft is not supported on CUDA yet")
    t.assert_error(function() lfl.trainer.run(recipe({device = "cuda", quantization_bit = 8})) end,
      "device cuda:0: a int8-quantized base (quantization_bit 8: only the 4-bit nf4 / fp4 bases have CUDA kernels)")
    local chat = require("lfl.cmd.chat")
    t.assert_error(function() chat.load({model = tmp .. "/model", device = "cuda:3"}) end,
      "--device cuda:3: there is only 1 CUDA device")
    t.assert_error(function() chat.load({model = tmp .. "/model", device = "gpu"}) end,
      '--device: expected "cpu", "cuda" or "cuda:N", got "gpu"')
    t.assert_error(function() lfl.args.resolve({model_name_or_path = "m", device = "gpu"}, {}, "r") end,
      'device: expected "cpu", "cuda" or "cuda:N"')
  end,
})
t.run()
lfl.fs.remove(tmp)
