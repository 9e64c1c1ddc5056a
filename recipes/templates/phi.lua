-- "phi": Phi-3 / Phi-3.5 <|user|> ... <|end|> format.
return {
  format_user = {"<|user|>\n{{content}}<|end|>\n<|assistant|>\n"},
  format_assistant = {"{{content}}<|end|>\n"},
  format_system = {"<|system|>\n{{content}}<|end|>\n"},
  stop_words = {"<|end|>"},
  replace_eos = true,
}
