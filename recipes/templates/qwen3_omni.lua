-- "qwen3_omni": Qwen3-Omni (thinking): qwen3's strings; a ReasoningTemplate: an answer without a thought gets
-- an empty one, trained when enable_thinking, else part of the prompt; qwen tool format; multimodal in
-- LlamaFactory (qwen2_omni plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  format_function = {"{{content}}<|im_end|>\n", tool_format = "qwen"},
  format_observation = {"<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n"
    .. "<|im_start|>assistant\n"},
  format_tools = {tool_format = "qwen"},
  stop_words = {"<|im_end|>"},
  replace_eos = true,
  mm_plugin = {
    name = "qwen2_omni",
    image_token = "<|image_pad|>",
    video_token = "<|video_pad|>",
    audio_token = "<|audio_pad|>",
    vision_bos_token = "<|vision_start|>",
    vision_eos_token = "<|vision_end|>",
    audio_bos_token = "<|audio_start|>",
    audio_eos_token = "<|audio_end|>",
  },
  template_class = "reasoning",
}
