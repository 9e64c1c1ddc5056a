-- "deepseek3": DeepSeek-V3 (full-width bars U+FF5C in the role tokens).
local T = require "lfl.text.template"
return {
  format_user = {"<｜User｜>{{content}}<｜Assistant｜>"},
  format_prefix = {T.BOS},
}
