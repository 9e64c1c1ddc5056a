-- Group relative policy optimisation (beyond LlamaFactory; TRL 0.24's
-- GRPOTrainer formulas): num_generations sampled completions per prompt,
-- rewards from Lua reward functions (prompt, completion, example) -> number,
-- group-normalised advantages, the clipped per-token objective with beta * KL
-- (k3 estimator) to the reference (the adapter disabled), aggregated as TRL's
-- loss_type (default "dapo", TRL 0.24's default).
--
-- Sources: trl/trainer/grpo_trainer.py (_generate_and_score_completions:
-- advantages = (r - group mean) / (group std + 1e-4), std unbiased as
-- torch.std; _compute_loss: coef_1 = exp(logp - old_logp), coef_2 =
-- clamp(coef_1, 1 - epsilon, 1 + epsilon), per_token_loss = -min(coef_1 A,
-- coef_2 A) + beta (exp(ref - logp) - (ref - logp) - 1); "dapo" sums over the
-- completion tokens and divides by their number in the generation batch).
-- One optimisation step per generation (TRL's num_iterations 1): old_logp is
-- the policy's own detached log-prob, so coef_1 = 1 in value.
local lfl = lfl
local decoder = require("lfl.model.decoder")
local fmt, exp, sqrt = string.format, math.exp, math.sqrt

local M = {}

M.LOSS_TYPES = {grpo = true, bnpo = true, dr_grpo = true, dapo = true}

-- the GRPO arguments, checked before the model loads
function M.check_args(a)
  local function bad(msg) error("arguments: stage grpo: " .. msg, 0) end
  local function int(k, lo)
    if type(a[k]) ~= "number" or a[k] % 1 ~= 0 or a[k] < lo then bad(fmt("%s must be an integer >= %d (got %s)", k, lo, tostring(a[k]))) end
  end
  int("num_generations", 2)
  int("max_completion_length", 1)
  if type(a.grpo_beta) ~= "number" or a.grpo_beta < 0 then bad(fmt("grpo_beta must be a number >= 0 (got %s)", tostring(a.grpo_beta))) end
  if type(a.grpo_epsilon) ~= "number" or not (a.grpo_epsilon > 0 and a.grpo_epsilon < 1) then
    bad(fmt("grpo_epsilon must be in (0, 1) (got %s)", tostring(a.grpo_epsilon)))
  end
  if not M.LOSS_TYPES[a.grpo_loss_type] then
    bad(fmt("grpo_loss_type must be grpo, bnpo, dr_grpo or dapo (got %s)", tostring(a.grpo_loss_type)))
  end
  if type(a.temperature) ~= "number" or not (a.temperature > 0) then
    bad(fmt("temperature must be > 0: GRPO samples its completions (got %s)", tostring(a.temperature)))
  end
  M.reward_functions(a) -- raises on a missing or unknown reward function
  if a.finetuning_type ~= "lora" and a.grpo_beta > 0 then
    bad("the KL term uses the model with the adapter disabled as the reference: finetuning_type lora (or grpo_beta 0)")
  end
end

-- reward_funcs: a function, a recipe name (recipes/rewards/<name>.lua) or a
-- list of them (a comma-separated string from the command line). Returns
-- {{name =, fn =}, ...}.
function M.reward_functions(a)
  local r = a.reward_funcs
  if r == nil or r == "" then
    error("arguments: stage grpo needs reward_funcs: a list of functions (prompt, completion, example) -> number "
      .. "or names of reward recipes (" .. table.concat(require("lfl.recipes").names("rewards"), ", ") .. ")", 0)
  end
  if type(r) == "string" then
    local t = {}
    for name in r:gmatch("[^,%s]+") do t[#t + 1] = name end
    r = t
  elseif type(r) == "function" then r = {r} end
  if type(r) ~= "table" or #r == 0 then error("arguments: reward_funcs must be a non-empty list", 0) end
  local out = {}
  for i, f in ipairs(r) do
    if type(f) == "function" then
      out[i] = {name = "reward_" .. i, fn = f}
    elseif type(f) == "string" then
      local R = require("lfl.recipes")
      if not (R.valid_name(f) and R.find("rewards", f)) then
        error(fmt("arguments: reward_funcs[%d]: unknown reward function '%s' (reward recipes found: %s)", i, f,
          table.concat(R.names("rewards"), ", ")), 0)
      end
      local fn = R.load("rewards", f)
      if type(fn) ~= "function" then error(fmt("reward recipe '%s' must return a function", f), 0) end
      out[i] = {name = f, fn = fn}
    else
      error(fmt("arguments: reward_funcs[%d] must be a function or a reward recipe name (got %s)", i, type(f)), 0)
    end
  end
  return out
end

-- advantages of rewards laid out group after group (G each): (r - mean) /
-- (std + 1e-4), std unbiased; also the mean over groups of the group std
function M.advantages(rewards, G)
  local adv, stds = {}, 0
  for g0 = 0, #rewards - 1, G do
    local m = 0
    for k = 1, G do m = m + rewards[g0 + k] end
    m = m / G
    local v = 0
    for k = 1, G do v = v + (rewards[g0 + k] - m) ^ 2 end
    local sd = sqrt(v / (G - 1))
    stds = stds + sd
    for k = 1, G do adv[g0 + k] = (rewards[g0 + k] - m) / (sd + 1e-4) end
  end
  return adv, stds / (#rewards / G)
end

-- The loss of B completions from per-token log-probs: seqs[b] = {logp = {..},
-- old = {..} (nil: logp itself), ref = {..} (nil when beta is 0), adv =}.
-- o = {beta, epsilon, loss_type, max_completion_length, num_items (the
-- completion tokens of the generation batch; default those of seqs)}.
-- Returns the loss, d loss / d logp (per sequence, per token) and metrics
-- {kl (masked mean per token), clip_ratio (tokens whose min took the clipped term)}.
function M.formula(seqs, o)
  local B, eps, beta = #seqs, o.epsilon, o.beta
  local total_tokens = 0
  for _, s in ipairs(seqs) do total_tokens = total_tokens + #s.logp end
  local lt = o.loss_type or "dapo"
  local loss, grads, klsum, clipped = 0, {}, 0, 0
  for b, s in ipairs(seqs) do
    local T, A = #s.logp, s.adv
    -- the per-sequence weight of a token's loss under each aggregation
    local w
    if lt == "grpo" then w = 1 / (math.max(T, 1) * B)
    elseif lt == "dr_grpo" then w = 1 / (B * o.max_completion_length)
    elseif lt == "bnpo" then w = 1 / math.max(total_tokens, 1)
    else w = 1 / (o.num_items or math.max(total_tokens, 1)) end
    local g = {}
    for k = 1, T do
      local lp = s.logp[k]
      local old = s.old and s.old[k] or lp
      local r = exp(lp - old)
      local rc = math.min(math.max(r, 1 - eps), 1 + eps)
      local l1, l2 = r * A, rc * A
      local per, d
      if l1 <= l2 then per, d = -l1, -A * r
      else per, d = -l2, 0; clipped = clipped + 1 end
      if beta ~= 0 then
        local x = s.ref[k] - lp
        local kl = exp(x) - x - 1
        per = per + beta * kl
        d = d + beta * (1 - exp(x))
        klsum = klsum + kl
      end
      loss = loss + w * per
      g[k] = w * d
    end
    grads[b] = g
  end
  local n = math.max(total_tokens, 1)
  return loss, grads, {kl = beta ~= 0 and klsum / n or nil, clip_ratio = clipped / n}
end

-- per-token log-probs of the completions (packed: prompt + completion per
-- sequence, labels on the completion) under logits / opts.temperature (TRL's
-- _get_per_token_logps_and_entropies): a tensor [K] in sequence order (in the
-- graph when grad is on)
function M.token_logps(model, seqs, opts)
  opts = opts or {}
  local b = require("lfl.data.collate").pack_row(seqs)
  local N = b.input_ids:size(2)
  local h = decoder.hidden(model, b.input_ids, {position_ids = b.position_ids, segments = b.segments,
    gradient_checkpointing = opts.gradient_checkpointing, checkpoint_policy = opts.checkpoint_policy})
  local lab = b.labels:reshape(N)
  local keep = lfl.nonzero(lab:ne(-100))
  local hk, lk = h:reshape(N, h:size(3)):index_select(1, keep), lab:index_select(1, keep)
  hk = decoder.head_input(model, hk) -- the family's logit scale (Cohere, Granite)
  local W = decoder.lm_head(model)
  local inv_t = 1 / (opts.temperature or 1)
  if model.arch.final_softcap then
    local cap = model.arch.final_softcap
    return lfl.token_logprobs((lfl.linear(hk, W) * (1 / cap)):tanh() * (cap * inv_t), lk)
  end
  if inv_t ~= 1 then hk = hk * inv_t end -- logits / temperature, as TRL scores its samples
  return -lfl.linear_cross_entropy(hk, W, lk, {reduction = "none"})
end

local function values(t)
  local d, out = t:detach():double(), {}
  for i = 1, d:numel() do out[i] = d[i] end
  return out
end

-- The loss node of B scored completions: seqs[b] = {input_ids (prompt +
-- completion), labels (-100 on the prompt)}, adv[b] their advantages; o =
-- {beta, epsilon, loss_type, max_completion_length, temperature, old (per
-- sequence lists of the sampling policy's log-probs; nil: the policy's own,
-- detached, TRL's num_iterations 1), gradient_checkpointing, checkpoint_policy}.
-- The reference (beta > 0) is the model with the adapter disabled.
-- Returns the loss (in the graph) and {kl, clip_ratio}.
function M.completions_loss(model, seqs, adv, o)
  local tlp = M.token_logps(model, seqs, o)
  local lp = values(tlp)
  local ref
  if o.beta ~= 0 then
    ref = lfl.no_grad(function()
      return values(model:with_adapter(false, M.token_logps, model, seqs, {temperature = o.temperature}))
    end)
  end
  local fs, k = {}, 0
  for b, sq in ipairs(seqs) do
    local s = {logp = {}, ref = ref and {} or nil, old = o.old and o.old[b] or nil, adv = adv[b]}
    for j, l in ipairs(sq.labels) do
      if l ~= -100 then
        k = k + 1
        s.logp[#s.logp + 1] = lp[k]
        if ref then s.ref[#s.ref + 1] = ref[k] end
      end
    end
    fs[b] = s
  end
  local loss, grads, m = M.formula(fs, o)
  local flat = {}
  for _, g in ipairs(grads) do for _, v in ipairs(g) do flat[#flat + 1] = v end end
  local node = lfl.custom(function() return lfl.tensor(loss) end, function(_, go) return lfl.tensor(flat) * go end)
  return node(tlp), m
end

-- The GRPO step on a batch of prompts (rows {prompt_ids, query_ids,
-- answer_ids}): sample num_generations completions of each with the current
-- policy, score them, and return the loss node over the completions' per-token
-- log-probs and TRL's metrics: reward, reward_std, rewards/<name>/mean,
-- rewards/<name>/std, kl, completions/mean_length, clip_ratio.
function M.step(model, batch, state)
  local a = state.args
  local tok, tpl = state.tokenizer, state.template
  local G, maxn = a.num_generations, a.max_completion_length
  local funcs = state.reward_funcs or M.reward_functions(a)
  state.reward_funcs = funcs
  local gen = require("lfl.infer.generate")
  local stops = gen.stop_ids(tok, tpl)
  local eos = require("lfl.data.preprocess").eos_id(tok, tpl)
  local prompts, examples = {}, {}
  for _, row in ipairs(batch.rows) do
    local ex = {prompt = tok:decode(row.query_ids), answer = tok:decode(row.answer_ids),
                format_pattern = a.reward_format_pattern, length_target = a.reward_length_target}
    for _ = 1, G do prompts[#prompts + 1] = row.prompt_ids; examples[#examples + 1] = ex end
  end
  local outs = lfl.no_grad(function()
    return gen.generate_batch(model, prompts, {max_new_tokens = maxn, temperature = a.temperature,
      top_k = 0, top_p = 1.0, stop_ids = stops})
  end)
  -- rewards per function, summed (TRL's reward_weights all 1)
  local seqs, rewards, comp, per_func = {}, {}, {}, {}
  local total_len = 0
  for b, o in ipairs(outs) do
    local ids = {}
    for k, id in ipairs(o[1]) do ids[k] = id end
    local text = tok:decode(ids, {skip_special_tokens = true})
    if o[2] == "stop" then ids[#ids + 1] = eos end -- the end is part of the completion, as in TRL's mask
    if #ids == 0 then ids[1] = eos end
    total_len = total_len + #ids
    comp[b] = ids
    local r = 0
    for j, f in ipairs(funcs) do
      local v = f.fn(examples[b].prompt, text, examples[b])
      if type(v) ~= "number" or v ~= v then
        error(fmt("grpo: reward function %s returned %s for completion %d (a number is expected)", f.name, tostring(v), b), 0)
      end
      per_func[j] = per_func[j] or {}
      per_func[j][b] = v
      r = r + v
    end
    rewards[b] = r
    local input, labels = {}, {}
    for _, id in ipairs(prompts[b]) do input[#input + 1] = id; labels[#labels + 1] = -100 end
    for _, id in ipairs(ids) do input[#input + 1] = id; labels[#labels + 1] = id end
    seqs[b] = {input_ids = input, labels = labels}
  end
  local ntok = 0
  for _, sq in ipairs(seqs) do ntok = ntok + #sq.input_ids end
  batch.ntokens = ntok -- the trainer's tokens/s counts what the forward ran on
  local adv, mean_std = M.advantages(rewards, G)
  local loss, m = M.completions_loss(model, seqs, adv, {beta = a.grpo_beta, epsilon = a.grpo_epsilon,
    loss_type = a.grpo_loss_type, max_completion_length = maxn, temperature = a.temperature,
    gradient_checkpointing = state.gradient_checkpointing, checkpoint_policy = state.checkpoint_policy})
  local rs = 0
  for _, r in ipairs(rewards) do rs = rs + r end
  local metrics = {reward = rs / #rewards, reward_std = mean_std, ["clip_ratio/region_mean"] = m.clip_ratio, kl = m.kl,
                   ["completions/mean_length"] = total_len / #comp}
  for j, f in ipairs(funcs) do
    local s, q = 0, 0
    for b = 1, #comp do s = s + per_func[j][b] end
    local mean = s / #comp
    for b = 1, #comp do q = q + (per_func[j][b] - mean) ^ 2 end
    metrics["rewards/" .. f.name .. "/mean"] = mean
    metrics["rewards/" .. f.name .. "/std"] = #comp > 1 and sqrt(q / (#comp - 1)) or 0
  end
  return loss, metrics
end

return M
