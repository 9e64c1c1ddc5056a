-- "dots_ocr": dots.ocr (rednote): <|user|> / <|assistant|> turns; efficient_eos; multimodal in LlamaFactory
-- (qwen2_vl plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|user|>{{content}}<|endofuser|><|assistant|>"},
  format_assistant = {"{{content}}<|endofassistant|>"},
  format_system = {"<|system|>{{content}}<|endofsystem|>\n"},
  stop_words = {"<|endofassistant|>"},
  efficient_eos = true,
  mm_plugin = {
    name = "qwen2_vl",
    image_token = "<|imgpad|>",
    video_token = "<|vidpad|>",
    vision_bos_token = "<|img|>",
    vision_eos_token = "<|endofimg|>",
  },
}
