-- "mistral_small": Mistral Small 3.1+: [SYSTEM_PROMPT] and [INST] without spaces; mistral tool format;
-- multimodal in LlamaFactory (pixtral plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"[INST]{{content}}[/INST]"},
  format_system = {"[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]"},
  format_function = {"[TOOL_CALLS]{{content}}", T.EOS, tool_format = "mistral"},
  format_observation = {"[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]"},
  format_tools = {tool_format = "mistral"},
  format_prefix = {T.BOS},
  mm_plugin = {name = "pixtral", image_token = "[IMG]"},
}
