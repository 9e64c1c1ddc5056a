-- "phi4_mini": Phi-4-mini: <|user|> / <|assistant|> turns, tools in <|tool|>.
return {
  format_user = {"<|user|>{{content}}<|end|><|assistant|>"},
  format_assistant = {"{{content}}<|end|>"},
  format_system = {"<|system|>{{content}}<|end|>"},
  format_tools = {"<|tool|>{{content}}<|/tool|>"},
  stop_words = {"<|end|>"},
  replace_eos = true,
}
