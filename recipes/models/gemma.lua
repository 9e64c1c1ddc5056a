-- Gemma 1 / 1.1 and CodeGemma (Google): model_type gemma (tied embeddings,
-- (1 + w) RMSNorm, sqrt(hidden)-scaled embeddings, GELU-tanh MLP).
return {
  family = "gemma",
  title = "Gemma / CodeGemma",
  model_type = "gemma",
  arch = {
    model_type = "gemma",
    traits = {norm_plus_one = true, embed_scale = true, act = "gelu_tanh", tied = true},
    -- llama.cpp stores the norm weights with gemma's +1 added
    gguf = {arch = "gemma", hf_class = "GemmaForCausalLM", norm_offset = 1},
  },
  template = "gemma",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Gemma-2B", hub = "google/gemma-2b", size = "2B"},
    {name = "Gemma-7B", hub = "google/gemma-7b", size = "7B"},
    {name = "Gemma-2B-Instruct", hub = "google/gemma-2b-it", size = "2B"},
    {name = "Gemma-7B-Instruct", hub = "google/gemma-7b-it", size = "7B"},
    {name = "Gemma-1.1-2B-Instruct", hub = "google/gemma-1.1-2b-it", size = "2B"},
    {name = "Gemma-1.1-7B-Instruct", hub = "google/gemma-1.1-7b-it", size = "7B"},
    {name = "CodeGemma-7B", hub = "google/codegemma-7b", size = "7B"},
    {name = "CodeGemma-7B-Instruct", hub = "google/codegemma-7b-it", size = "7B"},
    {name = "CodeGemma-1.1-2B", hub = "google/codegemma-1.1-2b", size = "2B"},
  },
}
