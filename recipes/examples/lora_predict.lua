-- Prediction with the LoRA adapter that recipes/examples/lora_sft.lua trains:
-- a reply generated for every eval example, BLEU-4 / ROUGE against the
-- references, generated_predictions.jsonl + predict_results.json in output_dir.
-- Mirrors LlamaFactory's examples/train_lora/llama3_lora_predict.yaml (no
-- training: do_train false; sampling with LlamaFactory's generation defaults,
-- do_sample true, temperature 0.95, top_p 0.7; max_new_tokens lowered for a CPU).
-- Run: lfl recipes/examples/lora_sft.lua, then lfl recipes/examples/lora_predict.lua
-- [key=value ...] (e.g. do_sample=false for greedy replies).
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local NAME, AUTHOR = "Lumen", "the lfl team"

-- the identity placeholders filled in as lora_sft.lua does
local function identity_mapper(r)
  local function fill(s) return (s:gsub("{{name}}", NAME):gsub("{{author}}", AUTHOR)) end
  return {prompt = {{role = "user", content = fill(r.instruction)}},
          response = {{role = "assistant", content = fill(r.output)}}}
end

return {
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  adapter_name_or_path = "saves/smollm2-135m/lora/sft",
  stage = "sft",
  do_train = false,
  do_predict = true,
  finetuning_type = "lora",
  eval_dataset = "identity_filled,alpaca_demo",
  datasets = {identity_filled = {file_name = lfl.home .. "/recipes/data/identity.json", mapper = identity_mapper}},
  template = "smollm",
  cutoff_len = 256,
  max_samples = 50,
  output_dir = "saves/smollm2-135m/lora/predict",
  overwrite_output_dir = true,
  per_device_eval_batch_size = 1,
  predict_with_generate = true,
  max_new_tokens = 128,
}
