-- "solar": SOLAR (Upstage): ### User / ### Assistant; efficient_eos.
return {
  format_user = {"### User:\n{{content}}\n\n### Assistant:\n"},
  format_system = {"### System:\n{{content}}\n\n"},
  efficient_eos = true,
}
