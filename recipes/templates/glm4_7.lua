-- "glm4_7": GLM-4.7: glm4's turns, <think></think> thought words; a Glm47ReasoningTemplate: an answer without
-- a thought gets the closing tag alone, trained when enable_thinking, else part of the prompt; efficient_eos;
-- glm4_moe tool format.
return {
  format_user = {"<|user|>\n{{content}}<|assistant|>"},
  format_assistant = {"\n{{content}}"},
  format_system = {"<|system|>\n{{content}}"},
  format_function = {"{{content}}", tool_format = "glm4_moe"},
  format_observation = {"<|observation|>\n{{content}}<|assistant|>"},
  format_tools = {tool_format = "glm4_moe"},
  format_prefix = {"[gMASK]<sop>"},
  stop_words = {"<|user|>", "<|observation|>"},
  thought_words = {"<think>", "</think>"},
  efficient_eos = true,
  template_class = "glm47_reasoning",
}
