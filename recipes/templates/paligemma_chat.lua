-- "paligemma_chat": PaliGemma (chat): gemma's turns; the system prompt is fused into the first user turn
-- (Llama2Template); multimodal in LlamaFactory (paligemma plugin): lfl encodes the text and refuses images,
-- videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_assistant = {"{{content}}<end_of_turn>\n"},
  format_observation = {"<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_prefix = {T.BOS},
  stop_words = {"<end_of_turn>"},
  replace_eos = true,
  mm_plugin = {name = "paligemma", image_token = "<image>"},
  template_class = "llama2",
}
