-- "kimi_vl": Kimi-VL (Moonshot AI): <|im_user|> turns, ◁think▷ thought words; a ReasoningTemplate: an answer
-- without a thought gets an empty one, trained when enable_thinking, else part of the prompt; multimodal in
-- LlamaFactory (kimi_vl plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|im_user|>user<|im_middle|>{{content}}<|im_end|><|im_assistant|>assistant<|im_middle|>"},
  format_assistant = {"{{content}}<|im_end|>"},
  format_system = {"<|im_system|>system<|im_middle|>{{content}}<|im_end|>"},
  default_system = "You are a helpful assistant",
  stop_words = {"<|im_end|>"},
  thought_words = {"◁think▷", "◁/think▷"},
  mm_plugin = {name = "kimi_vl", image_token = "<|media_pad|>"},
  template_class = "reasoning",
}
