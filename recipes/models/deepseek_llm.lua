-- DeepSeek LLM 7B / 67B (DeepSeek): the llama layout (model_type llama).
return {
  family = "deepseek_llm",
  title = "DeepSeek LLM",
  model_type = "llama",
  template = "deepseek",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "DeepSeek-LLM-7B-Base", hub = "deepseek-ai/deepseek-llm-7b-base", size = "7B"},
    {name = "DeepSeek-LLM-67B-Base", hub = "deepseek-ai/deepseek-llm-67b-base", size = "67B"},
    {name = "DeepSeek-LLM-7B-Chat", hub = "deepseek-ai/deepseek-llm-7b-chat", size = "7B"},
    {name = "DeepSeek-LLM-67B-Chat", hub = "deepseek-ai/deepseek-llm-67b-chat", size = "67B"},
  },
}
