-- "hunyuan": Hunyuan-Large (Tencent): <|extra_0|> turn ends.
return {
  format_user = {"{{content}}<|extra_0|>"},
  format_assistant = {"{{content}}<|eos|>"},
  format_system = {"{{content}}<|extra_4|>"},
  format_prefix = {"<|startoftext|>"},
  stop_words = {"<|eos|>"},
}
