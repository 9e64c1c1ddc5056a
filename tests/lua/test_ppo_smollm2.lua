-- Stage ppo end to end on the real small model (SmolLM2-135M-Instruct, the
-- Q4_1 GGUF in ~/.cache/lfl/models): stage rm trains a LoRA reward model for a
-- few steps on recipes/data/preference_demo.json, then two PPO steps on the
-- prompts of recipes/data/arith_demo.json with that reward model attached as
-- the adapter "reward" on the policy's own base (reward_model_type lora),
-- ppo_score_norm on.
-- Checked: the run logs TRL's names with finite values; the first step's KL to
-- the reference (the adapter disabled) is exactly 0 (the policy starts as the
-- base) and the second's is not; the reward adapter and head stay as loaded
-- while the policy adapter and value head change; and on the last rollout
-- batch the updates moved the policy in the direction of the advantages
-- (sum over response tokens of (new - old log-prob) * advantage > 0) and the
-- value head towards the returns (a smaller squared error than the rollout's
-- values). Whether the mean reward rises takes more steps than CI has
-- (recipes/examples/lora_ppo.lua is the longer run).
local t = lfl.test
local ppo = require("lfl.train.ppo")
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_ppo_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_pposm"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end
local function values(x) local d, o = x:detach():double(), {} for i = 1, d:numel() do o[i] = d[i] end return o end
local function copy(x) return x:detach():double():clone() end
local function maxdiff(a, b) return (a - b):abs():max():item() end

t.suite("ppo_smollm2", {
  rm_then_ppo = function()
    local rm = lfl.trainer({model_name_or_path = model, stage = "rm", dataset = "preference_demo", template = "smollm",
      cutoff_len = 40, max_samples = 8, per_device_train_batch_size = 4, max_steps = 2, logging_steps = 1,
      save_steps = 1000, learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 3,
      output_dir = tmp .. "/rm"})
    rm:train()
    rm = nil
    collectgarbage(); collectgarbage()

    local tr = lfl.trainer({model_name_or_path = model, stage = "ppo", dataset = "arith_demo", template = "smollm",
      reward_model = tmp .. "/rm", cutoff_len = 64, max_samples = 8, per_device_train_batch_size = 2,
      gradient_accumulation_steps = 2, max_new_tokens = 8, max_steps = 2, ppo_epochs = 2, ppo_score_norm = true,
      logging_steps = 1,
      save_steps = 1000, learning_rate = 1e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
      output_dir = tmp .. "/ppo"})
    local m = tr.model
    t.assert_eq(tr.reward_model.kind, "lora")
    t.assert_eq(m.lora.name, "default", "the policy adapter is the active one")
    local names = m:adapter_names()
    table.sort(names)
    t.assert_eq(table.concat(names, ","), "default,reward")
    -- what the run must leave alone, and what it must change
    local rmod = tr.reward_model.adapter.modules[1]
    local rA0, rB0 = copy(select(1, tr.reward_model.adapter:get(rmod))), copy(select(2, tr.reward_model.adapter:get(rmod)))
    local rw0 = copy(tr.reward_model.head.weight)
    local pmod = m.lora.modules[1]
    local pB0, vw0 = copy(select(2, m.lora:get(pmod))), copy(tr.value_head.weight)
    tr:train()
    t.assert_eq(#tr.log_history, 2)
    for _, h in ipairs(tr.log_history) do
      for _, k in ipairs({"loss", "reward", "learning_rate", "grad_norm", "ppo/loss/policy", "ppo/loss/value",
                          "ppo/loss/total", "objective/kl", "objective/kl_coef", "ppo/mean_scores", "ppo/std_scores",
                          "ppo/policy/clipfrac", "ppo/val/clipfrac", "tokens/responses_len_mean"}) do
        t.assert(finite(h[k]), "step " .. h.step .. ": " .. k .. " = " .. tostring(h[k]))
      end
      t.assert_close(h.loss, h["ppo/loss/total"], 1e-9)
      print(fmt("      step %d: loss %.4f reward %.4f kl %.5f kl_coef %.6f value loss %.4f", h.step, h.loss, h.reward,
        h["objective/kl"], h["objective/kl_coef"], h["ppo/loss/value"]))
    end
    local h1, h2 = tr.log_history[1], tr.log_history[2]
    t.assert_eq(h1["objective/kl"], 0, "the first rollout's policy is the reference (LoRA B starts at 0)")
    t.assert(math.abs(h2["objective/kl"]) > 0, "the second rollout comes from the updated policy")
    t.assert_eq(h1["objective/kl_coef"], 0.2)
    -- ppo_score_norm: the first batch's scores are normalised by (nearly) their own moments; reward stays raw
    t.assert(math.abs(h1["ppo/mean_scores"]) < 1e-6, "normalised mean score " .. h1["ppo/mean_scores"])
    t.assert_close(h1["ppo/std_scores"], 1, 1e-5)
    t.assert(math.abs(h1.reward) > 1e-3, "raw reward " .. h1.reward)
    -- AdaptiveKLController after step 1 (kl 0, 4 prompts): 0.2 * (1 - 0.2 * 4 / 10000)
    t.assert_close(h2["objective/kl_coef"], 0.2 * (1 - 0.2 * 4 / 10000), 1e-12)
    t.assert_eq(maxdiff(copy(select(1, tr.reward_model.adapter:get(rmod))), rA0), 0, "reward adapter A unchanged")
    t.assert_eq(maxdiff(copy(select(2, tr.reward_model.adapter:get(rmod))), rB0), 0, "reward adapter B unchanged")
    t.assert_eq(maxdiff(copy(tr.reward_model.head.weight), rw0), 0, "reward head unchanged")
    t.assert(maxdiff(copy(select(2, m.lora:get(pmod))), pB0) > 0, "the policy adapter trained")
    t.assert(maxdiff(copy(tr.value_head.weight), vw0) > 0, "the value head trained")
    -- the last step's updates, measured on its own rollout batch
    local last = tr.ppo.last
    local lp, v = lfl.no_grad(function() return ppo.forward(m, last.seqs, {head = tr.value_head}) end)
    lp, v = ppo.split(values(lp), last.lens), ppo.split(values(v), last.lens)
    local dot, e_old, e_new, n = 0, 0, 0, 0
    for b = 1, #lp do
      for k = 1, #lp[b] do
        dot = dot + (lp[b][k] - last.old_logprobs[b][k]) * last.advantages[b][k]
        e_old = e_old + (last.old_values[b][k] - last.returns[b][k]) ^ 2
        e_new = e_new + (v[b][k] - last.returns[b][k]) ^ 2
        n = n + 1
      end
    end
    print(fmt("      last batch: sum dlogp * advantage %.4f over %d tokens; value error %.4f -> %.4f", dot, n,
      e_old / n, e_new / n))
    t.assert(dot > 0, fmt("the policy moved against the advantages (%.5f)", dot))
    t.assert(e_new < e_old, fmt("the value head moved away from the returns (%.5f -> %.5f)", e_old / n, e_new / n))
    -- the policy adapter and its value head are saved, as LlamaFactory saves them
    for _, f in ipairs({"adapter_model.safetensors", "adapter_config.json", "value_head.safetensors"}) do
      local fh = io.open(tmp .. "/ppo/" .. f, "rb")
      t.assert(fh, f .. " saved"); fh:close()
    end
  end,
})
local ok = t.run()
lfl.fs.remove(tmp)
return ok
