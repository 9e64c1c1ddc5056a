-- GRPO against TRL 0.24's own GRPOTrainer (tests/ref/make_grpo_goldens.py:
-- _compute_loss and _get_per_token_logps_and_entropies on fixed prompts and
-- completions through the tiny llama with a seeded LoRA adapter): per-token
-- log-probs under logits / temperature (policy and adapter-off reference), the
-- advantages, the loss of each loss_type with and without clipping, its kl and
-- clip_ratio/region_mean and the adapter gradients; the formula's gradient
-- against finite differences; the bundled reward recipes; and stage grpo's
-- refusals before a model loads.
local t = lfl.test
local trainer = require("lfl.train.trainer")
local grpo = require("lfl.train.grpo")
local fmt = string.format
local root = lfl.home .. "/tests/golden/"

local TOL_ABS, TOL_REL, GRAD_TOL = 1e-5, 1e-5, 1e-4

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local doc = lfl.json.decode(read(root .. "grpo/grpo.json"), "grpo.json")
local gold = lfl.safetensors.load(root .. "grpo/grpo.safetensors")
local verbose = os.getenv("LFL_TEST_VERBOSE")

local function close(got, want, what)
  t.assert(math.abs(got - want) <= TOL_ABS + TOL_REL * math.abs(want),
    fmt("%s: %.8g, TRL %.8g (diff %.3g)", what, got, want, got - want))
end

local function rel_err(a, b)
  local d = a:double() - b:double()
  return math.sqrt((d * d):sum():item()) / math.max(math.sqrt((b:double() * b:double()):sum():item()), 1e-30)
end

local function adapter_tensor(m, key)
  local mod, kind = key:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
  return mod and m.adapters[mod][kind]
end

local m = lfl.model.load(root .. "models/llama")
trainer.setup_method(m, {finetuning_type = "lora", lora_rank = doc.lora.r, lora_alpha = doc.lora.alpha,
  lora_dropout = 0, lora_target = "all", learning_rate = 1e-3, weight_decay = 0})
lfl.no_grad(function()
  for k, v in pairs(gold) do
    local key = k:match("^init%.(.+)$")
    if key then adapter_tensor(m, key):copy_(v) end
  end
end)

local G = doc.num_generations
local seqs = {}
for b, c in ipairs(doc.completions) do
  local p = doc.prompts[math.floor((b - 1) / G) + 1]
  local ids, labels = {}, {}
  for _, id in ipairs(p) do ids[#ids + 1] = id; labels[#labels + 1] = -100 end
  for _, id in ipairs(c) do ids[#ids + 1] = id; labels[#labels + 1] = id end
  seqs[b] = {input_ids = ids, labels = labels}
end

local cases = {}

cases.advantages = function()
  local adv, sd = grpo.advantages(doc.rewards, G)
  for i, want in ipairs(doc.advantages) do close(adv[i], want, "advantage " .. i) end
  t.assert(sd > 0)
  -- a group of equal rewards has zero advantages (TRL's + 1e-4 keeps it finite)
  local z = grpo.advantages({1, 1, 1, 0, 1, 2}, 3)
  t.assert(z[1] == 0 and z[2] == 0 and z[3] == 0 and z[4] < 0 and z[6] > 0)
end

cases.token_logps = function()
  local lp = lfl.no_grad(function() return grpo.token_logps(m, seqs, {temperature = doc.temperature}) end)
  local ref = lfl.no_grad(function()
    return m:with_adapter(false, grpo.token_logps, m, seqs, {temperature = doc.temperature})
  end)
  local k = 0
  for b, want in ipairs(doc.policy_logps) do
    for j = 1, #want do
      k = k + 1
      close(lp[k], want[j], fmt("policy log-prob %d.%d", b, j))
      close(ref[k], doc.reference_logps[b][j], fmt("reference log-prob %d.%d", b, j))
    end
  end
  t.assert_eq(k, lp:numel())
end

for _, case in ipairs(doc.cases) do
  cases[case.name] = function()
    for _, mod in ipairs(m.lora.modules) do m.adapters[mod].A.grad, m.adapters[mod].B.grad = nil, nil end
    local c = case.args
    local loss, mt = grpo.completions_loss(m, seqs, doc.advantages, {beta = c.beta, epsilon = c.epsilon,
      loss_type = c.loss_type, max_completion_length = doc.max_completion_length, temperature = doc.temperature,
      old = c.old and doc.old_logps or nil})
    close(loss:item(), case.loss, case.name .. " loss")
    if case.metrics.kl then close(mt.kl, case.metrics.kl, case.name .. " kl") else t.assert(mt.kl == nil) end
    close(mt.clip_ratio, case.metrics["clip_ratio/region_mean"], case.name .. " clip_ratio")
    loss:backward()
    local worst, count = 0, 0
    for k, want in pairs(gold) do
      local key = k:match("^" .. case.name:gsub("%-", "%%-") .. "%.grad%.(.+)$")
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
  local seq = {
    {logp = {-1.2, -0.4, -2.0}, old = {-1.0, -0.9, -2.1}, ref = {-1.1, -0.5, -1.7}, adv = 0.8},
    {logp = {-0.3, -3.1}, old = {-0.6, -2.9}, ref = {-0.2, -3.0}, adv = -1.1},
  }
  for _, lt in ipairs({"dapo", "grpo", "bnpo", "dr_grpo"}) do
    local o = {beta = 0.07, epsilon = 0.2, loss_type = lt, max_completion_length = 5}
    local _, g = grpo.formula(seq, o)
    for b, s in ipairs(seq) do
      for k = 1, #s.logp do
        local keep, h = s.logp[k], 1e-6
        s.logp[k] = keep + h; local lp = grpo.formula(seq, o)
        s.logp[k] = keep - h; local lm = grpo.formula(seq, o)
        s.logp[k] = keep
        local fd = (lp - lm) / (2 * h)
        t.assert(math.abs(fd - g[b][k]) <= 1e-6 + 1e-5 * math.abs(fd), fmt("%s %d.%d: %.9g vs %.9g", lt, b, k, g[b][k], fd))
      end
    end
  end
end

cases.reward_recipes = function()
  local R = lfl.recipes
  local exact, format, length = R.load("rewards", "exact_answer"), R.load("rewards", "format"), R.load("rewards", "length")
  t.assert_eq(exact("What is 2 + 3?", "It is 5.", {answer = "5"}), 1)
  t.assert_eq(exact("What is 2 + 3?", "6", {answer = "5"}), 0)
  t.assert_eq(exact("q", "no number", {answer = "5"}), 0)
  t.assert_eq(format("q", " 12 ", {format_pattern = "^%s*%-?%d+%.?%s*$"}), 1)
  t.assert_eq(format("q", "it is 12", {format_pattern = "^%s*%-?%d+%.?%s*$"}), 0)
  t.assert_eq(length("q", "short", {length_target = 16}), 1)
  t.assert_close(length("q", string.rep("x", 32), {length_target = 16}), 0.5, 1e-12)
end

cases.refusals = function()
  local base = {model_name_or_path = "/nonexistent/model", stage = "grpo", dataset = "arith_demo", template = "smollm",
                output_dir = "/tmp/x", finetuning_type = "lora"}
  local function bad(over, msg)
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    for k, v in pairs(over) do r[k] = v end
    t.assert_error(function() lfl.args.resolve(r, {}, "test") end, msg)
  end
  bad({}, "stage grpo needs reward_funcs")
  bad({reward_funcs = {"exact_answer", "nosuch"}}, "reward_funcs[2]: unknown reward function 'nosuch' (reward recipes found: exact_answer, format, length")
  bad({reward_funcs = "exact_answer", num_generations = 1}, "num_generations: expected an integer >= 2, got 1")
  bad({reward_funcs = "exact_answer", grpo_epsilon = 1.5}, "grpo_epsilon: expected a number in (0, 1), got 1.5")
  bad({reward_funcs = "exact_answer", grpo_loss_type = "ppo"}, 'grpo_loss_type: expected one of grpo, bnpo, dr_grpo, dapo, got "ppo"')
  bad({reward_funcs = "exact_answer", temperature = 0}, "temperature must be > 0")
  bad({reward_funcs = {42}}, "reward_funcs[1] must be a function or a reward recipe name")
  -- a function is accepted as is
  local a = lfl.args.resolve((function()
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    r.reward_funcs = {function() return 1 end, "length"}
    return r
  end)(), {}, "test")
  local fs = grpo.reward_functions(a)
  t.assert_eq(#fs, 2); t.assert_eq(fs[1].name, "reward_1"); t.assert_eq(fs[2].name, "length")
end

cases.prepare_rows = function()
  local dir = lfl.home .. "/../shared/data/tokenizers/llama3"
  if not lfl.fs.isdir(dir) then print("      skipped: " .. dir .. " is absent"); return end
  local tok = lfl.tokenizer.load(dir)
  local ap = lfl.approach.load("grpo")
  local ex = {prompt = {{role = "user", content = "What is 2 + 3? Reply with the number only."}},
              response = {{role = "assistant", content = "5"}}, system = "", tools = ""}
  local a = {template = "llama3", cutoff_len = 1024}
  local rows = ap.prepare({ex}, {tokenizer = tok, template = lfl.template.get("llama3"), args = a})
  t.assert_eq(#rows, 1)
  t.assert_eq(tok:decode(rows[1].query_ids), "What is 2 + 3? Reply with the number only.")
  t.assert_eq(tok:decode(rows[1].answer_ids), "5")
  local full = rows[1].prompt_ids
  -- the prompt ends with the assistant opener; cutoff_len keeps its last tokens
  a.cutoff_len = 6
  local short = ap.prepare({ex}, {tokenizer = tok, template = lfl.template.get("llama3"), args = a})[1].prompt_ids
  t.assert_eq(#short, 6)
  for i = 1, 6 do t.assert_eq(short[i], full[#full - 6 + i]) end
  -- a turn-less example is dropped
  local _, dropped = ap.prepare({{prompt = {}, response = {}, system = "", tools = ""}},
    {tokenizer = tok, template = lfl.template.get("llama3"), args = a})
  t.assert_eq(dropped, 1)
end

t.suite("grpo", cases)
t.run()
