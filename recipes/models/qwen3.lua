-- Qwen3 (Alibaba): model_type qwen3 (q/k RMSNorm). The hybrid-thinking
-- checkpoints use the qwen3 template; the 2507 Instruct ones never think.
local ck = {}
for _, s in ipairs({"0.6B", "1.7B", "4B", "8B", "14B"}) do
  ck[#ck + 1] = {name = "Qwen3-" .. s .. "-Base", hub = "Qwen/Qwen3-" .. s .. "-Base", size = s}
end
for _, s in ipairs({"0.6B", "1.7B", "4B", "8B", "14B", "32B"}) do
  ck[#ck + 1] = {name = "Qwen3-" .. s .. "-Instruct", hub = "Qwen/Qwen3-" .. s, size = s}
end
ck[#ck + 1] = {name = "Qwen3-4B-Instruct-2507", hub = "Qwen/Qwen3-4B-Instruct-2507", size = "4B",
               template = "qwen3_nothink"}
ck[#ck + 1] = {name = "Qwen3-4B-Thinking-2507", hub = "Qwen/Qwen3-4B-Thinking-2507", size = "4B"}
return {
  family = "qwen3",
  title = "Qwen3",
  model_type = "qwen3",
  arch = {
    model_type = "qwen3",
    traits = {qk_norm = true},
    gguf = {arch = "qwen3", hf_class = "Qwen3ForCausalLM"},
  },
  template = "qwen3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
