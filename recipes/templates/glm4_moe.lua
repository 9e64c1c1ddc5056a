-- "glm4_moe": GLM-4.5 / 4.6 (MoE): glm4's turns; a ReasoningTemplate: an answer without a thought gets an
-- empty one, trained when enable_thinking, else part of the prompt; efficient_eos; glm4_moe tool format.
return {
  format_user = {"<|user|>\n{{content}}<|assistant|>"},
  format_assistant = {"\n{{content}}"},
  format_system = {"<|system|>\n{{content}}"},
  format_function = {"{{content}}", tool_format = "glm4_moe"},
  format_observation = {"<|observation|>\n{{content}}<|assistant|>"},
  format_tools = {tool_format = "glm4_moe"},
  format_prefix = {"[gMASK]<sop>"},
  stop_words = {"<|user|>", "<|observation|>"},
  efficient_eos = true,
  template_class = "reasoning",
}
