-- "vicuna": Vicuna v1.1 USER/ASSISTANT format.
return {
  format_user = {"USER: {{content}} ASSISTANT:"},
  default_system = "A chat between a curious user and an artificial intelligence assistant. "
    .. "The assistant gives helpful, detailed, and polite answers to the user's questions.",
  replace_jinja_template = true,
}
