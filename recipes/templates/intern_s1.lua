-- "intern_s1": Intern-S1: ChatML after BOS; multimodal in LlamaFactory (intern_vl plugin): lfl encodes the
-- text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_prefix = {T.BOS},
  stop_words = {"<|im_end|>"},
  mm_plugin = {name = "intern_vl", image_token = "<image>", video_token = "<video>"},
}
