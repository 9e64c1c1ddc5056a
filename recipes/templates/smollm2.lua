-- "smollm2": SmolLM2 ChatML with its default system prompt.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  stop_words = {"<|im_end|>"},
  default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
}
