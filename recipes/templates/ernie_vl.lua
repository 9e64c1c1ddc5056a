-- "ernie_vl": ERNIE 4.5 VL: User: / Assistant: turns; a ReasoningTemplate: an answer without a thought gets
-- an empty one, trained when enable_thinking, else part of the prompt; multimodal in LlamaFactory (ernie_vl
-- plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"User: {{content}}"},
  format_assistant = {"\nAssistant: {{content}}<|end_of_sentence|>"},
  format_system = {"{{content}}\n"},
  stop_words = {"<|end_of_sentence|>"},
  replace_eos = true,
  replace_jinja_template = true,
  mm_plugin = {
    name = "ernie_vl",
    image_token = "<|IMAGE_PLACEHOLDER|>",
    video_token = "<|VIDEO_PLACEHOLDER|>",
  },
  template_class = "reasoning",
}
