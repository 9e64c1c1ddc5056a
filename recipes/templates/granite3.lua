-- "granite3": Granite 3.x (IBM): <|start_of_role|> turns.
return {
  format_user = {"<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n"
    .. "<|start_of_role|>assistant<|end_of_role|>"},
  format_assistant = {"{{content}}<|end_of_text|>\n"},
  format_system = {"<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n"},
}
