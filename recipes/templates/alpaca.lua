-- "alpaca": Stanford Alpaca instruction format (for base models).
local T = require "lfl.text.template"
return {
  format_user = {"### Instruction:\n{{content}}\n\n### Response:\n"},
  format_assistant = {"{{content}}", T.EOS, "\n\n"},
  default_system = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
  replace_jinja_template = true,
}
