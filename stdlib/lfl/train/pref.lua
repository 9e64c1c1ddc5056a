-- Preference learning on pairs (the rm, dpo, orpo and simpo approaches):
-- per-sequence log-probabilities of a packed pairwise batch in one forward,
-- the reference model's (the same weights with the adapter off, a separate
-- ref_model, or the frozen initial weights of a full / freeze run), and the
-- losses of LlamaFactory's CustomDPOTrainer (its formulas, TRL's metric names)
-- computed in double precision with their exact gradients as one autograd node.
--
-- Sources: LlamaFactory src/llamafactory/train/dpo/trainer.py (odds_ratio_loss,
-- simpo_loss, concatenated_forward: summed log-probs, averaged per token for
-- ipo / orpo / simpo; pref_ftx adds -chosen_logps / chosen_length) and TRL's
-- DPOTrainer.dpo_loss (sigmoid with label smoothing, hinge, ipo, and the
-- kto_pair of TRL <= 0.8 that LlamaFactory still offers).
local lfl = lfl
local decoder = require("lfl.model.decoder")
local fmt, exp, log, abs = string.format, math.exp, math.log, math.abs

local M = {}

M.LOSSES = {"sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"}
M.REFERENCE_FREE = {orpo = true, simpo = true}
M.AVERAGED = {ipo = true, orpo = true, simpo = true} -- log-probs averaged per token
local KNOWN = {}
for _, k in ipairs(M.LOSSES) do KNOWN[k] = true end

-- LlamaFactory's use_ref_model: every pref_loss but orpo and simpo
function M.uses_reference(a) return not M.REFERENCE_FREE[a.pref_loss] end

-- the preference arguments, checked (LlamaFactory's FinetuningArguments rules,
-- and what TRL would silently ignore refused by name)
function M.check_args(a, stage)
  local function bad(msg) error(fmt("arguments: stage %s: %s", stage, msg), 0) end
  if not KNOWN[a.pref_loss] then
    bad(fmt("pref_loss '%s' is not a preference loss (%s)", tostring(a.pref_loss), table.concat(M.LOSSES, ", ")))
  end
  if type(a.pref_beta) ~= "number" or not (a.pref_beta > 0) then
    bad(fmt("pref_beta must be a number > 0 (got %s)", tostring(a.pref_beta)))
  end
  if type(a.pref_ftx) ~= "number" or a.pref_ftx < 0 then bad(fmt("pref_ftx must be >= 0 (got %s)", tostring(a.pref_ftx))) end
  local ls = a.dpo_label_smoothing
  if type(ls) ~= "number" or ls < 0 or ls >= 0.5 then
    bad(fmt("dpo_label_smoothing must be in [0, 0.5) (got %s)", tostring(ls)))
  end
  if ls > 0 and a.pref_loss ~= "sigmoid" then
    bad(fmt("dpo_label_smoothing applies to pref_loss sigmoid only (pref_loss is %s)", a.pref_loss))
  end
  if a.pref_loss == "simpo" and type(a.simpo_gamma) ~= "number" then
    bad(fmt("simpo_gamma must be a number (got %s)", tostring(a.simpo_gamma)))
  end
  if a.pref_loss == "kto_pair" and a.pref_ftx > 0 then
    -- LlamaFactory adds the [n] SFT term to kto_pair's [2n] losses, which does not broadcast
    bad("pref_ftx does not combine with pref_loss kto_pair (its losses are per sequence, the SFT term per pair)")
  end
  if M.REFERENCE_FREE[a.pref_loss] and (a.ref_model or a.ref_model_adapters) then
    bad(fmt("pref_loss %s is reference-free; ref_model / ref_model_adapters would not be used", a.pref_loss))
  end
  if a.ref_model_adapters and not a.ref_model then bad("ref_model_adapters needs ref_model") end
end

-- ---------------------------------------------------------------- scalar math

local function log1p(x)
  local u = 1 + x
  if u == 1 then return x end
  return log(u) * x / (u - 1)
end

local function expm1(x)
  if abs(x) < 1e-5 then return x + x * x / 2 + x * x * x / 6 end
  local u = exp(x)
  if u == 1 then return x end
  if u - 1 == -1 then return -1 end
  return (u - 1) * x / log(u)
end

local function sigmoid(x)
  if x >= 0 then return 1 / (1 + exp(-x)) end
  local e = exp(x)
  return e / (1 + e)
end

local function logsigmoid(x)
  if x < 0 then return x - log1p(exp(x)) end
  return -log1p(exp(-x))
end
M.logsigmoid, M.sigmoid, M.log1p, M.expm1 = logsigmoid, sigmoid, log1p, expm1

-- ---------------------------------------------------------------- the losses

-- Preference loss of n pairs from per-pair log-probs (already averaged per
-- token where M.AVERAGED says so): pc, pr the policy's chosen / rejected,
-- rc, rr the reference's (nil for orpo / simpo). o = {beta, label_smoothing,
-- gamma (simpo_gamma), ftx (pref_ftx), chosen_len (tokens of each chosen
-- answer, for ftx with summed log-probs)}.
-- Returns the mean loss, d loss / d pc, d loss / d pr (lists) and the metrics
-- (TRL's names; orpo adds sft_loss and odds_ratio_loss as LlamaFactory logs them).
function M.formula(kind, pc, pr, rc, rr, o)
  local n = #pc
  local beta = o.beta
  local losses, gc, gr, rwc, rwr = {}, {}, {}, {}, {}
  if kind == "sigmoid" or kind == "hinge" or kind == "ipo" then
    local eps = o.label_smoothing or 0
    for i = 1, n do
      local h = (pc[i] - pr[i]) - (rc[i] - rr[i])
      local d -- d loss_i / d h
      if kind == "sigmoid" then
        local z = beta * h
        losses[i] = -(1 - eps) * logsigmoid(z) - eps * logsigmoid(-z)
        d = beta * (sigmoid(z) - (1 - eps))
      elseif kind == "hinge" then
        local u = 1 - beta * h
        losses[i] = u > 0 and u or 0
        d = u > 0 and -beta or 0
      else
        local u = h - 1 / (2 * beta)
        losses[i] = u * u
        d = 2 * u
      end
      gc[i], gr[i] = d, -d
      rwc[i], rwr[i] = beta * (pc[i] - rc[i]), beta * (pr[i] - rr[i])
    end
  elseif kind == "kto_pair" then
    -- TRL 0.8: KL estimates from the other half, clamped at 0 (gradient kept where >= 0)
    local sa, sb = 0, 0
    for i = 1, n do sa, sb = sa + (pc[i] - rc[i]), sb + (pr[i] - rr[i]) end
    local ma, mb = sa / n, sb / n
    local klc, klr = math.max(ma, 0), math.max(mb, 0)
    local pass_c, pass_r = ma >= 0 and 1 or 0, mb >= 0 and 1 or 0
    local gu, gv, su, sv = {}, {}, 0, 0
    local total = 0
    for i = 1, n do
      local u, v = beta * ((pc[i] - rc[i]) - klr), beta * (klc - (pr[i] - rr[i]))
      local s_u, s_v = sigmoid(u), sigmoid(v)
      total = total + (1 - s_u) + (1 - s_v)
      gu[i], gv[i] = -s_u * (1 - s_u), -s_v * (1 - s_v) -- d(1 - sigmoid)/d arg
      su, sv = su + gu[i], sv + gv[i]
      rwc[i], rwr[i] = beta * (pc[i] - rc[i]), beta * (pr[i] - rr[i])
    end
    -- the mean runs over 2n losses; gc/gr below are already d mean / d p
    for i = 1, n do
      gc[i] = (beta * gu[i] + beta * sv * pass_c / n) / (2 * n)
      gr[i] = (-beta * gv[i] - beta * su * pass_r / n) / (2 * n)
    end
    local loss = total / (2 * n)
    return loss, gc, gr, M.reward_metrics(rwc, rwr, pc, pr)
  elseif kind == "orpo" then
    for i = 1, n do
      local a, b = pc[i], pr[i]
      -- log(1 - e^a) = log(-expm1(a)) for a < 0
      local lo = (a - b) - (log(-expm1(a)) - log(-expm1(b)))
      losses[i] = -a + beta * -logsigmoid(lo)
      local s = sigmoid(lo) - 1 -- d(-logsigmoid(lo)) / d lo
      gc[i] = -1 + beta * s * (-1 / expm1(a))  -- d lo / d a = 1 / (1 - e^a)
      gr[i] = beta * s * (1 / expm1(b))        -- d lo / d b = -1 / (1 - e^b)
      rwc[i], rwr[i] = beta * a, beta * b
    end
  elseif kind == "simpo" then
    local gamma = o.gamma
    for i = 1, n do
      local u = beta * (pc[i] - pr[i]) - gamma
      losses[i] = -logsigmoid(u)
      local d = beta * (sigmoid(u) - 1)
      gc[i], gr[i] = d, -d
      rwc[i], rwr[i] = beta * pc[i], beta * pr[i]
    end
  else
    error(fmt("pref: unknown loss '%s'", tostring(kind)), 2)
  end
  -- pref_ftx: + ftx * sft, sft = -(average chosen log-prob)
  local sft = {}
  for i = 1, n do sft[i] = M.AVERAGED[kind] and -pc[i] or -pc[i] / o.chosen_len[i] end
  local ftx = o.ftx or 0
  if ftx > 1e-6 then -- LlamaFactory's threshold
    for i = 1, n do
      losses[i] = losses[i] + ftx * sft[i]
      gc[i] = gc[i] - ftx * (M.AVERAGED[kind] and 1 or 1 / o.chosen_len[i])
    end
  end
  local total = 0
  for i = 1, n do total = total + losses[i]; gc[i], gr[i] = gc[i] / n, gr[i] / n end
  local metrics = M.reward_metrics(rwc, rwr, pc, pr)
  if kind == "orpo" then
    local s, q = 0, 0
    for i = 1, n do s = s + sft[i]; q = q + (losses[i] - sft[i]) / beta end
    metrics.sft_loss, metrics.odds_ratio_loss = s / n, q / n
  end
  return total / n, gc, gr, metrics
end

-- rewards/*, logps/* of a batch (means over its pairs)
function M.reward_metrics(rwc, rwr, pc, pr)
  local n = #rwc
  local sc, sr, acc, mar, lc, lr = 0, 0, 0, 0, 0, 0
  for i = 1, n do
    sc, sr = sc + rwc[i], sr + rwr[i]
    if rwc[i] > rwr[i] then acc = acc + 1 end
    mar = mar + (rwc[i] - rwr[i])
    lc, lr = lc + pc[i], lr + pr[i]
  end
  return {["rewards/chosen"] = sc / n, ["rewards/rejected"] = sr / n, ["rewards/accuracies"] = acc / n,
          ["rewards/margins"] = mar / n, ["logps/chosen"] = lc / n, ["logps/rejected"] = lr / n}
end

-- ---------------------------------------------------------------- log-probs

-- the 1-based values of a small tensor as a Lua list
local function values(t)
  local d, out = t:detach():double(), {}
  if d:device() ~= "cpu" then d = d:to("cpu") end
  for i = 1, d:numel() do out[i] = d[i] end
  return out
end
M.values = values

-- the mean over the vocabulary of each row's logits is h . mean(W): one
-- [H] vector instead of [tokens, V] logits (kept while the same W does not train)
local function mean_head_row(model, W)
  local c, key = model._pref_wbar, W:data_ptr() .. " " .. W:dtype() .. " " .. table.concat(W:size(), "x")
  if c and c.key == key and not W:get_requires_grad() then return c.v end
  local v = lfl.no_grad(function() return W:detach():float():mean(1):reshape(1, -1) end)
  model._pref_wbar = {key = key, v = v}
  return v
end

-- Summed log-probabilities of the 2n sequences of a packed pairwise batch
-- (lfl.data.pairwise.collate_pairwise_packed): one forward over the row.
-- Returns sums [2n] (in the graph when grad is on), the labelled tokens of
-- each sequence (Lua list), and the mean logit of the chosen half and of the
-- rejected half over their labelled tokens (TRL's logits/chosen, logits/rejected).
-- opts: gradient_checkpointing, checkpoint_policy (the trainer's).
function M.sequence_logps(model, batch, opts)
  opts = opts or {}
  local N, S = batch.input_ids:size(2), 2 * batch.n
  local h = decoder.hidden(model, batch.input_ids, {position_ids = batch.position_ids, segments = batch.segments,
    gradient_checkpointing = opts.gradient_checkpointing, checkpoint_policy = opts.checkpoint_policy})
  local H = h:size(3)
  -- the labels and segments go where the hidden states are (device: cuda)
  local dev = h:device()
  local function here(t) return decoder.on_device(t, dev) end
  local lab = here(batch.labels):reshape(N)
  local keep = lfl.nonzero(lab:ne(-100))
  if keep:numel() == 0 then error("pref: the batch has no answer token to score (check cutoff_len)", 0) end
  local hk, lk = h:reshape(N, H):index_select(1, keep), lab:index_select(1, keep)
  hk = decoder.head_input(model, hk) -- the family's logit scale (Cohere, Granite)
  local seg = here(batch.segments):reshape(N):index_select(1, keep) -- 1..S; slot 0 of the sums stays empty
  local W = decoder.lm_head(model)
  local tok
  if model.arch.final_softcap then
    local cap = model.arch.final_softcap
    tok = lfl.token_logprobs((lfl.linear(hk, W) * (1 / cap)):tanh() * cap, lk)
  else
    tok = -lfl.linear_cross_entropy(hk, W, lk, {reduction = "none"})
  end
  local sums = lfl.scatter_add(here(lfl.zeros(S + 1)), 1, seg, tok):narrow(1, 2, S)
  local counts, mean_logit = lfl.no_grad(function()
    local K = keep:numel()
    local cnt = values(lfl.scatter_add(here(lfl.zeros(S + 1)), 1, seg, here(lfl.ones(K))):narrow(1, 2, S))
    local per_tok
    if model.arch.final_softcap then
      local cap = model.arch.final_softcap
      per_tok = ((lfl.linear(hk:detach(), W) * (1 / cap)):tanh() * cap):mean(2)
    else
      per_tok = lfl.linear(hk:detach(), mean_head_row(model, W)):reshape(K)
    end
    return cnt, values(lfl.scatter_add(here(lfl.zeros(S + 1)), 1, seg, per_tok:reshape(K)):narrow(1, 2, S))
  end)
  local n = S / 2
  local lc, lr, cc, cr = 0, 0, 0, 0
  for i = 1, n do lc, cc = lc + mean_logit[i], cc + counts[i]; lr, cr = lr + mean_logit[n + i], cr + counts[n + i] end
  for i = 1, S do
    if counts[i] == 0 then
      error(fmt("pref: sequence %d of the batch has no answer token to score (an empty chosen or rejected answer?)", i), 0)
    end
  end
  return sums, counts, {chosen = lc / cc, rejected = lr / cr, per_seq = mean_logit}
end

-- ---------------------------------------------------------------- reference

-- Sets up the reference model for a run (trainer.lua calls it before the
-- method makes its parameters trainable): ref_model (+ ref_model_adapters,
-- merged) when given; else for LoRA the same model with the adapter off
-- (one copy of the weights); else (full / freeze) a frozen Model holding the
-- initial weights: the method trains private copies, so the reference keeps
-- the tensors as loaded. Returns {kind =, model =, note =}.
function M.setup_reference(model, a)
  if a.ref_model then
    -- LlamaFactory loads ref_model with the run's model arguments: MoD's convert or load too
    local ref = lfl.model.load(a.ref_model, {dtype = (a.bf16 or a.pure_bf16) and "bf16" or nil,
                                             rope_scaling = lfl.args.rope_option(a, true),
                                             mixture_of_depths = a.mixture_of_depths == "load" and "load" or nil})
    if a.mixture_of_depths == "convert" then require("lfl.model.mod").convert(ref) end
    if a.ref_model_adapters then
      local peft = require("lfl.train.peft")
      local dirs = require("lfl.data").names_of(a.ref_model_adapters)
      for i, dir in ipairs(dirs) do
        peft.load_adapter(ref, dir, "ref" .. i)
        ref:merge_adapter()
        ref:remove_adapter("ref" .. i)
      end
    end
    return {kind = "model", model = ref, note = fmt("reference model %s%s", a.ref_model,
      a.ref_model_adapters and (" + " .. tostring(a.ref_model_adapters)) or "")}
  end
  if a.finetuning_type == "lora" then
    return {kind = "adapter_off", note = "reference = the base model with the adapter disabled (no second copy)"}
  end
  local ref = lfl.model.new()
  for _, name in ipairs(model.names) do ref.params[name] = model.params[name] end
  ref.config, ref.arch, ref.dtype, ref.path = model.config, model.arch, model.dtype, model.path
  -- a mixture-of-depths reference routes its own way: never in training mode,
  -- so at the initial capacity (LlamaFactory's reference is a model in eval mode)
  if model.mod then ref.mod = {layers = model.mod.layers, capacity = model.mod.capacity, step = 0} end
  return {kind = "frozen", model = ref}
end

-- after the method's set-up: the memory the frozen copy holds (the initial
-- tensors that now have a trained copy beside them)
function M.describe_reference(ref, model, a)
  if ref.kind ~= "frozen" then return ref.note end
  local bytes, count = 0, 0
  local esize = require("lfl.model").elem_size
  for _, name in ipairs(ref.model.names) do
    local t = ref.model.params[name]
    if model.params[name] ~= t then bytes, count = bytes + t:numel() * esize(t), count + 1 end
  end
  ref.bytes = bytes
  return fmt("finetuning_type %s: the reference is a frozen copy of the initial weights, as LlamaFactory keeps "
    .. "one; it holds %d tensors (%.1f MB) besides their trained copies (pass ref_model to use another model)",
    a.finetuning_type, count, bytes / 2 ^ 20)
end

-- the reference's summed log-probs of the batch's sequences (no grad): a Lua list
function M.reference_logps(state, batch)
  local ref = state.reference
  if not ref then error("pref: this run has no reference model", 0) end
  return lfl.no_grad(function()
    local sums
    if ref.kind == "adapter_off" then
      sums = state.model:with_adapter(false, M.sequence_logps, state.model, batch, {})
    else
      sums = M.sequence_logps(ref.model, batch, {})
    end
    return values(sums)
  end)
end

-- ---------------------------------------------------------------- the node

-- a custom node's input gradient g * go where the node's input lives
-- (the node's output is the loss on its input's device, so go is there too)
local function grad_like(g, go)
  if go:device() ~= "cpu" then g = g:to(go:device()) end
  return g * go
end

-- the loss value as a scalar tensor on x's device
local function scalar_on(v, x)
  local t = lfl.tensor(v)
  return x:device() == "cpu" and t or t:to(x:device())
end

-- The loss of a pairwise batch as one autograd node over the policy's summed
-- log-probs sums [2n] (chosen first): the formula runs in double precision,
-- backward hands its exact gradient to the forward that made sums.
-- ref: the reference's summed log-probs (Lua list of 2n) or nil; counts:
-- labelled tokens per sequence. Returns the loss tensor and the metrics.
function M.loss(kind, sums, counts, ref, o)
  local n = #counts / 2
  local s = values(sums)
  local avg = M.AVERAGED[kind]
  local pc, pr, rc, rr, clen = {}, {}, nil, nil, {}
  for i = 1, n do
    clen[i] = counts[i]
    pc[i] = avg and s[i] / counts[i] or s[i]
    pr[i] = avg and s[n + i] / counts[n + i] or s[n + i]
  end
  if not M.REFERENCE_FREE[kind] then
    if not ref then error("pref: pref_loss " .. kind .. " needs the reference log-probs", 0) end
    rc, rr = {}, {}
    for i = 1, n do
      rc[i] = avg and ref[i] / counts[i] or ref[i]
      rr[i] = avg and ref[n + i] / counts[n + i] or ref[n + i]
    end
  end
  local loss, gc, gr, metrics = M.formula(kind, pc, pr, rc, rr, {beta = o.beta, label_smoothing = o.label_smoothing,
    gamma = o.gamma, ftx = o.ftx, chosen_len = clen})
  -- d loss / d sums (chain through the per-token average)
  local g = {}
  for i = 1, n do
    g[i] = avg and gc[i] / counts[i] or gc[i]
    g[n + i] = avg and gr[i] / counts[n + i] or gr[i]
  end
  local node = lfl.custom(function(_, x) return scalar_on(loss, x) end,
                          function(_, go) return grad_like(lfl.tensor(g), go) end)
  return node(sums), metrics
end

-- LlamaFactory's PairwiseTrainer (stage rm) on the scores [2n] of a packed
-- pairwise batch: loss = -mean(logsigmoid(r_chosen - r_rejected)); its eval
-- metric accuracy = mean(r_chosen > r_rejected), logged in training too.
function M.rm_loss(scores, n)
  local s = values(scores)
  local total, acc, g = 0, 0, {}
  for i = 1, n do
    local d = s[i] - s[n + i]
    total = total - logsigmoid(d)
    local q = (sigmoid(d) - 1) / n
    g[i], g[n + i] = q, -q
    if d > 0 then acc = acc + 1 end
  end
  local loss = total / n
  local node = lfl.custom(function(_, x) return scalar_on(loss, x) end,
                          function(_, go) return grad_like(lfl.tensor(g), go) end)
  return node(scores), {accuracy = acc / n}
end

-- ---------------------------------------------------------------- KTO

-- KTO arguments (LlamaFactory's FinetuningArguments: pref_beta, pref_ftx,
-- kto_chosen_weight, kto_rejected_weight)
function M.check_kto_args(a)
  local function bad(msg) error("arguments: stage kto: " .. msg, 0) end
  if type(a.pref_beta) ~= "number" or not (a.pref_beta > 0) then
    bad(fmt("pref_beta must be a number > 0 (got %s)", tostring(a.pref_beta)))
  end
  if type(a.pref_ftx) ~= "number" or a.pref_ftx < 0 then bad(fmt("pref_ftx must be >= 0 (got %s)", tostring(a.pref_ftx))) end
  for _, k in ipairs({"kto_chosen_weight", "kto_rejected_weight"}) do
    if type(a[k]) ~= "number" or a[k] < 0 then bad(fmt("%s must be a number >= 0 (got %s)", k, tostring(a[k]))) end
  end
  if a.pref_loss ~= "sigmoid" then
    bad(fmt("pref_loss does not apply to stage kto (got %s): its loss is TRL's kto", tostring(a.pref_loss)))
  end
  if a.ref_model_adapters and not a.ref_model then bad("ref_model_adapters needs ref_model") end
end

-- TRL 0.24 KTOTrainer.kto_loss (loss_type "kto") as LlamaFactory 0.9.5's
-- CustomKTOTrainer.get_batch_loss_metrics calls it, on n examples:
-- tags[i] true = desirable; p, r the policy's / reference's summed log-probs
-- of the targets; klp, klr of the mismatched (prompt, previous answer) pairs;
-- len the labelled tokens of each target. o = {beta, wc, wr, ftx}.
--   kl = max(mean(klp - klr), 0)                          (no gradient)
--   desirable:   wc * (1 - sigmoid(beta * ((p - r) - kl)))
--   undesirable: wr * (1 - sigmoid(beta * (kl - (p - r))))
--   loss = mean over the n; pref_ftx > 1e-6 adds
--   ftx * mean_desirable(-p / len) / n_desirable * n  (LlamaFactory's rescaling)
-- Returns the loss, d loss / d p (list) and the per-batch metrics of TRL's
-- names: rewards/chosen (mean beta (p - r) over desirable), logps/chosen,
-- the same for rejected, rewards/margins, kl; and count/chosen,
-- count/rejected (the weights LlamaFactory averages them with).
function M.kto_formula(tags, p, r, klp, klr, len, o)
  local n, beta = #p, o.beta
  local s = 0
  for i = 1, #klp do s = s + (klp[i] - klr[i]) end
  local kl = math.max(s / #klp, 0)
  local total, g = 0, {}
  local nc, rc, lc, nr, rr, lr = 0, 0, 0, 0, 0, 0
  for i = 1, n do
    local lr_i = p[i] - r[i]
    if tags[i] then
      local sg = sigmoid(beta * (lr_i - kl))
      total = total + o.wc * (1 - sg)
      g[i] = -o.wc * beta * sg * (1 - sg) / n
      nc, rc, lc = nc + 1, rc + beta * lr_i, lc + p[i]
    else
      local sg = sigmoid(beta * (kl - lr_i))
      total = total + o.wr * (1 - sg)
      g[i] = o.wr * beta * sg * (1 - sg) / n
      nr, rr, lr = nr + 1, rr + beta * lr_i, lr + p[i]
    end
  end
  local loss = total / n
  if (o.ftx or 0) > 1e-6 and nc > 0 then
    local sft = 0
    for i = 1, n do
      if tags[i] then
        sft = sft - p[i] / len[i]
        g[i] = g[i] - o.ftx / len[i] / nc / nc * n
      end
    end
    loss = loss + o.ftx * (sft / nc) / nc * n
  end
  local m = {kl = kl, ["count/chosen"] = nc, ["count/rejected"] = nr}
  if nc > 0 then m["rewards/chosen"], m["logps/chosen"] = rc / nc, lc / nc end
  if nr > 0 then m["rewards/rejected"], m["logps/rejected"] = rr / nr, lr / nr end
  if nc > 0 and nr > 0 then m["rewards/margins"] = m["rewards/chosen"] - m["rewards/rejected"] end
  return loss, g, m
end

-- The KTO step on a packed batch (lfl.data.pairwise.collate_kto_packed):
-- policy log-probs of targets and KL pairs in one forward, the reference's,
-- the loss node (gradient only through the targets; the KL estimate is
-- detached, as TRL's) and the metrics, logits/* added (the mean logit over the
-- answer tokens, TRL's masked definition; LlamaFactory sums the padded [n, L, V]).
function M.kto_step(model, batch, state)
  local a = state.args or {}
  local sums, counts, logits = M.sequence_logps(model, batch, {
    gradient_checkpointing = state.gradient_checkpointing, checkpoint_policy = state.checkpoint_policy})
  local ref = M.reference_logps(state, batch)
  local s = values(sums)
  local n, tags = batch.n, batch.kto_tags
  local p, r, klp, klr, len = {}, {}, {}, {}, {}
  for i = 1, n do
    p[i], r[i], klp[i], klr[i], len[i] = s[i], ref[i], s[n + i], ref[n + i], counts[i]
  end
  local loss, g, m = M.kto_formula(tags, p, r, klp, klr, len, {beta = a.pref_beta, wc = a.kto_chosen_weight,
    wr = a.kto_rejected_weight, ftx = a.pref_ftx})
  for i = 1, n do g[n + i] = 0 end
  local node = lfl.custom(function(_, x) return scalar_on(loss, x) end,
                          function(_, go) return grad_like(lfl.tensor(g), go) end)
  local lc, cc, lrj, crj = 0, 0, 0, 0
  for i = 1, n do
    if tags[i] then lc, cc = lc + logits.per_seq[i], cc + counts[i]
    else lrj, crj = lrj + logits.per_seq[i], crj + counts[i] end
  end
  if cc > 0 then m["logits/chosen"] = lc / cc end
  if crj > 0 then m["logits/rejected"] = lrj / crj end
  -- the counts weight LlamaFactory's averages; the trainer averages per step
  m["count/chosen"], m["count/rejected"] = nil, nil
  return node(sums), m
end

-- ---------------------------------------------------------------- helpers for the approaches

-- the loss options from recipe arguments
function M.options(a, kind)
  return {beta = a.pref_beta, label_smoothing = a.dpo_label_smoothing, gamma = a.simpo_gamma, ftx = a.pref_ftx,
          kind = kind or a.pref_loss}
end

-- The full pairwise step of dpo / orpo / simpo: policy log-probs with grad,
-- reference log-probs when the loss uses them, the loss node and TRL's metrics.
function M.step(model, batch, state, kind)
  local a = state.args or {}
  local o = M.options(a, kind)
  local sums, counts, logits = M.sequence_logps(model, batch, {
    gradient_checkpointing = state.gradient_checkpointing, checkpoint_policy = state.checkpoint_policy})
  local ref = not M.REFERENCE_FREE[o.kind] and M.reference_logps(state, batch) or nil
  local loss, metrics = M.loss(o.kind, sums, counts, ref, o)
  metrics["logits/chosen"], metrics["logits/rejected"] = logits.chosen, logits.rejected
  return loss, metrics
end

return M
