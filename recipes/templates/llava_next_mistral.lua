-- "llava_next_mistral": LLaVA-NeXT on Mistral: mistral's strings; the system prompt is fused into the first
-- user turn (Llama2Template); mistral tool format; multimodal in LlamaFactory (llava_next plugin): lfl
-- encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"[INST] {{content}}[/INST]"},
  format_assistant = {" {{content}}", T.EOS},
  format_system = {"{{content}}\n\n"},
  format_function = {"[TOOL_CALLS] {{content}}", T.EOS, tool_format = "mistral"},
  format_observation = {"[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]"},
  format_tools = {tool_format = "mistral"},
  format_prefix = {T.BOS},
  mm_plugin = {name = "llava_next", image_token = "<image>"},
  template_class = "llama2",
}
