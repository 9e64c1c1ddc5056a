-- "youtu": Youtu-LLM (Tencent): <|User|> / <|Assistant|> turns; a ReasoningTemplate: an answer without a
-- thought gets an empty one, trained when enable_thinking, else part of the prompt.
local T = require "lfl.text.template"
return {
  format_user = {"<|User|>{{content}}<|Assistant|>"},
  format_assistant = {"{{content}}<|end_of_text|>"},
  format_function = {"{{content}}"},
  format_observation = {"<tool_response>\n{{content}}\n</tool_response><|Assistant|>"},
  format_prefix = {T.BOS},
  stop_words = {"<|end_of_text|>"},
  replace_eos = true,
  template_class = "reasoning",
}
