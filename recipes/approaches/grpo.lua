-- GRPO (group relative policy optimisation; beyond LlamaFactory, TRL 0.24's
-- GRPOTrainer formulas): each prompt's num_generations completions sampled
-- with temperature by lfl's batched generator, scored by reward_funcs (Lua
-- functions (prompt, completion, example) -> number, or names of
-- recipes/rewards/ modules: exact_answer, format, length), advantages
-- normalised per group, the clipped objective (grpo_epsilon) with grpo_beta *
-- KL to the model with the adapter disabled, aggregated as grpo_loss_type
-- (TRL's default dapo). Logs reward, reward_std, rewards/<name>/mean|std, kl,
-- completions/mean_length, clip_ratio. Data: a prompt (alpaca instruction /
-- input or the sharegpt user turn) and its reference answer (output), which
-- the reward functions see as example.answer. The formulas are in
-- stdlib/lfl/train/grpo.lua.
local lfl = lfl
local grpo = require("lfl.train.grpo")
local preprocess = require("lfl.data.preprocess")
local collate = require("lfl.data.collate")

local M = {name = "grpo", kind = "unsupervised", metrics = nil,
           needs = {reference_model = false, reward_model = false, value_head = false, generation = true},
           plot = {"loss", "reward"}}

function M.check_args(a) grpo.check_args(a) end

-- canonical examples -> {prompt_ids (with the assistant opener), query_ids
-- (the last user turn), answer_ids (the reference answer)}
function M.prepare(examples, ctx)
  local tok = ctx.tokenizer
  local tpl = preprocess.data_template(ctx.template, ctx.args)
  local out, dropped = {}, 0
  for _, ex in ipairs(examples) do
    local ids = collate.rollout_prompt(ex, tok, tpl, ctx.args.cutoff_len)
    if not ids then
      dropped = dropped + 1
    else
      local ans = ex.response[1] and ex.response[1].content or ""
      local q = tok:encode(ex.prompt[#ex.prompt].content, {add_special_tokens = false})
      local a = tok:encode(ans, {add_special_tokens = false})
      if #a == 0 then a = {tok.eos_id or 0} end
      if #q == 0 then q = {tok.eos_id or 0} end
      out[#out + 1] = {prompt_ids = ids, query_ids = q, answer_ids = a}
    end
  end
  return out, dropped
end

M.collate = collate.prompt_rows

function M.loss(model, batch, state) return grpo.step(model, batch, state) end

return M
