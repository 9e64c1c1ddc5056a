-- "granite4": Granite 4 (IBM): granite3's turns with tool calls and IBM's default system.
return {
  format_user = {"<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n"
    .. "<|start_of_role|>assistant<|end_of_role|>"},
  format_assistant = {"{{content}}<|end_of_text|>\n"},
  format_system = {"<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n"},
  format_observation = {"<|start_of_role|>tool<|end_of_role|>{{content}}<|end_of_text|>\n"
    .. "<|start_of_role|>assistant\n"},
  default_system = "You are Granite, developed by IBM. You are a helpful AI assistant.",
  stop_words = {"<|end_of_text|>"},
}
