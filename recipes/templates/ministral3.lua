-- "ministral3": Ministral 3 (Mistral tokenizer v3 tekken) with its [IMG] image token; the system prompt is
-- fused into the first user turn (Llama2Template); mistral tool format; multimodal in LlamaFactory (pixtral
-- plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"[INST]{{content}}[/INST]"},
  format_system = {"{{content}}\n\n"},
  format_function = {"[TOOL_CALLS]{{content}}", T.EOS, tool_format = "mistral"},
  format_observation = {"[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]"},
  format_tools = {tool_format = "mistral"},
  format_prefix = {T.BOS},
  mm_plugin = {name = "pixtral", image_token = "[IMG]"},
  template_class = "llama2",
}
