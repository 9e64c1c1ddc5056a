-- "exaone": EXAONE 3.x (LG AI): [|user|] / [|assistant|] turns.
local T = require "lfl.text.template"
return {
  format_user = {"[|user|]{{content}}\n[|assistant|]"},
  format_assistant = {"{{content}}", T.EOS, "\n"},
  format_system = {"[|system|]{{content}}[|endofturn|]\n"},
}
