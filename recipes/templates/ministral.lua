-- "ministral": mistral without the spaces after [INST] / [TOOL_CALLS].
local T = require "lfl.text.template"
return {
  format_user = {"[INST]{{content}}[/INST]"},
  format_system = {"{{content}}\n\n"},
  format_function = {"[TOOL_CALLS]{{content}}", T.EOS, tool_format = "mistral"},
  format_observation = {'[TOOL_RESULTS]{"content": {{content}}}[/TOOL_RESULTS]'},
  format_tools = {tool_format = "mistral"},
  format_prefix = {T.BOS},
  template_class = "llama2",
}
