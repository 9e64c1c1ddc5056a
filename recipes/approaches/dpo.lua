-- Direct preference optimisation (LlamaFactory's stage dpo, CustomDPOTrainer):
-- prompt + chosen and prompt + rejected of each pair in one packed forward,
-- pref_loss sigmoid (dpo_label_smoothing), hinge, ipo, kto_pair against the
-- reference's log-probs (the adapter disabled, ref_model, or the frozen
-- initial weights), or the reference-free orpo and simpo; pref_beta,
-- pref_ftx (the SFT term on chosen), simpo_gamma. Logs TRL's rewards/*,
-- logps/*, logits/* (and ORPO's sft_loss, odds_ratio_loss). The formulas
-- are in stdlib/lfl/train/pref.lua.
local pw = require("lfl.data.pairwise")
local pref = require("lfl.train.pref")

local M = {name = "dpo", kind = "pairwise", metrics = nil,
           needs = {reference_model = pref.uses_reference, reward_model = false, value_head = false, generation = false},
           -- LlamaFactory's dpo workflow plots these keys
           plot = {"loss", "rewards/accuracies", "eval_loss"}}

function M.check_args(a) pref.check_args(a, M.name) end

M.prepare = pw.prepare_pairwise
M.collate = pw.collate_pairwise_packed
M.c_collate = function() return "pairwise_packed" end -- the same, in C, from a Dataset

-- CustomDPOTrainer disables dropout in the policy (disable_dropout_in_model),
-- LoRA's included; the saved adapter_config.json keeps the recipe's lora_dropout
function M.setup(t)
  local ad = t.model.lora
  if ad and ad.dropout > 0 then
    ad.config_dropout = ad.dropout
    ad.dropout = 0
    print(string.format("[lfl] %s: dropout is off in the policy, as in LlamaFactory's DPO trainer (lora_dropout %g "
      .. "is kept in adapter_config.json only)", t.args.stage, ad.config_dropout))
  end
end

function M.loss(model, batch, state) return pref.step(model, batch, state) end

return M
