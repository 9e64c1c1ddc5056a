-- "deepseek": DeepSeek LLM / V2 chat "User: ... Assistant:" format.
local T = require "lfl.text.template"
return {
  format_user = {"User: {{content}}\n\nAssistant:"},
  format_system = {"{{content}}\n\n"},
  format_prefix = {T.BOS},
}
