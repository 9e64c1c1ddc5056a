-- PPO's formulas against TRL 0.9.6's own PPOTrainer (tests/ref/make_ppo_goldens.py:
-- compute_rewards, compute_advantages with and without whiten_rewards and with
-- other gamma / lam, loss with small and clipped moves and a batch over
-- ratio_threshold, with the autograd gradients of pg_loss + vf_coef * vf_loss;
-- the AdaptiveKLController's updates; RunningMoments' score normalisation),
-- the PPOConfig defaults lfl uses, and stage ppo's refusals before a model loads.
local t = lfl.test
local ppo = require("lfl.train.ppo")
local fmt = string.format

local f = assert(io.open(lfl.home .. "/tests/golden/ppo/ppo.json", "rb"))
local doc = lfl.json.decode(f:read("*a"), "ppo.json")
f:close()

local TOL = 1e-9
local function close(got, want, what, tol)
  tol = tol or TOL
  t.assert(type(got) == "number" and math.abs(got - want) <= tol + tol * math.abs(want),
    fmt("%s: %s, TRL %.12g", what, tostring(got), want))
end
local function close_lists(got, want, what, tol)
  t.assert_eq(#got, #want, what .. ": sequences")
  for b = 1, #want do
    t.assert_eq(#got[b], #want[b], fmt("%s[%d]: tokens", what, b))
    for k = 1, #want[b] do close(got[b][k], want[b][k], fmt("%s[%d][%d]", what, b, k), tol) end
  end
end

local cases = {}

cases.defaults_are_trl_096 = function()
  local d, c = doc.defaults, ppo.CONFIG
  for _, k in ipairs({"cliprange", "cliprange_value", "vf_coef", "gamma", "lam", "init_kl_coef", "horizon",
                      "ratio_threshold"}) do
    t.assert_eq(c[k], d[k], k)
  end
  t.assert_eq(d.kl_penalty, "kl"); t.assert_eq(d.adap_kl_ctrl, true)
end

cases.rewards_and_gae = function()
  for _, g in ipairs(doc.gae) do
    local c = g.config
    local rewards, nonscore, kls = ppo.compute_rewards(g.scores, g.logprobs, g.ref_logprobs, c.kl_coef)
    close_lists(rewards, g.rewards, g.name .. " rewards")
    close_lists(nonscore, g.non_score_rewards, g.name .. " non_score_rewards")
    close_lists(kls, g.kls, g.name .. " kls")
    local adv, ret = ppo.advantages(g.values, rewards, {gamma = c.gamma, lam = c.lam, whiten_rewards = c.whiten_rewards,
      pad_tail = g.pad_tail})
    -- TRL's masked_var takes its Bessel factor n / (n - 1) from integer tensors: a float32 quotient
    close_lists(adv, g.advantages, g.name .. " advantages", 1e-7)
    close_lists(ret, g.returns, g.name .. " returns", g.config.whiten_rewards and 1e-7 or nil)
  end
end

cases.policy_and_value_loss = function()
  for _, L in ipairs(doc.loss) do
    local mb = {}
    for b = 1, #L.logprobs do
      mb[b] = {old = L.old_logprobs[b], values = L.values[b], logp = L.logprobs[b], vpred = L.vpreds[b],
               adv = L.advantages[b], ret = L.returns[b]}
    end
    local pg, vf, glp, gv, st = ppo.loss(mb, L.config)
    close(pg, L.pg_loss, L.name .. " pg_loss")
    close(vf, L.vf_loss, L.name .. " vf_loss")
    close(pg + L.config.vf_coef * vf, L.total, L.name .. " total")
    -- TRL casts the fractions to float32
    close(st.clipfrac, L.clipfrac, L.name .. " clipfrac", 1e-7)
    close(st.vf_clipfrac, L.vf_clipfrac, L.name .. " vf_clipfrac", 1e-7)
    close(st.approxkl, L.approxkl, L.name .. " approxkl")
    close(st.policykl, L.policykl, L.name .. " policykl")
    close_lists(glp, L.grad_logprobs, L.name .. " d/dlogprobs")
    close_lists(gv, L.grad_vpreds, L.name .. " d/dvpreds")
    t.assert_eq(st.skipped == true, L.name == "ratio_threshold", L.name .. ": skipped")
  end
  -- the clipped case clips both losses somewhere, so the branches are exercised
  t.assert(doc.loss[2].clipfrac > 0 and doc.loss[2].vf_clipfrac > 0)
end

cases.adaptive_kl_controller = function()
  local k = doc.kl_controller
  local ctl = ppo.kl_controller(k.init, k.target, k.horizon)
  for i, u in ipairs(k.updates) do
    ctl:update(u.current, u.n_steps)
    close(ctl.value, u.value, fmt("kl coef after update %d", i), 1e-12)
  end
end

cases.score_normalisation = function()
  local rm = ppo.running_moments()
  for i, s in ipairs(doc.running_moments) do
    local out = ppo.normalise_scores(rm, s.scores)
    -- TRL keeps the moments in float32
    close(rm.mean, s.mean, fmt("batch %d mean", i), 1e-6)
    close(rm.std, s.std, fmt("batch %d std", i), 1e-6)
    for j = 1, #out do close(out[j], s.normalised[j], fmt("batch %d score %d", i, j), 1e-6) end
  end
end

cases.refusals = function()
  local dir = os.tmpname()
  os.remove(dir)
  lfl.fs.mkdir(dir)
  local base = {model_name_or_path = "/nonexistent/model", stage = "ppo", dataset = "arith_demo", template = "smollm",
                output_dir = "/tmp/x", finetuning_type = "lora", reward_model = dir}
  local function bad(over, msg)
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    for k, v in pairs(over) do if v == "nil" then r[k] = nil else r[k] = v end end
    t.assert_error(function() lfl.args.resolve(r, {}, "test") end, msg)
  end
  bad({reward_model = "nil"}, "stage ppo: reward_model is required")
  -- the reward model's files are checked when training starts, before the model loads
  local function bad_files(over, msg)
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    for k, v in pairs(over) do r[k] = v end
    r.output_dir = dir .. "/out"
    t.assert_error(function() lfl.trainer(r) end, msg)
  end
  bad_files({reward_model = dir .. "/none"}, "reward_model: " .. dir .. "/none is not a directory")
  bad_files({}, "has no adapter_config.json (reward_model_type lora takes the LoRA adapter")
  local cfg = io.open(dir .. "/adapter_config.json", "w"); cfg:write("{}"); cfg:close()
  bad_files({}, "has no value_head.safetensors")
  bad_files({reward_model_type = "full", finetuning_type = "lora"}, "has no value_head.safetensors")
  lfl.safetensors.save(dir .. "/value_head.safetensors", {["v_head.summary.weight"] = lfl.zeros(1, 4),
    ["v_head.summary.bias"] = lfl.zeros(1)})
  -- past the checks, the (missing) model is what fails
  bad_files({}, "/nonexistent/model")
  t.assert(lfl.args.resolve(base, {}, "test"), "a reward adapter with its head is taken")
  bad({reward_model_type = "api"}, "reward_model_type: 'api' is a LlamaFactory value lfl does not implement")
  bad({finetuning_type = "full"}, "reward_model_type lora needs finetuning_type lora")
  bad({finetuning_type = "full", reward_model_type = "full"}, "needs finetuning_type lora")
  bad({ref_model = dir}, "a separate reference model is not supported")
  bad({resume_from_checkpoint = true}, "PPO runs cannot resume")
  bad({val_size = 0.1}, "PPO has no evaluation")
  bad({ppo_epochs = 0}, "ppo_epochs: expected an integer >= 1")
  bad({reward_model_adapters = "x"}, "reward_model_adapters")
  -- ppo's keys are refused on another stage
  bad({stage = "sft", reward_model = "nil", ppo_target = 3}, "ppo_target: 3 has no effect: it applies to stage ppo")
  lfl.fs.remove(dir)
end

t.suite("ppo", cases)
t.run()
