-- "llava": LLaVA 1.5: vicuna's strings; multimodal in LlamaFactory (llava plugin): lfl encodes the text and
-- refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"USER: {{content}} ASSISTANT:"},
  default_system = "A chat between a curious user and an artificial intelligence assistant. The "
    .. "assistant gives helpful, detailed, and polite answers to the user's questions.",
  mm_plugin = {name = "llava", image_token = "<image>"},
}
