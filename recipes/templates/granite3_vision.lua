-- "granite3_vision": Granite 3.x Vision (IBM): <|user|> / <|assistant|> turns; multimodal in LlamaFactory
-- (llava_next plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|user|>\n{{content}}\n<|assistant|>\n"},
  format_system = {"<|system|>\n{{content}}\n"},
  default_system = "A chat between a curious user and an artificial intelligence assistant. The "
    .. "assistant gives helpful, detailed, and polite answers to the user's questions.",
  mm_plugin = {name = "llava_next", image_token = "<image>"},
}
