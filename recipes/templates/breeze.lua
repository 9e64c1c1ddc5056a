-- "breeze": Breeze (MediaTek Research) [INST] turns; efficient_eos.
local T = require "lfl.text.template"
return {
  format_user = {"[INST] {{content}} [/INST] "},
  format_prefix = {T.BOS},
  efficient_eos = true,
}
