-- "glm_ocr": GLM-OCR: glm4's turns; efficient_eos; glm4 tool format; multimodal in LlamaFactory (glm4v
-- plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|user|>\n{{content}}<|assistant|>"},
  format_assistant = {"\n{{content}}"},
  format_system = {"<|system|>\n{{content}}"},
  format_function = {"{{content}}", tool_format = "glm4"},
  format_observation = {"<|observation|>\n{{content}}<|assistant|>"},
  format_tools = {tool_format = "glm4"},
  format_prefix = {"[gMASK]<sop>"},
  stop_words = {"<|user|>", "<|observation|>"},
  efficient_eos = true,
  mm_plugin = {
    name = "glm4v",
    image_token = "<|image|>",
    video_token = "<|video|>",
    vision_bos_token = "<|vision_start|>",
    vision_eos_token = "<|vision_end|>",
  },
}
