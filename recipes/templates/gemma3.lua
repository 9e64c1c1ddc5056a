-- "gemma3": Gemma 3: gemma's turns; the system prompt is fused into the first user turn (Llama2Template);
-- multimodal in LlamaFactory (gemma3 plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_assistant = {"{{content}}<end_of_turn>\n"},
  format_system = {"{{content}}\n\n"},
  format_observation = {"<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n"},
  format_prefix = {T.BOS},
  stop_words = {"<end_of_turn>"},
  replace_eos = true,
  mm_plugin = {name = "gemma3", image_token = "<image_soft_token>"},
  template_class = "llama2",
}
