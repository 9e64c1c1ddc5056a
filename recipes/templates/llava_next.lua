-- "llava_next": LLaVA-NeXT (Vicuna base): vicuna's strings; multimodal in LlamaFactory (llava_next plugin):
-- lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"USER: {{content}} ASSISTANT:"},
  default_system = "A chat between a curious user and an artificial intelligence assistant. The "
    .. "assistant gives helpful, detailed, and polite answers to the user's questions.",
  mm_plugin = {name = "llava_next", image_token = "<image>"},
}
