-- "seed_coder": Seed-Coder (ByteDance): role turns between BOS and EOS.
local T = require "lfl.text.template"
return {
  format_user = {T.BOS, "user\n{{content}}", T.EOS, T.BOS, "assistant\n"},
  format_system = {T.BOS, "system\n{{content}}", T.EOS},
  default_system = "You are an AI programming assistant, utilizing the Seed-Coder model, developed "
    .. "by ByteDance Seed, and you only answer questions related to computer science. "
    .. "For politically sensitive questions, security and privacy issues, and other "
    .. "non-computer science questions, you will refuse to answer.\n\n",
}
