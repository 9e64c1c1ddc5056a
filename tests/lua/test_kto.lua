-- KTO conformance against LlamaFactory's own trainer (tests/ref/make_kto_goldens.py:
-- CustomKTOTrainer.get_batch_loss_metrics with TRL 0.24's kto_loss and PEFT):
-- on fixed unpaired examples and their mismatched KL pairs through the tiny
-- llama with a seeded LoRA adapter, the kto loss (plain, kto_chosen_weight /
-- kto_rejected_weight, pref_ftx), its logged metrics and the adapter gradients
-- equal LlamaFactory's; the formula's gradient against finite differences;
-- the packed layout; and stage kto's refusals (no kto_tag column, a row whose
-- tag is not a boolean, bad arguments).
local t = lfl.test
local trainer = require("lfl.train.trainer")
local pref = require("lfl.train.pref")
local pw = require("lfl.data.pairwise")
local fmt = string.format
local root = lfl.home .. "/tests/golden/"

-- f32 forwards in both stacks, the formula in f64 (as test_pref_goldens)
local TOL_ABS, TOL_REL = 1e-5, 1e-5
local GRAD_TOL = 1e-4

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local doc = lfl.json.decode(read(root .. "kto/kto.json"), "kto.json")
local gold = lfl.safetensors.load(root .. "kto/kto.safetensors")
local verbose = os.getenv("LFL_TEST_VERBOSE")

local worst_scalar = 0
local function close(got, want, what)
  local tol = TOL_ABS + TOL_REL * math.abs(want)
  worst_scalar = math.max(worst_scalar, math.abs(got - want) / (1 + math.abs(want)))
  t.assert(math.abs(got - want) <= tol, fmt("%s: %.8g, LlamaFactory %.8g (diff %.3g)", what, got, want, got - want))
end

local function rel_err(a, b)
  local d = a:double() - b:double()
  return math.sqrt((d * d):sum():item()) / math.max(math.sqrt((b:double() * b:double()):sum():item()), 1e-30)
end

local function adapter_tensor(m, key)
  local mod, kind = key:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
  return mod and m.adapters[mod][kind]
end

local function policy()
  local m = lfl.model.load(root .. "models/llama")
  trainer.setup_method(m, {finetuning_type = "lora", lora_rank = doc.lora.r, lora_alpha = doc.lora.alpha,
    lora_dropout = 0, lora_target = "all", learning_rate = 1e-3, weight_decay = 0})
  lfl.no_grad(function()
    for k, v in pairs(gold) do
      local key = k:match("^init%.(.+)$")
      if key then adapter_tensor(m, key):copy_(v) end
    end
  end)
  return m
end

local m = policy()
local batch = pw.collate_kto_packed(doc.rows)
local kto = lfl.approach.load("kto")
local n = #doc.rows
local cases = {}

cases.packed_layout = function()
  t.assert_eq(batch.n, n)
  local seg, pos = batch.segments:reshape(-1), batch.position_ids:reshape(-1)
  local k = 0
  for s = 1, 2 * n do
    local row = doc.rows[(s - 1) % n + 1]
    local ids = s <= n and row.input_ids or row.kl_input_ids
    for j = 1, #ids do
      k = k + 1
      t.assert_eq(seg[k], s); t.assert_eq(pos[k], j - 1); t.assert_eq(batch.input_ids[1][k], ids[j])
    end
  end
  t.assert_eq(k, batch.input_ids:size(2))
  for i = 1, n do t.assert_eq(batch.kto_tags[i], doc.rows[i].kto_tag) end
end

cases.sequence_logps = function()
  local sums, counts = lfl.no_grad(function() return pref.sequence_logps(m, batch) end)
  local ref = pref.reference_logps({model = m, reference = {kind = "adapter_off"}}, batch)
  for i = 1, n do
    close(sums[i], doc.policy_logps[i], "policy log-prob of target " .. i)
    close(sums[n + i], doc.policy_kl_logps[i], "policy log-prob of KL pair " .. i)
    close(ref[i], doc.reference_logps[i], "reference log-prob of target " .. i)
    close(ref[n + i], doc.reference_kl_logps[i], "reference log-prob of KL pair " .. i)
    t.assert_eq(counts[i], doc.counts[i]); t.assert_eq(counts[n + i], doc.kl_counts[i])
  end
end

for _, case in ipairs(doc.cases) do
  cases[case.name] = function()
    local a = {pref_loss = "sigmoid", finetuning_type = "lora", stage = "kto"}
    for k, v in pairs(case.args) do a[k] = v end
    kto.check_args(a)
    for _, mod in ipairs(m.lora.modules) do m.adapters[mod].A.grad, m.adapters[mod].B.grad = nil, nil end
    local loss, metrics = kto.loss(m, batch, {args = a, model = m, reference = {kind = "adapter_off"}})
    close(loss:item(), case.loss, case.name .. " loss")
    for k, want in pairs(case.metrics) do
      if k:match("^logits/") then want = doc.trl_logits[k:match("/(.+)$")] end -- TRL's masked mean
      t.assert(metrics[k] ~= nil, case.name .. ": metric " .. k .. " not logged")
      close(metrics[k], want, case.name .. " " .. k)
    end
    for k in pairs(metrics) do t.assert(case.metrics[k] ~= nil, case.name .. ": extra metric " .. k) end
    loss:backward()
    local worst, count = 0, 0
    for k, want in pairs(gold) do
      local key = k:match("^" .. case.name .. "%.grad%.(.+)$")
      if key then
        local p = adapter_tensor(m, key)
        t.assert(p and p.grad, case.name .. ": no gradient for " .. key)
        local e = rel_err(p.grad, want)
        t.assert(e <= GRAD_TOL, fmt("%s: gradient of %s relative error %.3g", case.name, key, e))
        worst, count = math.max(worst, e), count + 1
      end
    end
    t.assert(count == 2 * #m.lora.modules, fmt("%s: %d gradients compared", case.name, count))
    if verbose then print(fmt("      %s: %d gradients, worst relative error %.2g", case.name, count, worst)) end
  end
end

cases.formula_gradient = function()
  local tags = {true, false, true, false, true}
  local p, r = {-3.1, -7.4, -2.2, -5.0, -4.4}, {-3.3, -7.0, -2.5, -5.3, -4.0}
  local klp, klr = {-6.0, -8.1, -3.0, -7.7, -5.5}, {-6.4, -8.0, -3.3, -7.9, -5.6}
  local len = {5, 2, 4, 3, 6}
  for _, o in ipairs({{beta = 0.3, wc = 1, wr = 1}, {beta = 0.8, wc = 1.4, wr = 0.6, ftx = 0.5}}) do
    local _, g = pref.kto_formula(tags, p, r, klp, klr, len, o)
    local h = 1e-6
    for i = 1, #p do
      local keep = p[i]
      p[i] = keep + h; local lp = pref.kto_formula(tags, p, r, klp, klr, len, o)
      p[i] = keep - h; local lm = pref.kto_formula(tags, p, r, klp, klr, len, o)
      p[i] = keep
      local fd = (lp - lm) / (2 * h)
      t.assert(math.abs(fd - g[i]) <= 1e-6 + 1e-5 * math.abs(fd), fmt("p[%d]: %.9g vs %.9g", i, g[i], fd))
    end
  end
  -- the KL estimate is clamped at 0 (policy below the reference on the KL pairs)
  local _, _, mm = pref.kto_formula({true}, {-1}, {-1}, {-9}, {-1}, {1}, {beta = 0.1, wc = 1, wr = 1})
  t.assert_eq(mm.kl, 0)
  -- only desirable examples: no rejected metrics, no margin
  t.assert(mm["rewards/rejected"] == nil and mm["rewards/margins"] == nil and mm["rewards/chosen"] == 0)
end

cases.refusals = function()
  local dir = os.tmpname() .. "_kto"
  lfl.fs.mkdir(dir)
  local function write(name, s) local f = assert(io.open(dir .. "/" .. name, "wb")); f:write(s); f:close() end
  write("dataset_info.json", [[{
  "notag": {"file_name": "a.json"},
  "tagged": {"file_name": "b.json", "columns": {"prompt": "instruction", "response": "output", "kto_tag": "label"}}}]])
  write("a.json", [[[{"instruction": "hi", "output": "yo"}] ]])
  write("b.json", [[[{"instruction": "hi", "output": "yo", "label": true},
                    {"instruction": "q", "output": "a", "label": "yes"}] ]])
  t.assert_error(function() lfl.data.load({dataset = "notag", dataset_dir = dir, stage = "kto"}) end,
    "has no kto_tag column, which stage kto needs")
  t.assert_error(function() lfl.data.load({dataset = "tagged", dataset_dir = dir, stage = "kto"}) end,
    "b.json:2: stage kto needs column 'label' (kto_tag) to be true (desirable) or false (undesirable), got string yes")
  local function bad(over, msg)
    local a = {pref_loss = "sigmoid", pref_beta = 0.1, pref_ftx = 0, kto_chosen_weight = 1, kto_rejected_weight = 1}
    for k, v in pairs(over) do a[k] = v end
    t.assert_error(function() kto.check_args(a) end, msg)
  end
  bad({pref_beta = 0}, "pref_beta must be a number > 0")
  bad({kto_rejected_weight = -1}, "kto_rejected_weight must be a number >= 0")
  bad({pref_loss = "ipo"}, "pref_loss does not apply to stage kto")
  bad({pref_ftx = -1}, "pref_ftx must be >= 0")
end

cases.zz_report = function()
  if verbose then print(fmt("      worst scalar |diff| / (1 + |value|): %.2g", worst_scalar)) end
end

t.suite("kto", cases)
t.run()
