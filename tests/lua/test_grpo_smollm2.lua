-- Stage grpo end to end on the real small model (SmolLM2-135M-Instruct, the
-- Q4_1 GGUF in ~/.cache/lfl/models): two steps on recipes/data/arith_demo.json
-- with a bundled reward recipe and a reward function written in Lua, sampled
-- completions through lfl's batched generator; the run logs TRL's names with
-- finite values, the Lua reward sees each (prompt, completion, example) of
-- every group, the adapter is saved. Whether the reward rises takes more steps
-- than CI has (recipes/examples/lora_grpo.lua is the longer run); this checks
-- the pipeline.
local t = lfl.test
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_grpo_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_grposm"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

t.suite("grpo_smollm2", {
  pipeline_runs = function()
    local calls, bad = 0, nil
    local function has_digit(prompt, completion, example)
      calls = calls + 1
      if not (prompt:find("What is", 1, true) and tonumber(example.answer)) then bad = prompt .. " / " .. example.answer end
      return completion:find("%d") and 1 or 0
    end
    local tr = lfl.trainer({model_name_or_path = model, stage = "grpo", dataset = "arith_demo", template = "smollm",
      cutoff_len = 64, max_samples = 4, per_device_train_batch_size = 2, num_generations = 3,
      max_completion_length = 6, temperature = 1.0, max_steps = 2, logging_steps = 1, save_steps = 1000,
      learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
      reward_funcs = {"exact_answer", has_digit}, output_dir = tmp .. "/grpo"})
    tr:train()
    t.assert(bad == nil, "the reward function got " .. tostring(bad))
    t.assert_eq(calls, 2 * 2 * 3) -- steps x prompts x generations
    t.assert_eq(#tr.log_history, 2)
    for _, h in ipairs(tr.log_history) do
      for _, k in ipairs({"loss", "grad_norm", "reward", "reward_std", "kl", "completions/mean_length",
                          "clip_ratio/region_mean", "rewards/exact_answer/mean", "rewards/exact_answer/std",
                          "rewards/reward_2/mean", "rewards/reward_2/std"}) do
        t.assert(finite(h[k]), "step " .. h.step .. ": " .. k .. " = " .. tostring(h[k]))
      end
      t.assert(h["completions/mean_length"] >= 1 and h["completions/mean_length"] <= 7)
      print(string.format("      step %d: loss %.4f reward %.3f kl %.4f length %.2f", h.step, h.loss, h.reward, h.kl,
        h["completions/mean_length"]))
    end
    local f = io.open(tmp .. "/grpo/adapter_model.safetensors", "rb")
    t.assert(f, "adapter saved"); f:close()
  end,
})
local ok = t.run()
lfl.fs.remove(tmp)
return ok
