-- "glm4_5v": GLM-4.5V: glm4's turns; a ReasoningTemplate: an answer without a thought gets an empty one,
-- trained when enable_thinking, else part of the prompt; efficient_eos; glm4_moe tool format; multimodal in
-- LlamaFactory (glm4v plugin): lfl encodes the text and refuses images, videos and audios.
return {
  format_user = {"<|user|>\n{{content}}<|assistant|>"},
  format_assistant = {"\n{{content}}"},
  format_system = {"<|system|>\n{{content}}"},
  format_function = {"{{content}}", tool_format = "glm4_moe"},
  format_observation = {"<|observation|>\n{{content}}<|assistant|>"},
  format_tools = {tool_format = "glm4_moe"},
  format_prefix = {"[gMASK]<sop>"},
  stop_words = {"<|user|>", "<|observation|>", "</answer>"},
  efficient_eos = true,
  mm_plugin = {
    name = "glm4v",
    image_token = "<|image|>",
    video_token = "<|video|>",
    vision_bos_token = "<|vision_start|>",
    vision_eos_token = "<|vision_end|>",
  },
  template_class = "reasoning",
}
