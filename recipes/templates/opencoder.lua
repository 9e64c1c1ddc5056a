-- "opencoder": OpenCoder: ChatML with its default system.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_observation = {"<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  default_system = "You are OpenCoder, created by OpenCoder Team.",
  stop_words = {"<|im_end|>"},
}
