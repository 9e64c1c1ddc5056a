-- "sailor": Sailor (Sea AI Lab): ChatML with question / answer roles.
return {
  format_user = {"<|im_start|>question\n{{content}}<|im_end|>\n<|im_start|>answer\n"},
  format_assistant = {"{{content}}<|im_end|>\n"},
  format_system = {"<|im_start|>system\n{{content}}<|im_end|>\n"},
  default_system = "You are an AI assistant named Sailor created by Sea AI Lab. Your answer should "
    .. "be friendly, unbiased, faithful, informative and detailed.",
  stop_words = {"<|im_end|>"},
}
