-- Mistral 7B v0.1-v0.3, Mistral-Nemo and Ministral (Mistral AI): model_type
-- mistral (sliding-window attention on every layer where the config sets it);
-- also the language model of Mistral Small 3.1 / 3.2 (model_type mistral3,
-- image-text: lfl.model.wrapper).
return {
  family = "mistral",
  title = "Mistral / Mistral-Nemo / Ministral",
  model_type = "mistral",
  arch = {
    model_type = "mistral",
    traits = {window_all = true},
    gguf = {arch = "mistral", hf_class = "MistralForCausalLM", permuted = true},
  },
  template = "mistral",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Mistral-7B-v0.1", hub = "mistralai/Mistral-7B-v0.1", size = "7B"},
    {name = "Mistral-7B-Instruct-v0.1", hub = "mistralai/Mistral-7B-Instruct-v0.1", size = "7B"},
    {name = "Mistral-7B-Instruct-v0.2", hub = "mistralai/Mistral-7B-Instruct-v0.2", size = "7B"},
    {name = "Mistral-7B-v0.3", hub = "mistralai/Mistral-7B-v0.3", size = "7B"},
    {name = "Mistral-7B-Instruct-v0.3", hub = "mistralai/Mistral-7B-Instruct-v0.3", size = "7B"},
    {name = "Mistral-Nemo-Base-2407", hub = "mistralai/Mistral-Nemo-Base-2407", size = "12B"},
    {name = "Mistral-Nemo-Instruct-2407", hub = "mistralai/Mistral-Nemo-Instruct-2407", size = "12B"},
    {name = "Ministral-8B-Instruct-2410", hub = "mistralai/Ministral-8B-Instruct-2410", size = "8B",
     template = "ministral"},
    -- image-text (model_type mistral3) checkpoints: their language model (lfl.model.wrapper)
    {name = "Mistral-Small-3.1-24B-Instruct", hub = "mistralai/Mistral-Small-3.1-24B-Instruct-2503", size = "24B",
     template = "mistral_small"},
    {name = "Mistral-Small-3.2-24B-Instruct", hub = "mistralai/Mistral-Small-3.2-24B-Instruct-2506", size = "24B",
     template = "mistral_small"},
  },
}
