-- "seed_oss": Seed-OSS (ByteDance): seed_coder's turns, <seed:think> thought words; a ReasoningTemplate: an
-- answer without a thought gets an empty one, trained when enable_thinking, else part of the prompt; seed_oss
-- tool format.
local T = require "lfl.text.template"
return {
  format_user = {T.BOS, "user\n{{content}}", T.EOS, T.BOS, "assistant\n"},
  format_system = {T.BOS, "system\n{{content}}", T.EOS},
  format_function = {T.BOS, "\n{{content}}", T.EOS, tool_format = "seed_oss"},
  format_tools = {tool_format = "seed_oss"},
  thought_words = {"<seed:think>", "</seed:think>"},
  template_class = "reasoning",
}
