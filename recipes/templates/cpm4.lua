-- "cpm4": MiniCPM4: ChatML after BOS.
local T = require "lfl.text.template"
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_observation = {"<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_prefix = {T.BOS},
  stop_words = {"<|im_end|>"},
}
