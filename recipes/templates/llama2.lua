-- "llama2": Llama-2-chat [INST] format; the system prompt is fused into the
-- first user turn inside <<SYS>> (Llama2Template).
local T = require "lfl.text.template"
return {
  format_user = {T.BOS, "[INST] {{content}} [/INST]"},
  format_system = {"<<SYS>>\n{{content}}\n<</SYS>>\n\n"},
  template_class = "llama2",
}
