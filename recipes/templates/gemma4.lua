-- "gemma4": Gemma 4: <|turn> turns, <|think|> in the system turn; a ReasoningTemplate: an answer without a
-- thought gets an empty one, trained when enable_thinking, else part of the prompt; gemma4 tool format;
-- multimodal in LlamaFactory (gemma4 plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|turn>user\n{{content}}<turn|>\n<|turn>model\n"},
  format_assistant = {"{{content}}<turn|>\n"},
  format_system = {"<|turn>system\n<|think|>{{content}}<turn|>\n"},
  format_function = {"<|tool>{{content}}<tool|>", tool_format = "gemma4"},
  format_observation = {"<|turn>tool\n{{content}}<turn|>\n<|turn>model\n"},
  format_tools = {tool_format = "gemma4"},
  format_prefix = {T.BOS},
  default_system = "You are a helpful assistant.",
  stop_words = {"<turn|>"},
  thought_words = {"<|channel>thought\n", "<channel|>"},
  replace_eos = true,
  mm_plugin = {name = "gemma4", image_token = "<|image|>", video_token = "<|video|>"},
  template_class = "reasoning",
}
