-- "qwen3_nothink": qwen3's strings as a plain template (no <think> handling),
-- for Qwen3 instruct models that do not reason.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_function = {"{{content}}<|im_end|>\n", tool_format = "qwen"},
  format_observation = {"<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"},
  format_tools = {tool_format = "qwen"},
  stop_words = {"<|im_end|>"},
  replace_eos = true,
}
