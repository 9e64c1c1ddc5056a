-- ORPO (odds-ratio preference optimisation; LlamaFactory: stage dpo with
-- pref_loss orpo): reference-free, per-token averaged log-probs a, b of chosen
-- and rejected, loss = -a + pref_beta * -logsigmoid(log_odds), log_odds =
-- (a - b) - (log(1 - e^a) - log(1 - e^b)). The dpo approach with its loss fixed.
local M = require("lfl.recipes").bundled("approaches", "dpo") -- a copy
M.name = "orpo"
M.needs = {reference_model = false, reward_model = false, value_head = false, generation = false}

-- the stage names the loss: pref_loss may be left at its default or say orpo
function M.check_args(a)
  if a.pref_loss ~= "sigmoid" and a.pref_loss ~= "orpo" then
    error(string.format("arguments: stage orpo trains with pref_loss orpo (got pref_loss %s; use stage dpo for it)",
      tostring(a.pref_loss)), 0)
  end
  a.pref_loss = "orpo"
  require("lfl.train.pref").check_args(a, "orpo")
end

return M
