-- "hy3": Hunyuan 3 (Tencent): <｜hy_User｜> / <｜hy_Assistant｜> turns, <think></think> thought words; a
-- ReasoningTemplate: an answer without a thought gets an empty one, trained when enable_thinking, else part
-- of the prompt.
local T = require "lfl.text.template"
return {
  format_user = {"<｜hy_User｜>{{content}}<｜hy_Assistant｜>"},
  format_assistant = {"{{content}}<｜hy_eos｜>"},
  format_prefix = {T.BOS},
  stop_words = {"<｜hy_eos｜>"},
  thought_words = {"<think>", "</think>"},
  replace_eos = true,
  template_class = "reasoning",
}
