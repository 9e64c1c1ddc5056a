-- "falcon": Falcon (first generation): User: / Falcon: turns; efficient_eos.
return {
  format_user = {"User: {{content}}\nFalcon:"},
  format_assistant = {"{{content}}\n"},
  efficient_eos = true,
}
