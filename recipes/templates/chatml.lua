-- "chatml": generic ChatML; tool results in a "tool" turn.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_observation = {"<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  stop_words = {"<|im_end|>", "<|im_start|>"},
  replace_eos = true,
  replace_jinja_template = true,
}
