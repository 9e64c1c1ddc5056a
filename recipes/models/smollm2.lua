-- SmolLM2 (Hugging Face): the llama layout (model_type llama) with tied
-- embeddings; the Instruct models use the smollm2 (ChatML-style) template.
local ck = {}
for _, s in ipairs({"135M", "360M", "1.7B"}) do
  ck[#ck + 1] = {name = "SmolLM2-" .. s, hub = "HuggingFaceTB/SmolLM2-" .. s, size = s}
  ck[#ck + 1] = {name = "SmolLM2-" .. s .. "-Instruct", hub = "HuggingFaceTB/SmolLM2-" .. s .. "-Instruct", size = s}
end
return {
  family = "smollm2",
  title = "SmolLM2",
  model_type = "llama",
  template = "smollm2",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
