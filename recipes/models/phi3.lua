-- Phi-3 / Phi-3.5 / Phi-4 (Microsoft): model_type phi3, fused qkv_proj and
-- gate_up_proj linears.
return {
  family = "phi3",
  title = "Phi-3 / Phi-3.5 / Phi-4",
  model_type = "phi3",
  arch = {
    model_type = "phi3",
    traits = {fused_qkv = true, fused_gate_up = true, window_all = true},
    gguf = {arch = "phi3", hf_class = "Phi3ForCausalLM", names = {ffn_up = "mlp.gate_up_proj"}},
  },
  template = "phi",
  lora_target = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"},
  checkpoints = {
    {name = "Phi-3-4B-4k-Instruct", hub = "microsoft/Phi-3-mini-4k-instruct", size = "3.8B"},
    {name = "Phi-3-4B-128k-Instruct", hub = "microsoft/Phi-3-mini-128k-instruct", size = "3.8B"},
    {name = "Phi-3-14B-8k-Instruct", hub = "microsoft/Phi-3-medium-4k-instruct", size = "14B"},
    {name = "Phi-3-14B-128k-Instruct", hub = "microsoft/Phi-3-medium-128k-instruct", size = "14B"},
    {name = "Phi-3.5-4B-instruct", hub = "microsoft/Phi-3.5-mini-instruct", size = "3.8B"},
    {name = "Phi-4-14B-Instruct", hub = "microsoft/phi-4", size = "14B", template = "phi4"},
  },
}
