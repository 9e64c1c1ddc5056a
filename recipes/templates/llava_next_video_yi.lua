-- "llava_next_video_yi": LLaVA-NeXT-Video on Yi: ChatML; multimodal in LlamaFactory (llava_next_video
-- plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  stop_words = {"<|im_end|>"},
  mm_plugin = {name = "llava_next_video", image_token = "<image>", video_token = "<video>"},
}
