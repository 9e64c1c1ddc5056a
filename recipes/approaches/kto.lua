-- Kahneman-Tversky optimisation (LlamaFactory's stage kto, CustomKTOTrainer
-- with TRL's kto_loss): unpaired examples tagged desirable or not (the
-- dataset's kto_tag column), each with a mismatched KL pair (its prompt with
-- the previous example's answer, FeedbackDatasetProcessor), both packed in one
-- forward; reference log-probs from the adapter disabled, ref_model or the
-- frozen initial weights. pref_beta, kto_chosen_weight, kto_rejected_weight,
-- pref_ftx (SFT on the desirable answers). Logs TRL's rewards/chosen,
-- rewards/rejected, rewards/margins, logps/*, logits/*, kl. The formula is
-- in stdlib/lfl/train/pref.lua (kto_formula).
local pw = require("lfl.data.pairwise")
local pref = require("lfl.train.pref")

local M = {name = "kto", kind = "kto", metrics = nil,
           needs = {reference_model = true, reward_model = false, value_head = false, generation = false},
           plot = {"loss", "rewards/chosen", "eval_loss"}}

function M.check_args(a) pref.check_kto_args(a) end

M.prepare = pw.prepare_kto
M.collate = pw.collate_kto_packed

-- CustomKTOTrainer, like the DPO one, disables dropout in the policy
M.setup = require("lfl.recipes").bundled("approaches", "dpo").setup

function M.loss(model, batch, state) return pref.kto_step(model, batch, state) end

return M
