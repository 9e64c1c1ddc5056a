-- SimPO (simple preference optimisation; LlamaFactory: stage dpo with
-- pref_loss simpo): reference-free, per-token averaged log-probs a, b,
-- loss = -logsigmoid(pref_beta * (a - b) - simpo_gamma). The dpo approach
-- with its loss fixed.
local M = require("lfl.recipes").bundled("approaches", "dpo") -- a copy
M.name = "simpo"
M.needs = {reference_model = false, reward_model = false, value_head = false, generation = false}

function M.check_args(a)
  if a.pref_loss ~= "sigmoid" and a.pref_loss ~= "simpo" then
    error(string.format("arguments: stage simpo trains with pref_loss simpo (got pref_loss %s; use stage dpo for it)",
      tostring(a.pref_loss)), 0)
  end
  a.pref_loss = "simpo"
  require("lfl.train.pref").check_args(a, "simpo")
end

return M
