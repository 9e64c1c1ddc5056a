-- LoRA SFT of SmolLM2-135M-Instruct on our identity + alpaca-style demo data,
-- sized for a CPU (a few minutes on 2 cores). Run: lfl recipes/examples/lora_sft.lua
-- [key=value ...]. Mirrors LlamaFactory's examples/train_lora/*_lora_sft.yaml.
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local NAME, AUTHOR = "Lumen", "the lfl team"

-- identity.json keeps {{name}}/{{author}} placeholders (as LlamaFactory's does);
-- this mapper fills them in, the way its README asks users to sed-replace them.
local function identity_mapper(r)
  local function fill(s) return (s:gsub("{{name}}", NAME):gsub("{{author}}", AUTHOR)) end
  return {prompt = {{role = "user", content = fill(r.instruction)}},
          response = {{role = "assistant", content = fill(r.output)}}}
end

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  stage = "sft",
  do_train = true,
  finetuning_type = "lora",
  lora_rank = 8,
  lora_target = "all",
  dataset = "identity_filled,alpaca_demo",
  datasets = {identity_filled = {file_name = lfl.home .. "/recipes/data/identity.json", mapper = identity_mapper}},
  template = "smollm",
  cutoff_len = 256,
  max_samples = 100,
  output_dir = "saves/smollm2-135m/lora/sft",
  logging_steps = 5,
  save_steps = 100,
  plot_loss = true,
  per_device_train_batch_size = 4,
  gradient_accumulation_steps = 1,
  learning_rate = 1.0e-3,
  num_train_epochs = 2.0,
  lr_scheduler_type = "cosine",
  warmup_ratio = 0.1,
  overwrite_output_dir = true,
  bf16 = true, -- as LlamaFactory's example: bf16 base, bf16 GEMM products where the CPU has AVX512_BF16
  seed = 42,
}
