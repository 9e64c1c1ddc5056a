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
local function values(x) local d, o = x:double(), {} for i = 1, d:numel() do o[i] = d[i] end return o end
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
  bad({reward_model_type = "api"}, "reward_model_type api takes the reward server's URL as reward_model")
  t.assert(lfl.args.resolve((function()
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    r.reward_model_type, r.reward_model = "api", "http://127.0.0.1:1/v1/score/evaluation"
    return r
  end)(), {}, "test"), "an api reward model is a URL")
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

-- The reward model on one base: adapter "reward" + its head switched in for
-- scoring, the policy adapter active again afterwards; the same reward
-- adapter merged into a second model (reward_model_type full) scores the same.
-- The policy forward's per-token log-probs and values equal those of each
-- sequence run alone (packing keeps sequences apart).
cases.reward_adapter_switch = function()
  local peft = require("lfl.train.peft")
  local vh = require("lfl.train.value_head")
  local dir = lfl.home .. "/tests/golden/models/llama"
  lfl.manual_seed(11)
  local m = lfl.model.load(dir)
  local function randomise(ad)
    for _, mod in ipairs(ad.modules) do
      local A, B = ad:get(mod)
      lfl.no_grad(function() B:copy_(lfl.zeros(B:size()):normal_(0, 0.3)) end)
    end
  end
  -- the reward model as stage rm leaves it: an adapter folder with value_head.safetensors
  local rdir = os.tmpname()
  os.remove(rdir)
  local rm_ad = peft.add_lora(m, {rank = 4, name = "default"})
  randomise(rm_ad)
  peft.save_adapter(m, rdir)
  local H = m.arch.hidden
  local head = vh.new(H)
  vh.save(head, rdir)
  m.lora = nil
  -- the policy: its own adapter, active
  local pol = peft.add_lora(m, {rank = 2, name = "default"})
  randomise(pol)
  local reward = ppo.setup_reward(m, {reward_model = rdir, reward_model_type = "lora"})
  t.assert_eq(m.lora.name, "default", "the policy adapter stays active")
  t.assert_eq(reward.kind, "lora")
  local seqs = {{5, 9, 12, 3, 7}, {4, 4, 8}, {30, 2, 19, 6, 6, 1, 11}}
  local got = ppo.score(m, reward, seqs)
  t.assert_eq(m.lora.name, "default", "the policy adapter is active again after scoring")
  -- each sequence alone, with the reward adapter active by hand
  for b, ids in ipairs(seqs) do
    local want = lfl.no_grad(function()
      return m:with_adapter("reward", function()
        local h = require("lfl.model.decoder").hidden(m, lfl.tensor({ids}, "i64"), {})
        return lfl.linear(h[1][#ids]:reshape(1, H), reward.head.weight, reward.head.bias):item()
      end)
    end)
    t.assert_close(got[b], want, 1e-5, fmt("score %d", b))
  end
  -- the scores differ from the policy's or the base's (the switch happened)
  local base_h = lfl.no_grad(function()
    return m:with_adapter(false, function()
      return require("lfl.model.decoder").hidden(m, lfl.tensor({seqs[1]}, "i64"), {})
    end)
  end)
  local base_score = lfl.linear(base_h[1][#seqs[1]]:reshape(1, H), reward.head.weight, reward.head.bias):item()
  t.assert(math.abs(base_score - got[1]) > 1e-4, "the reward adapter changes the score")
  -- reward_model_type full: the adapter merged into a separate model folder
  local fdir = rdir .. "_full"
  local m2 = lfl.model.load(dir)
  peft.load_adapter(m2, rdir, "default")
  peft.merge(m2)
  m2:save(fdir, {tokenizer = false})
  vh.save(head, fdir)
  local full = ppo.setup_reward(m, {reward_model = fdir, reward_model_type = "full"})
  t.assert_eq(full.kind, "full")
  local got_full = ppo.score(m, full, seqs)
  for b = 1, #seqs do t.assert_close(got_full[b], got[b], 1e-5, fmt("full score %d", b)) end
  -- the policy forward: packed log-probs and values = each sequence alone
  local rows = {}
  for b, ids in ipairs(seqs) do
    local labels = {}
    for k, id in ipairs(ids) do labels[k] = k <= 2 and -100 or id end
    rows[b] = {input_ids = ids, labels = labels}
  end
  local lp, v = lfl.no_grad(function() return ppo.forward(m, rows, {head = head}) end)
  local lens = {}
  for b, ids in ipairs(seqs) do lens[b] = #ids - 2 end
  local lps, vs = ppo.split(values(lp), lens), ppo.split(values(v), lens)
  for b, r in ipairs(rows) do
    local lp1, v1 = lfl.no_grad(function() return ppo.forward(m, {r}, {head = head}) end)
    lp1, v1 = values(lp1), values(v1)
    t.assert_eq(#lp1, lens[b])
    for k = 1, lens[b] do
      t.assert_close(lps[b][k], lp1[k], 1e-5, fmt("logp %d.%d", b, k))
      t.assert_close(vs[b][k], v1[k], 1e-5, fmt("value %d.%d", b, k))
    end
  end
  lfl.fs.remove(rdir)
  lfl.fs.remove(fdir)
end

t.suite("ppo", cases)
t.run()
