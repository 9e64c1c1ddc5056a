-- "qwen2_audio": Qwen2-Audio: ChatML; multimodal in LlamaFactory (qwen2_audio plugin): lfl encodes the text
-- and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  default_system = "You are a helpful assistant.",
  stop_words = {"<|im_end|>"},
  replace_eos = true,
  mm_plugin = {name = "qwen2_audio", audio_token = "<|AUDIO|>"},
}
