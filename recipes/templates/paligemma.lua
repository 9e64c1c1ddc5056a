-- "paligemma": PaliGemma (pretrained): the prompt on one line; the system prompt is fused into the first user
-- turn (Llama2Template); multimodal in LlamaFactory (paligemma plugin): lfl encodes the text and refuses
-- images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"{{content}}\n"},
  format_prefix = {T.BOS},
  mm_plugin = {name = "paligemma", image_token = "<image>"},
  template_class = "llama2",
}
