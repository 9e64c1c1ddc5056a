-- "chatglm3": ChatGLM3: role markers emitted by token id; efficient_eos; glm4 tool format.
local T = require "lfl.text.template"
return {
  format_user = {T.token("<|user|>"), "\n", "{{content}}", T.token("<|assistant|>")},
  format_assistant = {"\n", "{{content}}"},
  format_system = {T.token("<|system|>"), "\n", "{{content}}"},
  format_function = {"{{content}}", tool_format = "glm4"},
  format_observation = {T.token("<|observation|>"), "\n", "{{content}}", T.token("<|assistant|>")},
  format_tools = {tool_format = "glm4"},
  format_prefix = {T.token("[gMASK]"), T.token("sop")},
  stop_words = {"<|user|>", "<|observation|>"},
  efficient_eos = true,
}
