-- "mllama": Llama 3.2 Vision: llama3's strings; llama3 tool format; multimodal in LlamaFactory (mllama
-- plugin): lfl encodes the text and refuses images, videos and audios.
local T = require "lfl.text.template"
return {
  format_user = {"<|start_header_id|>user<|end_header_id|>\n\n"
    .. "{{content}}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
  format_assistant = {"{{content}}<|eot_id|>"},
  format_system = {"<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>"},
  format_function = {"{{content}}<|eot_id|>", tool_format = "llama3"},
  format_observation = {"<|start_header_id|>ipython<|end_header_id|>\n\n"
    .. "{{content}}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
  format_tools = {tool_format = "llama3"},
  format_prefix = {T.BOS},
  stop_words = {"<|eot_id|>", "<|eom_id|>"},
  replace_eos = true,
  mm_plugin = {name = "mllama", image_token = "<|image|>"},
}
