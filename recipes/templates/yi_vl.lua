-- "yi_vl": Yi-VL: ### Human / ### Assistant; efficient_eos; multimodal in LlamaFactory (llava plugin): lfl
-- encodes the text and refuses images, videos and audios.
return {
  format_user = {"### Human: {{content}}\n### Assistant:"},
  format_assistant = {"{{content}}\n"},
  default_system = "This is a chat between an inquisitive human and an AI assistant. Assume the "
    .. "role of the AI assistant. Read all the images carefully, and respond to the "
    .. "human's questions with informative, helpful, detailed and polite answers. "
    .. "这是一个好奇的人类和一个人工智能助手之间的对话。假设你扮演这个AI助手的角色。仔细阅读所有的图像，并对人类的问题做出信息丰富、有帮助、详细的和礼貌的回答。\n\n",
  stop_words = {"###"},
  efficient_eos = true,
  mm_plugin = {name = "llava", image_token = "<image>"},
}
