-- "phi_small": Phi-3-small: phi's strings; its prefix is LlamaFactory's set slot {"<|endoftext|>"}, which
-- names neither BOS nor EOS and so emits nothing (kept for parity).
local T = require "lfl.text.template"
return {
  format_user = {"<|user|>\n{{content}}<|end|>\n<|assistant|>\n"},
  format_assistant = {"{{content}}<|end|>\n"},
  format_system = {"<|system|>\n{{content}}<|end|>\n"},
  format_prefix = {T.special("<|endoftext|>")},
  stop_words = {"<|end|>"},
  replace_eos = true,
}
