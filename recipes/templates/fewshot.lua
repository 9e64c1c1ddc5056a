-- "fewshot": few-shot prompts (the MMLU-style evaluator): answers end with a blank line; efficient_eos.
return {
  format_assistant = {"{{content}}\n\n"},
  efficient_eos = true,
  replace_jinja_template = true,
}
