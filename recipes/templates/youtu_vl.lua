-- "youtu_vl": Youtu-VL (Tencent): <|begin_of_text|> role turns; multimodal in LlamaFactory (youtu_vl plugin):
-- lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|begin_of_text|>user\n{{content}}<|end_of_text|>\n<|begin_of_text|>assistant\n"},
  format_assistant = {"{{content}}<|end_of_text|>\n"},
  format_system = {"<|begin_of_text|>system\n{{content}}<|end_of_text|>\n"},
  default_system = "You are a helpful assistant.",
  stop_words = {"<|end_of_text|>"},
  mm_plugin = {
    name = "youtu_vl",
    image_token = "<|image_pad|>",
    video_token = "<|video_pad|>",
    vision_bos_token = "<|vision_start|>",
    vision_eos_token = "<|vision_end|>",
  },
}
