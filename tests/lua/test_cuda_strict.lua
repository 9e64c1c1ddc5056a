-- The device path under the emulator's strict protection (host code that reads
-- device memory faults; see kernels/emu/cuda_emu.cc): a short LoRA run through
-- lfl.trainer with device: cuda, saving its adapter and a checkpoint, then
-- greedy decoding with the trained adapter, so every host-side step of
-- training and inference (logging, clipping, saving, sampling) is shown to
-- reach device tensors only through copies. test_cuda_train.lua checks the
-- numbers (in the cheaper "guard" mode); this one the plumbing. Runs where a
-- CUDA device exists (a GPU, or build-emu's emulator); skipped elsewhere.
local t = lfl.test
if not t.cuda_device("test_cuda_strict") then return end
local tmp = t.tiny_llama_dir("cuda_strict")

t.suite("cuda_strict", {
  train_save_and_generate_on_the_device = function()
    local a = lfl.args.resolve({model_name_or_path = tmp .. "/model", stage = "sft", dataset = "alpaca_demo",
      template = "chatml", cutoff_len = 24, max_samples = 8, per_device_train_batch_size = 2,
      gradient_accumulation_steps = 2, max_steps = 2, logging_steps = 1, save_steps = 1, learning_rate = 1e-2,
      max_grad_norm = 0.1, overwrite_output_dir = true, disable_tqdm = true, seed = 5, finetuning_type = "lora",
      output_dir = tmp .. "/run", device = "cuda", plot_loss = true}, {}, "test")
    local losses = {}
    lfl.trainer.run(a, {on_step = function(st, info) losses[st.global_step] = info.loss end})
    t.assert(#losses == 2 and losses[2] == losses[2], "two finite steps")
    t.assert(io.open(tmp .. "/run/adapter_model.safetensors", "rb") ~= nil, "the adapter was saved")
    t.assert(io.open(tmp .. "/run/checkpoint-1/adapter_model.safetensors", "rb") ~= nil, "a checkpoint was saved")
    local chat = require("lfl.cmd.chat")
    local m = chat.load({model = tmp .. "/model", adapter = tmp .. "/run", device = "cuda"})
    local ids = require("lfl.infer.generate").generate(m, {1, 5, 9, 3}, {max_new_tokens = 4, temperature = 0.7,
      top_p = 0.9, seed = 3})
    t.assert_eq(#ids, 4, "four sampled tokens from the device's logits")
  end,
})
t.run()
lfl.fs.remove(tmp)
