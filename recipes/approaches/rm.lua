-- Reward modelling (LlamaFactory's stage rm, PairwiseTrainer): a value head
-- (Linear(hidden, 1), TRL's v_head) scores each sequence at its last token;
-- chosen and rejected of each pair go through one packed forward; loss =
-- -mean(logsigmoid(r_chosen - r_rejected)), accuracy = mean(r_chosen >
-- r_rejected). The trainer provides the head (needs.value_head) and saves it
-- as value_head.safetensors next to the adapter.
local pw = require("lfl.data.pairwise")
local pref = require("lfl.train.pref")
local vh = require("lfl.train.value_head")

local M = {name = "rm", kind = "pairwise", metrics = nil,
           needs = {reference_model = false, reward_model = false, value_head = true, generation = false},
           -- LlamaFactory's rm workflow plots these keys
           plot = {"loss", "eval_loss", "eval_accuracy"}}

M.prepare = pw.prepare_pairwise
M.collate = pw.collate_pairwise_packed
M.c_collate = function() return "pairwise_packed" end

function M.loss(model, batch, state)
  local head = state.value_head
  if not head then error("rm: the run has no value head (the trainer provides it for needs.value_head)", 0) end
  local scores = vh.scores(model, head, batch, {train = true, gradient_checkpointing = state.gradient_checkpointing,
    checkpoint_policy = state.checkpoint_policy})
  return pref.rm_loss(scores, batch.n)
end

return M
