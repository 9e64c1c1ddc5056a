-- "llava_next_yi": LLaVA-NeXT on Yi: ChatML; multimodal in LlamaFactory (llava_next plugin): lfl encodes the
-- text and refuses images, videos and audios.
return {
  format_user = {"<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  stop_words = {"<|im_end|>"},
  mm_plugin = {name = "llava_next", image_token = "<image>"},
}
