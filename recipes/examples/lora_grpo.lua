-- LoRA GRPO of SmolLM2-135M-Instruct on our arithmetic prompts (arith_demo:
-- "What is a + b? Reply with the number only."), beyond LlamaFactory (TRL's
-- GRPOTrainer formulas). Each prompt gets num_generations sampled answers,
-- scored by the bundled reward recipes exact_answer (the last number is the
-- sum) and format (the answer is a number alone); a recipe may also list its
-- own Lua functions (prompt, completion, example) -> number. Slow on a CPU
-- (generation dominates): run lfl recipes/examples/lora_grpo.lua [key=value ...]
-- and watch `reward` in the log.
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  stage = "grpo",
  do_train = true,
  finetuning_type = "lora",
  lora_rank = 8,
  lora_target = "all",
  reward_funcs = {"exact_answer", "format"},
  num_generations = 4,
  max_completion_length = 12,
  temperature = 1.0,
  grpo_beta = 0.04,
  grpo_epsilon = 0.2,
  grpo_loss_type = "dapo",
  dataset = "arith_demo",
  template = "smollm",
  cutoff_len = 64,
  output_dir = "saves/smollm2-135m/lora/grpo",
  logging_steps = 1,
  save_steps = 100,
  plot_loss = true, -- training_loss.png, training_reward.png
  per_device_train_batch_size = 2,
  gradient_accumulation_steps = 1,
  learning_rate = 1.0e-3,
  max_steps = 24,
  lr_scheduler_type = "constant",
  overwrite_output_dir = true,
  seed = 42,
}
