-- LoRA DPO of SmolLM2-135M-Instruct on our preference demo pairs (arithmetic:
-- the chosen answer is right, the rejected one off by a little), sized for a
-- CPU (a few minutes on 2 cores). Run: lfl recipes/examples/lora_dpo.lua
-- [key=value ...]. Mirrors LlamaFactory's examples/train_lora/qwen3_lora_dpo.yaml
-- (pref_loss sigmoid; hinge, ipo, kto_pair, orpo, simpo are the other losses).
-- The reference is the same model with the adapter off: no second copy.
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  stage = "dpo",
  do_train = true,
  finetuning_type = "lora",
  lora_rank = 8,
  lora_target = "all",
  pref_beta = 0.1,
  pref_loss = "sigmoid",
  dataset = "preference_demo",
  template = "smollm",
  cutoff_len = 64,
  max_samples = 72,
  val_size = 8,
  eval_steps = 8,
  per_device_eval_batch_size = 8,
  output_dir = "saves/smollm2-135m/lora/dpo",
  logging_steps = 2,
  save_steps = 100,
  plot_loss = true, -- training_loss.png, training_rewards_accuracies.png, training_eval_loss.png
  per_device_train_batch_size = 4,
  gradient_accumulation_steps = 1,
  learning_rate = 5.0e-4,
  num_train_epochs = 2.0,
  lr_scheduler_type = "cosine",
  warmup_ratio = 0.1,
  overwrite_output_dir = true,
  seed = 42,
}
