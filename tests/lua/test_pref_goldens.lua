-- Preference conformance against LlamaFactory's own trainers
-- (tests/ref/make_pref_goldens.py: CustomDPOTrainer.get_batch_loss_metrics and
-- PairwiseTrainer.compute_loss with TRL 0.24 and PEFT): on fixed pairs through
-- the tiny llama with a seeded LoRA adapter, the dpo (sigmoid, label
-- smoothing, ftx, hinge, ipo, kto_pair), orpo and simpo losses, their logged
-- metrics and the adapter gradients, and the rm loss, scores, accuracy and the
-- adapter + value-head gradients equal LlamaFactory's; the reference pass with
-- the adapter off equals the base model's log-probs.
local t = lfl.test
local trainer = require("lfl.train.trainer")
local pref = require("lfl.train.pref")
local vh = require("lfl.train.value_head")
local pw = require("lfl.data.pairwise")
local fmt = string.format
local root = lfl.home .. "/tests/golden/"

-- absolute + relative on losses, metrics, scores and per-sequence log-probs
-- (f32 forwards in both stacks; the formulas here run in f64): measured
-- |diff| / (1 + |value|) <= 6e-7
local TOL_ABS, TOL_REL = 1e-5, 1e-5
-- relative Frobenius error of each gradient tensor (absolute where the
-- golden is zero): measured <= 1e-6
local GRAD_TOL = 1e-4

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return lfl.json.decode(s, path)
end

local doc = read_json(root .. "pref/pref.json")
local gold = lfl.safetensors.load(root .. "pref/pref.safetensors")
local verbose = os.getenv("LFL_TEST_VERBOSE")

local worst_scalar = 0
local function close(got, want, what)
  local tol = TOL_ABS + TOL_REL * math.abs(want)
  worst_scalar = math.max(worst_scalar, math.abs(got - want) / (1 + math.abs(want)))
  t.assert(math.abs(got - want) <= tol, fmt("%s: %.8g, LlamaFactory %.8g (diff %.3g)", what, got, want, got - want))
end

local function rel_err(a, b)
  local d = a:double() - b:double()
  local num = math.sqrt((d * d):sum():item())
  local den = math.sqrt((b:double() * b:double()):sum():item())
  return num / math.max(den, 1e-30)
end

-- the PEFT key "base_model.model.<mod>.lora_A.weight" -> lfl's tensor
local function adapter_tensor(m, key)
  local mod, kind = key:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
  return mod and m.adapters[mod][kind]
end

-- the tiny llama with the golden's adapter, set up as the trainer sets LoRA up
local function policy()
  local m = lfl.model.load(root .. "models/llama")
  local a = {finetuning_type = "lora", lora_rank = doc.lora.r, lora_alpha = doc.lora.alpha, lora_dropout = 0,
             lora_target = "all", learning_rate = 1e-3, weight_decay = 0}
  trainer.setup_method(m, a)
  local n = 0
  lfl.no_grad(function()
    for k, v in pairs(gold) do
      local key = k:match("^init%.(.+)$")
      if key then adapter_tensor(m, key):copy_(v); n = n + 1 end
    end
  end)
  t.assert(n == 2 * #m.lora.modules, fmt("%d initial adapter tensors for %d modules", n, #m.lora.modules))
  return m
end

local function zero_grads(m, head)
  for _, mod in ipairs(m.lora.modules) do
    local e = m.adapters[mod]
    e.A.grad, e.B.grad = nil, nil
  end
  if head then head.weight.grad, head.bias.grad = nil, nil end
end

local function check_grads(m, case, head)
  local worst, count = 0, 0
  for k, want in pairs(gold) do
    local key = k:match("^" .. case .. "%.grad%.(.+)$")
    if key then
      local p = adapter_tensor(m, key)
      if not p and head then p = key == vh.WEIGHT and head.weight or key == vh.BIAS and head.bias or nil end
      t.assert(p, case .. ": no lfl tensor for " .. key)
      t.assert(p.grad, case .. ": " .. key .. " got no gradient")
      -- a gradient that is zero in exact arithmetic (the head's bias moves both
      -- scores of a pair alike) is compared in absolute terms
      local wn = math.sqrt((want:double() * want:double()):sum():item())
      local e = wn < 1e-6 and t.max_abs_diff(p.grad, want) or rel_err(p.grad, want)
      t.assert(e <= GRAD_TOL, fmt("%s: gradient of %s relative error %.3g", case, key, e))
      if e > worst then worst = e end
      count = count + 1
    end
  end
  t.assert(count >= 2 * #m.lora.modules, fmt("%s: %d gradients compared", case, count))
  if verbose then print(fmt("      %s: %d gradients, worst relative error %.2g", case, count, worst)) end
end

-- the recipe arguments of a case (LlamaFactory's defaults under it)
local function args_of(case)
  local a = {pref_beta = 0.1, pref_ftx = 0, pref_loss = "sigmoid", dpo_label_smoothing = 0, simpo_gamma = 0.5,
             finetuning_type = "lora", stage = case.stage}
  for k, v in pairs(case.args) do a[k] = v end
  return a
end

local m = policy()
local batch = pw.collate_pairwise_packed(doc.pairs)
local dpo = lfl.approach.load("dpo")
local cases = {}

cases.packed_batch_layout = function()
  -- chosen sequences first, then rejected; positions restart; lengths
  local n = #doc.pairs
  t.assert_eq(batch.n, n)
  local seg, pos = batch.segments:reshape(-1), batch.position_ids:reshape(-1)
  local k = 0
  for s = 1, 2 * n do
    local row = doc.pairs[(s - 1) % n + 1]
    local ids = s <= n and row.chosen_input_ids or row.rejected_input_ids
    t.assert_eq(batch.lengths[s], #ids)
    for j = 1, #ids do
      k = k + 1
      t.assert_eq(seg[k], s); t.assert_eq(pos[k], j - 1); t.assert_eq(batch.input_ids[1][k], ids[j])
    end
  end
  t.assert_eq(k, batch.input_ids:size(2))
end

cases.sequence_logps_and_adapter_off = function()
  local sums, counts = lfl.no_grad(function() return pref.sequence_logps(m, batch) end)
  -- the head's mean row is computed once while the head stays the same (t:data_ptr names it)
  local W = m.params["lm_head.weight"]
  t.assert(W:data_ptr() == m.params["lm_head.weight"]:data_ptr() and W:data_ptr() ~= W:clone():data_ptr())
  local cached = m._pref_wbar.v
  lfl.no_grad(function() return pref.sequence_logps(m, batch) end)
  t.assert(m._pref_wbar.v == cached, "the mean head row is reused")
  for i, want in ipairs(doc.policy_logps) do
    close(sums[i], want, "policy log-prob of sequence " .. i)
    t.assert_eq(counts[i], doc.counts[i], "labelled tokens of sequence " .. i)
  end
  -- the reference: the same model with the adapter off ...
  local ref = pref.reference_logps({model = m, reference = {kind = "adapter_off"}}, batch)
  for i, want in ipairs(doc.reference_logps) do close(ref[i], want, "reference log-prob of sequence " .. i) end
  t.assert(m.lora and m.lora.enabled, "the adapter is back on after the reference pass")
  -- ... equals the base model loaded without any adapter, exactly
  local base = lfl.model.load(root .. "models/llama")
  local bsums = lfl.no_grad(function() return pref.sequence_logps(base, batch) end)
  for i = 1, #ref do t.assert_eq(ref[i], bsums[i], "adapter-off = base, sequence " .. i) end
  -- a frozen reference of a full run keeps the loaded tensors while the
  -- method trains private copies: changing those leaves the reference as it was
  local fr = pref.setup_reference(base, {finetuning_type = "full"})
  t.assert_eq(fr.kind, "frozen")
  local _, params = trainer.setup_method(base, {finetuning_type = "full", learning_rate = 1e-3, weight_decay = 0})
  lfl.no_grad(function() for _, p in ipairs(params) do p:copy_(p * 1.5) end end)
  local after = pref.reference_logps({model = base, reference = fr}, batch)
  local moved = lfl.no_grad(function() return pref.sequence_logps(base, batch) end)
  for i = 1, #ref do
    t.assert_eq(after[i], bsums[i], "frozen reference, sequence " .. i)
    t.assert(math.abs(moved[i] - bsums[i]) > 1e-3, "the trained copy moved, sequence " .. i)
  end
  t.assert(pref.describe_reference(fr, base, {finetuning_type = "full"}):find("frozen copy of the initial weights"))
  t.assert(fr.bytes > 0, "the frozen copy's memory is counted")
end

for _, case in ipairs(doc.cases) do
  if case.stage == "dpo" then
    cases[case.name] = function()
      local a = args_of(case)
      pref.check_args(a, "dpo")
      zero_grads(m)
      local state = {args = a, model = m, reference = pref.uses_reference(a) and {kind = "adapter_off"} or nil}
      local loss, metrics = dpo.loss(m, batch, state)
      close(loss:item(), case.loss, case.name .. " loss")
      for k, want in pairs(case.metrics) do
        if k:match("^logits/") then want = case.trl_logits[k:match("/(.+)$")] end -- TRL's masked mean
        t.assert(metrics[k] ~= nil, case.name .. ": metric " .. k .. " not logged")
        close(metrics[k], want, case.name .. " " .. k)
      end
      for k in pairs(metrics) do t.assert(case.metrics[k] ~= nil, case.name .. ": extra metric " .. k) end
      loss:backward()
      check_grads(m, case.name)
    end
  else
    cases[case.name] = function()
      local head = {weight = gold["v_head.init.weight"]:clone():requires_grad(),
                    bias = gold["v_head.init.bias"]:clone():requires_grad()}
      zero_grads(m, head)
      local rm = lfl.approach.load("rm")
      -- the approach's loss with dropout off (train = false) for a deterministic comparison
      local scores = vh.scores(m, head, batch, {train = false})
      for i, want in ipairs(case.scores) do close(scores[i], want, "score of sequence " .. i) end
      local loss, metrics = pref.rm_loss(scores, batch.n)
      close(loss:item(), case.loss, "rm loss")
      close(metrics.accuracy, case.metrics.accuracy, "rm accuracy")
      loss:backward()
      check_grads(m, case.name, head)
      -- the approach's own loss: the same value with the trainer's head (eval: no dropout)
      local l2 = lfl.no_grad(function() return rm.loss(m, batch, {value_head = head}) end)
      close(l2:item(), case.loss, "rm approach loss (no grad)")
    end
  end
end

-- the formulas' own gradients against finite differences (f64, every loss)
cases.formula_gradients = function()
  -- (away from kto_pair's clamp at a mean log-ratio of 0, where it has a kink)
  local pc, pr, rc, rr = {-3.1, -7.4, -2.2}, {-4.0, -6.1, -2.9}, {-3.3, -7.0, -2.5}, {-3.7, -6.6, -2.6}
  local apc, apr = {-0.61, -1.2, -0.35}, {-0.8, -0.9, -0.47}
  local lens = {5, 2, 4}
  for _, kind in ipairs(pref.LOSSES) do
    for _, o in ipairs({{beta = 0.3}, {beta = 0.7, ftx = 0.4, label_smoothing = kind == "sigmoid" and 0.15 or 0}}) do
      if not (kind == "kto_pair" and o.ftx) then
        o.gamma, o.chosen_len = 0.5, lens
        local c, r = pref.AVERAGED[kind] and apc or pc, pref.AVERAGED[kind] and apr or pr
        local ref_c, ref_r = not pref.REFERENCE_FREE[kind] and rc or nil, not pref.REFERENCE_FREE[kind] and rr or nil
        local _, gc, gr = pref.formula(kind, c, r, ref_c, ref_r, o)
        local h = 1e-6
        for i = 1, 3 do
          for side, vec, g in pairs({c = {c, gc}, r = {r, gr}}) do
            local v, gi = vec[1], vec[2]
            local keep = v[i]
            v[i] = keep + h; local lp = pref.formula(kind, c, r, ref_c, ref_r, o)
            v[i] = keep - h; local lm = pref.formula(kind, c, r, ref_c, ref_r, o)
            v[i] = keep
            local fd = (lp - lm) / (2 * h)
            t.assert(math.abs(fd - gi[i]) <= 1e-6 + 1e-5 * math.abs(fd),
              fmt("%s %s[%d]: gradient %.9g, finite difference %.9g", kind, side, i, gi[i], fd))
          end
        end
      end
    end
  end
end

cases.zz_report = function()
  if verbose then print(fmt("      worst scalar |diff| / (1 + |value|): %.2g", worst_scalar)) end
end

t.suite("pref_goldens", cases)
t.run()
