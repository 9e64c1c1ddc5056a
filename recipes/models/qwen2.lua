-- Qwen2 and Qwen2.5 (Alibaba): model_type qwen2 (biases on q/k/v).
local ck = {}
local function add(name, hub, size) ck[#ck + 1] = {name = name, hub = hub, size = size} end
for _, s in ipairs({"0.5B", "1.5B", "7B", "72B"}) do
  add("Qwen2-" .. s, "Qwen/Qwen2-" .. s, s)
  add("Qwen2-" .. s .. "-Instruct", "Qwen/Qwen2-" .. s .. "-Instruct", s)
end
for _, s in ipairs({"0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B"}) do
  add("Qwen2.5-" .. s, "Qwen/Qwen2.5-" .. s, s)
  add("Qwen2.5-" .. s .. "-Instruct", "Qwen/Qwen2.5-" .. s .. "-Instruct", s)
end
for _, s in ipairs({"1.5B", "7B"}) do
  add("Qwen2.5-Coder-" .. s, "Qwen/Qwen2.5-Coder-" .. s, s)
  add("Qwen2.5-Coder-" .. s .. "-Instruct", "Qwen/Qwen2.5-Coder-" .. s .. "-Instruct", s)
end
return {
  family = "qwen2",
  title = "Qwen2 / Qwen2.5 / Qwen2.5-Coder",
  model_type = "qwen2",
  arch = {
    model_type = "qwen2",
    traits = {qkv_bias = true},
    -- use_sliding_window: the layers from max_window_layers on use the window
    window = function(cfg, l, sw)
      if cfg.use_sliding_window and sw and l - 1 >= (cfg.max_window_layers or 0) then return sw end
      return nil
    end,
    gguf = {arch = "qwen2", hf_class = "Qwen2ForCausalLM"},
  },
  template = "qwen",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
