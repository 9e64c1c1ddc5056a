-- "gpt_oss": gpt-oss (harmony format): the analysis channel is the thought; a ReasoningTemplate: an answer
-- without a thought gets an empty one, trained when enable_thinking, else part of the prompt; efficient_eos.
return {
  format_user = {"<|start|>user<|message|>{{content}}<|end|><|start|>assistant"},
  format_system = {"<|start|>system<|message|>{{content}}<|end|>"},
  default_system = "You are ChatGPT, a large language model trained by OpenAI.",
  thought_words = {"<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>"},
  efficient_eos = true,
  template_class = "reasoning",
}
