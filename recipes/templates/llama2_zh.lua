-- "llama2_zh": llama2 with a bilingual default system prompt.
local T = require "lfl.text.template"
return {
  format_user = {T.BOS, "[INST] {{content}} [/INST]"},
  format_system = {"<<SYS>>\n{{content}}\n<</SYS>>\n\n"},
  default_system = "You are a helpful assistant. 你是一个乐于助人的助手。",
  template_class = "llama2",
}
