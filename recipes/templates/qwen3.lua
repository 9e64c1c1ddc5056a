-- "qwen3": Qwen3 (thinking) ChatML; a ReasoningTemplate: answers without a
-- <think> block get an empty one (trained when enable_thinking, else part of
-- the prompt), history CoT can be discarded.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_function = {"{{content}}<|im_end|>\n", tool_format = "qwen"},
  format_observation = {"<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"},
  format_tools = {tool_format = "qwen"},
  stop_words = {"<|im_end|>"},
  replace_eos = true,
  template_class = "reasoning",
}
