-- PPO (LlamaFactory's stage ppo: CustomPPOTrainer over TRL <= 0.9.6's
-- PPOTrainer) with one base model: the policy is the LoRA adapter "default"
-- plus the run's value head, the reference is the base with the adapter
-- disabled, and the reward model (reward_model_type lora) is a second adapter
-- "reward" with its own head, switched in to score. reward_model_type full
-- loads a separate model directory; api POSTs the decoded texts to a reward
-- server (LlamaFactory's /v1/score/evaluation, e.g. `lfl serve --stage rm`).
--
-- Sources (trl 0.9.6, trl/trainer/ppo_trainer.py and trl/core.py, and
-- llamafactory/train/ppo/trainer.py):
--   compute_rewards: per-token reward = -kl_coef * (logp - ref_logp), the
--     score added at the last response token (kl_penalty "kl")
--   compute_advantages: GAE with gamma, lam over the response tokens (next
--     value 0 after the last), returns = advantages + values, advantages
--     whitened over every response token of the batch (masked_var unbiased,
--     rsqrt(var + 1e-8)); whiten_rewards whitens the rewards first without
--     shifting their mean
--   loss: vf = 0.5 * mean(max((v - R)^2, (clip(v, v_old +- cliprange_value) - R)^2)),
--     pg = mean(max(-A r, -A clamp(r, 1 +- cliprange))), r = exp(logp - old_logp),
--     loss = pg + vf_coef * vf; a mini-batch whose mean ratio exceeds
--     ratio_threshold (10) contributes nothing
--   AdaptiveKLController.update(current, n): value *= 1 + clip(current /
--     target - 1, -0.2, 0.2) * n / horizon, with current = objective/kl (the
--     batch mean of each response's summed kl) and n = the batch size
--   RunningMoments (use_score_scaling = use_score_norm = ppo_score_norm):
--     scores = (scores - running mean) / (running std + float32 eps)
--   LlamaFactory: batch = per_device_train_batch_size * gradient_accumulation_steps
--     * ppo_buffer_size prompts; ppo_epochs passes over shuffled mini-batches of
--     per_device_train_batch_size, an optimizer step every
--     gradient_accumulation_steps mini-batches; the score is the reward head's
--     value at the last token of prompt + response; logs loss
--     (ppo/loss/total) and reward (the mean raw score).
local lfl = lfl
local decoder = require("lfl.model.decoder")
local vh = require("lfl.train.value_head")
local fmt, exp, sqrt, max, min = string.format, math.exp, math.sqrt, math.max, math.min

local M = {}

-- TRL 0.9.6's PPOConfig defaults that LlamaFactory leaves alone
M.CONFIG = {cliprange = 0.2, cliprange_value = 0.2, vf_coef = 0.1, gamma = 1.0, lam = 0.95, init_kl_coef = 0.2,
            horizon = 10000, ratio_threshold = 10.0}
M.F32_EPS = 1.1920928955078125e-07 -- torch.finfo(torch.float32).eps

-- ---------------------------------------------------------------- formulas
-- A batch is a list of sequences; each holds per-response-token lists.

-- mean and unbiased variance over every token of lists[b]
local function moments(lists)
  local s, n = 0, 0
  for _, l in ipairs(lists) do for _, v in ipairs(l) do s = s + v; n = n + 1 end end
  if n < 2 then error("ppo: whitening needs at least 2 response tokens in the batch (TRL's masked_var)", 0) end
  local m = s / n
  local q = 0
  for _, l in ipairs(lists) do for _, v in ipairs(l) do q = q + (v - m) ^ 2 end end
  return m, q / n * (n / (n - 1))
end

-- TRL's masked_whiten over all tokens: (x - mean) / sqrt(var + 1e-8), + mean again unless shift_mean
function M.whiten(lists, shift_mean)
  local m, var = moments(lists)
  local inv = 1 / sqrt(var + 1e-8)
  local out = {}
  for b, l in ipairs(lists) do
    local o = {}
    for k, v in ipairs(l) do o[k] = (v - m) * inv + (shift_mean == false and m or 0) end
    out[b] = o
  end
  return out
end

-- compute_rewards: kls[b][k] = logp - ref, rewards = -kl_coef * kl with the
-- score added at the last token. Returns rewards, non_score_rewards, kls.
function M.compute_rewards(scores, logps, refs, kl_coef)
  local rewards, nonscore, kls = {}, {}, {}
  for b, lp in ipairs(logps) do
    local r, ns, kl = {}, {}, {}
    for k = 1, #lp do
      kl[k] = lp[k] - refs[b][k]
      ns[k] = -kl_coef * kl[k]
      r[k] = ns[k]
    end
    if #lp == 0 then error(fmt("ppo: response %d has no tokens", b), 0) end
    r[#lp] = r[#lp] + scores[b]
    rewards[b], nonscore[b], kls[b] = r, ns, kl
  end
  return rewards, nonscore, kls
end

-- compute_advantages: GAE per sequence; o = {gamma, lam, whiten_rewards,
-- pad_tail}. Returns advantages (whitened over the batch) and returns.
-- TRL whitens the rewards of the padded batch with shift_mean=False, which
-- leaves mean * (1 - 1/std) at every masked position, and its GAE runs
-- through the padding after each response: o.pad_tail[b] is the number of
-- those positions (the batch's longest prompt + response minus this one's).
function M.advantages(values, rewards, o)
  local gamma, lam = o.gamma or M.CONFIG.gamma, o.lam or M.CONFIG.lam
  local pad = {}
  if o.whiten_rewards then
    local m, var = moments(rewards)
    local c = -m / sqrt(var + 1e-8) + m -- a zero reward whitened
    for b = 1, #rewards do
      local n, tail = o.pad_tail and o.pad_tail[b] or 0, 0
      for _ = 1, n do tail = c + gamma * lam * tail end
      pad[b] = tail
    end
    rewards = M.whiten(rewards, false)
  end
  local adv, ret = {}, {}
  for b, r in ipairs(rewards) do
    local v, T = values[b], #r
    local a, rt, last = {}, {}, pad[b] or 0
    for t = T, 1, -1 do
      local nextv = t < T and v[t + 1] or 0
      local delta = r[t] + gamma * nextv - v[t]
      last = delta + gamma * lam * last
      a[t] = last
    end
    for t = 1, T do rt[t] = a[t] + v[t] end
    adv[b], ret[b] = a, rt
  end
  return M.whiten(adv, true), ret
end

-- The loss of one mini-batch (TRL's PPOTrainer.loss): per sequence lists
-- old (old log-probs), values (old values), logp, vpred, adv, ret; o =
-- {cliprange, cliprange_value, vf_coef, ratio_threshold}. Returns pg_loss,
-- vf_loss (before vf_coef), the gradients of pg_loss + vf_coef * vf_loss with
-- respect to logp and vpred (per sequence lists), and stats {clipfrac,
-- vf_clipfrac, approxkl, policykl, ratio, skipped}.
function M.loss(mb, o)
  local cr = o.cliprange or M.CONFIG.cliprange
  local crv = o.cliprange_value or M.CONFIG.cliprange_value
  local vf_coef = o.vf_coef or M.CONFIG.vf_coef
  local thr = o.ratio_threshold or M.CONFIG.ratio_threshold
  local n = 0
  for _, s in ipairs(mb) do n = n + #s.logp end
  if n == 0 then error("ppo: the mini-batch has no response tokens", 0) end
  local pg, vf, pgc, vfc, ratio_sum, approx, policykl = 0, 0, 0, 0, 0, 0, 0
  local glp, gv = {}, {}
  for b, s in ipairs(mb) do
    local gl, gvp = {}, {}
    for k = 1, #s.logp do
      -- value loss
      local v, vold, R = s.vpred[k], s.values[k], s.ret[k]
      local lo, hi = vold - crv, vold + crv
      local vc = max(min(v, hi), lo)
      local l1, l2 = (v - R) ^ 2, (vc - R) ^ 2
      local dv
      if l2 > l1 then
        vfc = vfc + 1
        vf = vf + l2
        dv = (v > lo and v < hi) and 2 * (vc - R) or 0
      else
        vf = vf + l1
        dv = 2 * (v - R)
      end
      gvp[k] = vf_coef * 0.5 * dv / n
      -- policy loss
      local d = s.logp[k] - s.old[k]
      local r, A = exp(d), s.adv[k]
      local rc = max(min(r, 1 + cr), 1 - cr)
      local p1, p2 = -A * r, -A * rc
      local dl
      if p2 > p1 then
        pgc = pgc + 1
        pg = pg + p2
        dl = (r > 1 - cr and r < 1 + cr) and -A * r or 0
      else
        pg = pg + p1
        dl = -A * r
      end
      gl[k] = dl / n
      ratio_sum = ratio_sum + r
      approx = approx + d * d
      policykl = policykl - d
    end
    glp[b], gv[b] = gl, gvp
  end
  local st = {clipfrac = pgc / n, vf_clipfrac = vfc / n, approxkl = 0.5 * approx / n, policykl = policykl / n,
              ratio = ratio_sum / n}
  pg, vf = pg / n, 0.5 * vf / n
  if st.ratio > thr then
    -- TRL: "exceeds threshold ... Skipping batch": the losses are multiplied by 0
    st.skipped = true
    for b = 1, #glp do
      for k = 1, #glp[b] do glp[b][k] = 0; gv[b][k] = 0 end
    end
    pg, vf = 0, 0
  end
  return pg, vf, glp, gv, st
end

-- TRL's AdaptiveKLController
local KL = {}
KL.__index = KL
function M.kl_controller(init, target, horizon)
  return setmetatable({value = init, target = target, horizon = horizon or M.CONFIG.horizon}, KL)
end
function KL:update(current, n_steps)
  local e = max(min(current / self.target - 1, 0.2), -0.2)
  self.value = self.value * (1 + e * n_steps / self.horizon)
  return self.value
end

-- TRL's RunningMoments (one process)
local RM = {}
RM.__index = RM
function M.running_moments() return setmetatable({mean = 0, std = 1, var = 1, count = 1e-24}, RM) end
function RM:update(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local xm = s / n
  local q = 0
  for _, x in ipairs(xs) do q = q + (x - xm) ^ 2 end
  local xv = q / n
  local delta = xm - self.mean
  local tot = self.count + n
  local old_sum = self.var * self.count + delta ^ 2 * self.count * n / tot
  local tot_sum = old_sum + xv * n
  self.mean = self.mean + delta * n / tot
  self.var = tot_sum / tot
  self.std = sqrt(self.var * tot / (tot - 1))
  self.count = tot
  return xm, n > 1 and sqrt(xv * n / (n - 1)) or 0
end

-- use_score_scaling with use_score_norm (LlamaFactory sets both from ppo_score_norm)
function M.normalise_scores(rm, scores)
  rm:update(scores)
  local out, f = {}, rm.std + M.F32_EPS
  for b, s in ipairs(scores) do out[b] = (s - rm.mean) / f end
  return out
end

-- ---------------------------------------------------------------- arguments

M.REWARD_TYPES = {lora = true, full = true, api = true}

-- the PPO arguments and combinations, checked before the model loads
function M.check_args(a)
  local function bad(msg) error("arguments: stage ppo: " .. msg, 0) end
  if a.reward_model == nil or a.reward_model == "" then
    bad("reward_model is required: the directory of a reward model trained by stage rm (reward_model_type lora: "
      .. "its LoRA adapter with value_head.safetensors; full: a model directory with value_head.safetensors)")
  end
  if a.reward_model_type == "api" and not tostring(a.reward_model):match("^https?://") then
    bad(fmt("reward_model_type api takes the reward server's URL as reward_model (e.g. "
      .. "http://127.0.0.1:8000/v1/score/evaluation, what `lfl serve --stage rm` or LlamaFactory's api answers), "
      .. "got '%s'", tostring(a.reward_model)))
  end
  if a.reward_model_type == "lora" and a.finetuning_type ~= "lora" then
    bad("reward_model_type lora needs finetuning_type lora (LlamaFactory: 'Freeze/Full PPO training needs "
      .. "`reward_model_type=full`')")
  end
  if a.finetuning_type ~= "lora" then
    bad(fmt("finetuning_type %s: lfl's PPO takes the reference model from the base with the adapter disabled, "
      .. "so it needs finetuning_type lora", tostring(a.finetuning_type)))
  end
  if a.ref_model or a.ref_model_adapters then
    bad("ref_model / ref_model_adapters: lfl's PPO uses the base with the policy adapter disabled as the reference; "
      .. "a separate reference model is not supported")
  end
  if a.reward_model_adapters and a.reward_model_type ~= "full" then
    bad("reward_model_adapters applies to reward_model_type full (LlamaFactory reads it only there)")
  end
  if a.reward_model_adapters then
    bad("reward_model_adapters (adapters on a full reward model) is not supported; merge them into the reward model")
  end
  if a.resume_from_checkpoint ~= nil and a.resume_from_checkpoint ~= false then
    bad("resume_from_checkpoint: PPO runs cannot resume (LlamaFactory: 'will be supported in the future version'; "
      .. "the KL controller and score moments are not checkpointed)")
  end
  a.resume_from_checkpoint = false -- nor does a checkpoint left in output_dir resume it
  if a.do_eval == true or a.eval_dataset or (a.val_size or 0) > 0 then
    bad("PPO has no evaluation (LlamaFactory refuses do_eval / eval_dataset / val_size for ppo)")
  end
  if a.streaming then bad("streaming is not supported for ppo (a rollout batch is drawn from the dataset's order)") end
  if a.do_sample ~= false and not (a.temperature and a.temperature > 0) then
    bad("do_sample needs temperature > 0 (or do_sample: false for greedy rollouts)")
  end
  local bs = a.per_device_train_batch_size * a.gradient_accumulation_steps * a.ppo_buffer_size
  if a.ppo_whiten_rewards == nil then a.ppo_whiten_rewards = false end
  return bs
end

-- the reward model's files, checked when training starts, before the model loads
function M.preflight(a)
  local function bad(msg) error("arguments: stage ppo: " .. msg, 0) end
  local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
  local d = a.reward_model
  if a.reward_model_type == "api" then return end -- a URL, asked when the first rollout is scored
  if not lfl.fs.isdir(d) then bad(fmt("reward_model: %s is not a directory", d)) end
  if a.reward_model_type == "lora" and not exists(d .. "/adapter_config.json") then
    bad(fmt("reward_model: %s has no adapter_config.json (reward_model_type lora takes the LoRA adapter stage rm "
      .. "saved; a whole reward model directory needs reward_model_type: full)", d))
  end
  if not exists(d .. "/" .. vh.FILE) then
    bad(fmt("reward_model: %s has no %s (the value head stage rm saves)", d, vh.FILE))
  end
end

-- ---------------------------------------------------------------- the reward model

-- Attaches the reward model the arguments name: lora = adapter "reward" on
-- the policy's base with its value head; full = a separate model. Returns
-- {kind, head, model (full), adapter (lora), describe}.
function M.setup_reward(model, a)
  local dir = a.reward_model
  if a.reward_model_type == "api" then
    -- a scoring request waits at most 10 minutes (LlamaFactory's waits forever)
    return {kind = "api", url = dir, timeout = 600,
            describe = fmt("reward model: the server at %s (LlamaFactory's reward_model_type api: each prompt + "
              .. "response decoded with its special tokens and POSTed as {model, messages}; scores read from "
              .. "'scores')", dir)}
  end
  if not lfl.fs.isdir(dir) then error(fmt("reward_model: %s is not a directory", dir), 0) end
  if a.reward_model_type == "full" then
    local rm = lfl.model.load(dir, {dtype = (a.bf16 or a.pure_bf16) and "bf16" or nil})
    local head = vh.load(dir, rm.arch.hidden)
    if not head then error(fmt("reward_model: %s has no %s (the rm stage's value head)", dir, vh.FILE), 0) end
    return {kind = "full", model = rm, head = head,
            describe = fmt("reward model %s (a second model, %.1fM parameters)", dir, rm:num_parameters() / 1e6)}
  end
  local f = io.open(dir .. "/adapter_config.json", "rb")
  if not f then
    error(fmt("reward_model: %s has no adapter_config.json (reward_model_type lora takes the LoRA adapter the "
      .. "rm stage saved; a full reward model needs reward_model_type: full)", dir), 0)
  end
  f:close()
  local head = vh.load(dir, model.arch.hidden)
  if not head then error(fmt("reward_model: %s has no %s (the rm stage's value head)", dir, vh.FILE), 0) end
  local policy = model.lora
  local ad = require("lfl.train.peft").load_adapter(model, dir, "reward")
  model:set_adapter(policy and policy.name or nil)
  -- frozen: the head's tensors are never handed to the optimizer
  head.weight, head.bias = head.weight:detach(), head.bias:detach()
  return {kind = "lora", adapter = ad, head = head,
          describe = fmt("reward model %s: adapter 'reward' (%d modules) on the policy's base, no second copy", dir,
            #ad.modules)}
end

-- reward_model_type api (LlamaFactory's get_rewards_from_server): the texts
-- POSTed as {"model": "model", "messages": [...]}, one score a text from the
-- answer's "scores"
function M.score_api(reward, texts)
  local J = require("lfl.text.pyjson")
  local body = J.encode({model = "model", messages = texts}, {ensure_ascii = false})
  local status, resp = lfl._hub.post(reward.url, body, reward.timeout)
  local function bad(msg)
    error(fmt("reward_model_type api: %s answered %s: %s", reward.url, tostring(status), msg), 0)
  end
  if status ~= 200 then bad((resp or ""):sub(1, 300)) end
  local ok, doc = pcall(J.decode, resp)
  if not ok or type(doc) ~= "table" or type(doc.scores) ~= "table" then
    bad("expected a JSON object with a 'scores' list, got " .. resp:sub(1, 200))
  end
  if #doc.scores ~= #texts then bad(fmt("%d scores for %d texts", #doc.scores, #texts)) end
  for i, v in ipairs(doc.scores) do
    if type(v) ~= "number" then bad(fmt("score %d is %s, expected a number", i, tostring(v))) end
  end
  return doc.scores
end

-- scores [B] (a Lua list) of full sequences ids[b] under the reward model, at each one's last token
-- (api: the sequences decoded by tok, special tokens kept, and sent to the server)
function M.score(model, reward, seqs, tok)
  if reward.kind == "api" then
    local texts = {}
    for b, ids in ipairs(seqs) do texts[b] = tok:decode(ids, {skip_special_tokens = false}) end
    return M.score_api(reward, texts)
  end
  local rows = {}
  for b, ids in ipairs(seqs) do rows[b] = {input_ids = ids, labels = ids} end
  local batch = require("lfl.data.collate").pack_row(rows)
  local lens = {}
  for b, ids in ipairs(seqs) do lens[b] = #ids end
  batch.lengths = lfl.tensor(lens, "i64")
  local out = lfl.no_grad(function()
    if reward.kind == "full" then return vh.scores(reward.model, reward.head, batch) end
    return model:with_adapter("reward", vh.scores, model, reward.head, batch)
  end)
  local d, res = out:double(), {}
  for i = 1, d:numel() do res[i] = d[i] end
  return res
end

-- ---------------------------------------------------------------- forward

local function list_of(t)
  local d, out = t:detach():double(), {}
  for i = 1, d:numel() do out[i] = d[i] end
  return out
end

-- per response token: log-probs [K] and values [K] (the head on the hidden
-- state that predicts the token, as TRL's values[:, :-1]) of packed
-- sequences {input_ids, labels (-100 on the prompt)}; opts.head (nil: no
-- values), opts.train (dropout on the head's input, also without grad: TRL
-- computes the rollout's values with the model in train mode),
-- gradient_checkpointing
function M.forward(model, seqs, opts)
  local b = require("lfl.data.collate").pack_row(seqs)
  local N = b.input_ids:size(2)
  local h = decoder.hidden(model, b.input_ids, {position_ids = b.position_ids, segments = b.segments,
    gradient_checkpointing = opts.gradient_checkpointing, checkpoint_policy = opts.checkpoint_policy})
  local lab = b.labels:reshape(N)
  local keep = lfl.nonzero(lab:ne(-100))
  local hk, lk = h:reshape(N, h:size(3)):index_select(1, keep), lab:index_select(1, keep)
  local W = decoder.lm_head(model)
  local logp
  if model.arch.final_softcap then
    local cap = model.arch.final_softcap
    logp = lfl.token_logprobs((lfl.linear(hk, W) * (1 / cap)):tanh() * cap, lk)
  else
    logp = -lfl.linear_cross_entropy(hk, W, lk, {reduction = "none"})
  end
  local values
  if opts.head then
    local x = hk
    if opts.train and vh.DROPOUT > 0 then x = lfl.dropout(x, vh.DROPOUT) end
    values = lfl.linear(x, opts.head.weight, opts.head.bias):reshape(-1)
  end
  return logp, values
end

-- splits a flat per-token list into per sequence lists by response lengths
local function split(flat, lens)
  local out, k = {}, 0
  for b, n in ipairs(lens) do
    local l = {}
    for j = 1, n do l[j] = flat[k + j] end
    out[b] = l
    k = k + n
  end
  return out
end
M.split = split

-- ---------------------------------------------------------------- the step

local function mean(l) local s = 0 for _, v in ipairs(l) do s = s + v end return #l > 0 and s / #l or 0 end

-- the generation settings of the rollouts: the run's generation arguments (LlamaFactory's GeneratingArguments)
function M.generation_options(a, stops)
  local maxn = a.max_new_tokens
  return {max_new_tokens = maxn and maxn > 0 and maxn or nil, max_length = a.max_length,
          do_sample = a.do_sample, temperature = a.temperature, top_p = a.top_p, top_k = a.top_k,
          repetition_penalty = a.repetition_penalty, stop_ids = stops}
end

-- One PPO step on rows {prompt_ids} (the whole rollout batch): generate,
-- score, old log-probs / values / reference log-probs, rewards and GAE, then
-- ppo_epochs passes over shuffled mini-batches with an optimizer step every
-- gradient_accumulation_steps of them. t is the Trainer (model, args,
-- optimizer, value_head, ppo state); factor the schedule's lr factor.
-- Returns the mean total loss, the metrics and the tokens run through forwards.
function M.step(t, rows, factor)
  local a, model, st = t.args, t.model, t.ppo
  local tok, tpl = t.tokenizer, t.template
  local gen = require("lfl.infer.generate")
  local eos = require("lfl.data.preprocess").eos_id(tok, tpl)
  local prompts = {}
  for i, r in ipairs(rows) do prompts[i] = r.prompt_ids end
  -- rollouts with the policy (LlamaFactory: model.eval(), no dropout)
  local gopts = M.generation_options(a, gen.stop_ids(tok, tpl))
  local outs = lfl.no_grad(function()
    local per = {}
    for b, p in ipairs(prompts) do
      local mx = gopts.max_new_tokens or math.max(1, a.max_length - #p)
      per[b] = {max_new_tokens = mx}
    end
    return gen.generate_batch(model, prompts, {max_new_tokens = gopts.max_new_tokens or a.max_length,
      do_sample = gopts.do_sample, temperature = gopts.temperature, top_p = gopts.top_p, top_k = gopts.top_k,
      repetition_penalty = gopts.repetition_penalty, stop_ids = gopts.stop_ids, rows = per})
  end)
  local seqs, full, lens, resp_len = {}, {}, {}, 0
  for b, o in ipairs(outs) do
    local ids = {}
    for k, id in ipairs(o[1]) do ids[k] = id end
    -- LlamaFactory keeps the end-of-sequence token in the response (and one token for an empty one)
    if o[2] == "stop" or #ids == 0 then ids[#ids + 1] = eos end
    local input, labels = {}, {}
    for _, id in ipairs(prompts[b]) do input[#input + 1] = id; labels[#labels + 1] = -100 end
    for _, id in ipairs(ids) do input[#input + 1] = id; labels[#labels + 1] = id end
    seqs[b] = {input_ids = input, labels = labels}
    full[b] = input
    lens[b] = #ids
    resp_len = resp_len + #ids
  end
  -- scores from the reward model at the last token of prompt + response
  local raw = M.score(model, st.reward, full, tok)
  local scores = raw
  if a.ppo_score_norm then scores = M.normalise_scores(st.moments, raw) end
  -- old log-probs and values (policy), reference log-probs (adapter disabled);
  -- LlamaFactory has put the model in train mode here, so the head's dropout acts
  local head = t.value_head
  local old_lp, old_v, ref_lp = lfl.no_grad(function()
    local lp, v = M.forward(model, seqs, {head = head, train = true})
    local rlp = model:with_adapter(false, M.forward, model, seqs, {})
    return list_of(lp), list_of(v), list_of(rlp)
  end)
  old_lp, old_v, ref_lp = split(old_lp, lens), split(old_v, lens), split(ref_lp, lens)
  local kl_coef = st.kl.value
  local rewards, nonscore, kls = M.compute_rewards(scores, old_lp, ref_lp, kl_coef)
  local longest, tails = 0, {}
  for b = 1, #full do longest = math.max(longest, #full[b]) end
  for b = 1, #full do tails[b] = longest - #full[b] end
  local adv, ret = M.advantages(old_v, rewards, {whiten_rewards = a.ppo_whiten_rewards, pad_tail = tails})
  -- ppo_epochs over shuffled mini-batches
  local B, mbs, accum = #rows, a.per_device_train_batch_size, a.gradient_accumulation_steps
  local opt = t.optimizer
  local sums, count, ntok, gnorms = {}, 0, 0, {}
  local function add(k, v) sums[k] = (sums[k] or 0) + v end
  local in_accum = 0
  for e = 1, a.ppo_epochs do
    local order = {}
    for i = 1, B do order[i] = i end
    lfl.data.shuffle(order, a.seed + 7919 * st.steps + e)
    for s0 = 1, B, mbs do
      local idx = {}
      for i = s0, math.min(B, s0 + mbs - 1) do idx[#idx + 1] = order[i] end
      local mseqs, mb, mlens = {}, {}, {}
      for j, i in ipairs(idx) do
        mseqs[j] = seqs[i]
        mlens[j] = lens[i]
        ntok = ntok + #seqs[i].input_ids
      end
      local tlp, tv = M.forward(model, mseqs, {head = head, train = true,
        gradient_checkpointing = t.gradient_checkpointing, checkpoint_policy = t.checkpoint_policy})
      local lp, vp = split(list_of(tlp), mlens), split(list_of(tv), mlens)
      for j, i in ipairs(idx) do
        mb[j] = {old = old_lp[i], values = old_v[i], logp = lp[j], vpred = vp[j], adv = adv[i], ret = ret[i]}
      end
      local pg, vf, glp, gv, s = M.loss(mb, {})
      local flat_l, flat_v = {}, {}
      for j = 1, #mb do
        for _, g in ipairs(glp[j]) do flat_l[#flat_l + 1] = g end
        for _, g in ipairs(gv[j]) do flat_v[#flat_v + 1] = g end
      end
      local total = pg + M.CONFIG.vf_coef * vf
      local node = lfl.custom(function() return lfl.tensor(total) end,
        function(_, go) return lfl.tensor(flat_l) * go, lfl.tensor(flat_v) * go end)
      ;(node(tlp, tv) * (1 / accum)):backward()
      add("ppo/loss/policy", pg); add("ppo/loss/value", vf); add("ppo/loss/total", total)
      add("ppo/policy/clipfrac", s.clipfrac); add("ppo/val/clipfrac", s.vf_clipfrac)
      add("ppo/policy/approxkl", s.approxkl); add("ppo/policy/policykl", s.policykl)
      count = count + 1
      in_accum = in_accum + 1
      if in_accum == accum then
        gnorms[#gnorms + 1] = t:clip_grad_norm(a.max_grad_norm)
        if gnorms[#gnorms] == gnorms[#gnorms] then opt:step(factor) end
        opt:zero_grad()
        in_accum = 0
      end
    end
  end
  if in_accum > 0 then
    gnorms[#gnorms + 1] = t:clip_grad_norm(a.max_grad_norm)
    if gnorms[#gnorms] == gnorms[#gnorms] then opt:step(factor) end
    opt:zero_grad()
  end
  -- TRL's record_step_stats
  local klsum, ns, ent, nt = {}, 0, 0, 0
  for b = 1, B do
    local s = 0
    for k = 1, #kls[b] do s = s + kls[b][k]; ns = ns + nonscore[b][k]; ent = ent - old_lp[b][k]; nt = nt + 1 end
    klsum[b] = s
  end
  local mean_kl = mean(klsum)
  local ms = mean(scores)
  local q = 0
  for _, v in ipairs(scores) do q = q + (v - ms) ^ 2 end
  local metrics = {["objective/kl"] = mean_kl, ["objective/kl_coef"] = kl_coef, ["objective/entropy"] = ent / B,
    ["ppo/mean_non_score_reward"] = ns / nt, ["ppo/mean_scores"] = ms,
    ["ppo/std_scores"] = B > 1 and sqrt(q / (B - 1)) or 0, reward = mean(raw),
    ["tokens/responses_len_mean"] = resp_len / B}
  for k, v in pairs(sums) do metrics[k] = v / count end
  -- the step's rollout batch, for inspection (tests, a REPL session)
  st.last = {seqs = seqs, lens = lens, scores = scores, old_logprobs = old_lp, old_values = old_v,
             ref_logprobs = ref_lp, advantages = adv, returns = ret}
  st.kl:update(mean_kl, B)
  st.steps = st.steps + 1
  st.grad_norm = mean(gnorms)
  return metrics["ppo/loss/total"], metrics, ntok
end

return M
