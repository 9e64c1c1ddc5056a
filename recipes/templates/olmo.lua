-- "olmo": OLMo 1 / 2: <|user|> / <|assistant|> turns after EOS.
local T = require "lfl.text.template"
return {
  format_user = {"<|user|>\n{{content}}<|assistant|>\n"},
  format_prefix = {T.EOS},
}
