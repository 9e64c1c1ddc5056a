-- LoRA KTO of SmolLM2-135M-Instruct on our KTO demo (arithmetic answers tagged
-- desirable when right, undesirable when off), sized for a CPU. Run: lfl
-- recipes/examples/lora_kto.lua [key=value ...]. Mirrors LlamaFactory's
-- examples/train_lora/qwen3_lora_kto.yaml (pref_beta 0.1); kto_chosen_weight /
-- kto_rejected_weight weigh the two kinds, pref_ftx adds SFT on the desirable.
-- The reference is the same model with the adapter off: no second copy.
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  stage = "kto",
  do_train = true,
  finetuning_type = "lora",
  lora_rank = 8,
  lora_target = "all",
  pref_beta = 0.1,
  kto_chosen_weight = 1.0,
  kto_rejected_weight = 1.0,
  dataset = "kto_demo",
  template = "smollm",
  cutoff_len = 64,
  max_samples = 72,
  val_size = 8,
  eval_steps = 8,
  per_device_eval_batch_size = 8,
  output_dir = "saves/smollm2-135m/lora/kto",
  logging_steps = 2,
  save_steps = 100,
  plot_loss = true, -- training_loss.png, training_rewards_chosen.png, training_eval_loss.png
  per_device_train_batch_size = 4,
  gradient_accumulation_steps = 1,
  learning_rate = 5.0e-4,
  num_train_epochs = 2.0,
  lr_scheduler_type = "cosine",
  warmup_ratio = 0.1,
  overwrite_output_dir = true,
  seed = 42,
}
