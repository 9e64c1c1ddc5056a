-- "openchat": OpenChat 3.5: GPT4 Correct User / Assistant turns.
local T = require "lfl.text.template"
return {
  format_user = {"GPT4 Correct User: {{content}}", T.EOS, "GPT4 Correct Assistant:"},
  format_prefix = {T.BOS},
}
