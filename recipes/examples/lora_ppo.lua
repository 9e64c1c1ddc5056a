-- LoRA PPO of SmolLM2-135M-Instruct on our arithmetic prompts (arith_demo),
-- LlamaFactory's stage ppo (its examples/train_lora/llama3_lora_ppo.yaml of
-- 0.9.x, sized for a few minutes on a CPU). The reward model is the LoRA
-- adapter + value head that recipes/examples/lora_rm.lua trains: run that
-- first. It is attached to the same base as a second adapter (one copy of the
-- weights serves policy, reference and reward model). Each step samples 4
-- answers with LlamaFactory's generation defaults (temperature 0.95, top_p
-- 0.7, top_k 50; max_new_tokens shortened to 16), scores them, and makes
-- ppo_epochs passes of clipped policy + value updates. Run:
--   lfl recipes/examples/lora_rm.lua && lfl recipes/examples/lora_ppo.lua
-- and watch reward, objective/kl and ppo/loss/value in the log.
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  reward_model = "saves/smollm2-135m/lora/reward",
  reward_model_type = "lora",
  stage = "ppo",
  do_train = true,
  finetuning_type = "lora",
  lora_rank = 8,
  lora_target = "all",
  ppo_epochs = 4,
  ppo_buffer_size = 1,
  ppo_target = 6.0,
  ppo_score_norm = false,
  ppo_whiten_rewards = false,
  max_new_tokens = 16,
  dataset = "arith_demo",
  template = "smollm",
  cutoff_len = 64,
  output_dir = "saves/smollm2-135m/lora/ppo",
  logging_steps = 1,
  save_steps = 100,
  plot_loss = true, -- training_loss.png, training_reward.png
  per_device_train_batch_size = 2,
  gradient_accumulation_steps = 2,
  learning_rate = 5.0e-4,
  max_steps = 20,
  lr_scheduler_type = "cosine",
  overwrite_output_dir = true,
  seed = 42,
}
