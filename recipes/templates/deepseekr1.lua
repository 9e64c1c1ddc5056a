-- "deepseekr1": DeepSeek-R1 / distills: deepseek3's strings as a ReasoningTemplate.
local T = require "lfl.text.template"
return {
  format_user = {"<｜User｜>{{content}}<｜Assistant｜>"},
  format_prefix = {T.BOS},
  template_class = "reasoning",
}
