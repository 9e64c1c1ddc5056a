-- PPO (LlamaFactory's stage ppo: CustomPPOTrainer over TRL 0.9.6's
-- PPOTrainer) on one base: the policy is the LoRA adapter with a value head,
-- the reference the base with the adapter disabled, the reward model a second
-- adapter + head trained by stage rm (reward_model_type lora) switched in to
-- score, or a separate model directory (full). Each step draws
-- per_device_train_batch_size * gradient_accumulation_steps * ppo_buffer_size
-- prompts, samples a response to each with the generation arguments
-- (LlamaFactory's defaults: do_sample, temperature 0.95, top_p 0.7, top_k 50),
-- scores prompt + response at its last token, and runs ppo_epochs passes of
-- clipped policy and value losses over mini-batches of
-- per_device_train_batch_size (GAE, adaptive KL toward ppo_target). Logs
-- loss, reward and TRL's ppo/loss/policy, ppo/loss/value, objective/kl,
-- ppo/mean_scores, ... The formulas are in stdlib/lfl/train/ppo.lua.
local ppo = require("lfl.train.ppo")
local preprocess = require("lfl.data.preprocess")
local collate = require("lfl.data.collate")

local M = {name = "ppo", kind = "unsupervised", metrics = nil,
           needs = {reference_model = false, reward_model = true, value_head = true, generation = true},
           plot = {"loss", "reward"}}

function M.check_args(a) ppo.check_args(a) end
M.preflight = ppo.preflight

-- canonical examples -> {prompt_ids} (the conversation up to the assistant opener)
function M.prepare(examples, ctx)
  local tok = ctx.tokenizer
  local tpl = preprocess.data_template(ctx.template, ctx.args)
  local out, dropped = {}, 0
  for _, ex in ipairs(examples) do
    local ids = collate.rollout_prompt(ex, tok, tpl, ctx.args.cutoff_len)
    if ids then out[#out + 1] = {prompt_ids = ids} else dropped = dropped + 1 end
  end
  return out, dropped
end

M.collate = collate.prompt_rows

-- the trainer calls train_step; loss is for a caller that scores a batch without updating
function M.loss() error("ppo: the trainer runs PPO through train_step (rollouts and ppo_epochs updates per step)", 0) end

function M.micro_batches_per_step(a) return a.gradient_accumulation_steps * a.ppo_buffer_size end

function M.setup(t)
  local a = t.args
  t.ppo = {kl = ppo.kl_controller(ppo.CONFIG.init_kl_coef, a.ppo_target, ppo.CONFIG.horizon),
           moments = ppo.running_moments(), steps = 0, reward = t.reward_model}
end

function M.train_step(t, rows, factor)
  local loss, metrics, ntok = ppo.step(t, rows, factor)
  return loss, metrics, ntok, t.ppo.grad_norm
end

return M
