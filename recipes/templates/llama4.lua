-- "llama4": Llama 4: <|header_start|> headers; llama3 tool format; multimodal in LlamaFactory (llama4
-- plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|header_start|>user<|header_end|>\n\n"
    .. "{{content}}<|eot|><|header_start|>assistant<|header_end|>\n\n"},
  format_assistant = {"{{content}}<|eot|>"},
  format_system = {"<|header_start|>system<|header_end|>\n\n{{content}}<|eot|>"},
  format_function = {"{{content}}<|eot|>", tool_format = "llama3"},
  format_observation = {"<|header_start|>ipython<|header_end|>\n\n"
    .. "{{content}}<|eot|><|header_start|>assistant<|header_end|>\n\n"},
  format_tools = {tool_format = "llama3"},
  format_prefix = {T.BOS},
  stop_words = {"<|eot|>", "<|eom|>"},
  replace_eos = true,
  mm_plugin = {name = "llama4", image_token = "<|image|>"},
}
