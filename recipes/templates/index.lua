-- "index": Index-1.9B (bilibili): reserved_0 / reserved_1 turns; efficient_eos.
return {
  format_user = {"reserved_0{{content}}reserved_1"},
  format_system = {"<unk>{{content}}"},
  efficient_eos = true,
}
