-- "minimax1": MiniMax-M1 / Text-01: <beginning_of_sentence> turns; minimax1 tool format.
return {
  format_user = {"<beginning_of_sentence>user name=user\n{{content}}<end_of_sentence>\n"
    .. "<beginning_of_sentence>ai name=assistant\n"},
  format_assistant = {"{{content}}<end_of_sentence>\n"},
  format_system = {"<beginning_of_sentence>system ai_setting=assistant\n{{content}}<end_of_sentence>\n"},
  format_function = {"{{content}}<end_of_sentence>\n", tool_format = "minimax1"},
  format_observation = {"<beginning_of_sentence>tool name=tools\n{{content}}<end_of_sentence>\n"
    .. "<beginning_of_sentence>ai name=assistant\n"},
  format_tools = {tool_format = "minimax1"},
  default_system = "You are a helpful assistant.",
  stop_words = {"<end_of_sentence>"},
}
