-- "minicpm_v_4_6": MiniCPM-V 4.6: ChatML; multimodal in LlamaFactory (minicpm_v_4_6 plugin): lfl encodes the
-- text and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  default_system = "You are a helpful assistant.",
  stop_words = {"<|im_end|>"},
  mm_plugin = {name = "minicpm_v_4_6", image_token = "<image>", video_token = "<video>"},
}
