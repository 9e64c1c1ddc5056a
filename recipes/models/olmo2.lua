-- OLMo 2 (AI2): model_type olmo2 (RMSNorm after attention/MLP, q/k norms).
-- LlamaFactory's "olmo" template is not bundled yet: "default" stands in.
local ck = {}
local function add(name, hub, size) ck[#ck + 1] = {name = name, hub = hub, size = size} end
add("OLMo-2-0425-1B", "allenai/OLMo-2-0425-1B", "1B")
add("OLMo-2-0425-1B-Instruct", "allenai/OLMo-2-0425-1B-Instruct", "1B")
for _, s in ipairs({"7B", "13B"}) do
  add("OLMo-2-1124-" .. s, "allenai/OLMo-2-1124-" .. s, s)
  add("OLMo-2-1124-" .. s .. "-Instruct", "allenai/OLMo-2-1124-" .. s .. "-Instruct", s)
end
return {
  family = "olmo2",
  title = "OLMo 2",
  model_type = "olmo2",
  arch = {
    model_type = "olmo2",
    traits = {pre_norms = false, post_norms = true, qk_norm_full = true},
    gguf = {arch = "olmo2", hf_class = "Olmo2ForCausalLM"},
  },
  template = "default",
  lf_template = "olmo",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
