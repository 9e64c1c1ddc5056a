-- "lfm2_vl": LFM2-VL (Liquid AI): lfm2's strings; lfm2 tool format; multimodal in LlamaFactory (lfm2_vl
-- plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_function = {"{{content}}<|im_end|>\n", tool_format = "lfm2"},
  format_observation = {"<|im_start|>tool\n"
    .. "<|tool_response_start|>{{content}}<|tool_response_end|><|im_end|>\n"
    .. "<|im_start|>assistant\n"},
  format_tools = {tool_format = "lfm2"},
  default_system = "You are a helpful multimodal assistant by Liquid AI.",
  stop_words = {"<|im_end|>"},
  tool_call_words = {"<|tool_call_start|>", "<|tool_call_end|>"},
  replace_eos = true,
  mm_plugin = {name = "lfm2_vl", image_token = "<image>"},
}
