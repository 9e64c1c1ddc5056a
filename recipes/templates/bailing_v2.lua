-- "bailing_v2": Ling / Ring 2.0 (inclusionAI), turns closed by <|role_end|>; efficient_eos; ling tool format.
return {
  format_user = {"<role>HUMAN</role>{{content}}<|role_end|><role>ASSISTANT</role>"},
  format_assistant = {"{{content}}<|role_end|>"},
  format_system = {"<role>SYSTEM</role>{{content}}<|role_end|>"},
  format_function = {"{{content}}<|role_end|>", tool_format = "ling"},
  format_observation = {"<role>OBSERVATION</role>\n<tool_response>\n{{content}}\n"
    .. "</tool_response><|role_end|><role>ASSISTANT</role>"},
  format_tools = {tool_format = "ling"},
  stop_words = {"<|endoftext|>"},
  efficient_eos = true,
}
