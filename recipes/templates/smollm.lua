-- "smollm": SmolLM / SmolLM2 ChatML (no default system prompt).
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  stop_words = {"<|im_end|>"},
}
