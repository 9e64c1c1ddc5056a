-- "default": Human/Assistant turns separated by EOS (for base models).
local T = require "lfl.text.template"
return {
  format_user = {"Human: {{content}}", T.EOS, "\nAssistant:"},
  format_assistant = {"{{content}}", T.EOS, "\n"},
  format_system = {"System: {{content}}", T.EOS, "\n"},
  replace_jinja_template = true,
}
