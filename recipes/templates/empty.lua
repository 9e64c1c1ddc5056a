-- "empty": raw text, nothing added (LlamaFactory's fallback when no template
-- is given and the tokenizer has no chat template).
return {
  format_assistant = {"{{content}}"},
}
