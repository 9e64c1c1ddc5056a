-- "lfm2": LFM2 / LFM2.5 (Liquid AI): ChatML with Pythonic tool calls; lfm2 tool format.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_function = {"{{content}}<|im_end|>\n", tool_format = "lfm2"},
  format_observation = {"<|im_start|>tool\n"
    .. "<|tool_response_start|>{{content}}<|tool_response_end|><|im_end|>\n"
    .. "<|im_start|>assistant\n"},
  format_tools = {tool_format = "lfm2"},
  default_system = "You are a helpful AI assistant.",
  stop_words = {"<|im_end|>"},
  tool_call_words = {"<|tool_call_start|>", "<|tool_call_end|>"},
  replace_eos = true,
}
