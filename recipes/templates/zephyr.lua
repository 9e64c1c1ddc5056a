-- "zephyr": Zephyr <|user|> turns closed by EOS.
local T = require "lfl.text.template"
return {
  format_user = {"<|user|>\n{{content}}", T.EOS, "<|assistant|>\n"},
  format_system = {"<|system|>\n{{content}}", T.EOS},
  default_system = "You are Zephyr, a helpful assistant.",
}
