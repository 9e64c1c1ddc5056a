-- "ernie": ERNIE 4.5 (thinking): ChatML-like turns with blank lines, think_mode in the default system.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n\n"},
  format_observation = {"<|im_start|>tool\n{{content}}<|im_end|>\n\n<|im_start|>assistant\n"},
  default_system = "<global_setting>\nthink_mode=True\n</global_setting>",
  stop_words = {"<|im_end|>"},
}
