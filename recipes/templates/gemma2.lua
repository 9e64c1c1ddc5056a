-- "gemma2": gemma's strings with efficient_eos (EOS appended once at the end
-- of a training sequence) and <eos>, <end_of_turn> as stop words.
local T = require "lfl.text.template"
return {
  format_user = {"<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_assistant = {"{{content}}<end_of_turn>\n"},
  format_system = {"{{content}}\n\n"},
  format_observation = {"<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_prefix = {T.BOS},
  stop_words = {"<eos>", "<end_of_turn>"},
  efficient_eos = true,
  template_class = "llama2",
}
