-- "intern_vl": InternVL 2.5 / 3: ChatML after BOS with a Chinese default system; multimodal in LlamaFactory
-- (intern_vl plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_prefix = {T.BOS},
  default_system = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
  stop_words = {"<|im_end|>"},
  mm_plugin = {name = "intern_vl", image_token = "<image>", video_token = "<video>"},
}
