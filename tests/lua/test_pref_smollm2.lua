-- The preference stages on the real small model (SmolLM2-135M-Instruct, the
-- Q4_1 GGUF in ~/.cache/lfl/models), a few steps each on pairs of
-- recipes/data/preference_demo.json (arithmetic: the chosen answer is right,
-- the rejected one off by a little), measured on the training pairs before and
-- after: DPO's margin grows from 0 and its loss falls below log 2, ORPO's and
-- SimPO's margins grow, the reward model's accuracy ends above chance with a
-- lower loss. LlamaFactory's own example recipes train_lora/qwen3_lora_dpo.yaml
-- and qwen3_lora_reward.yaml (from ../shared/reference/llamafactory-examples)
-- run with the model path changed (and CI-sized step counts).
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_pref_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_prefsm"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function recipe(over)
  local r = {model_name_or_path = model, stage = "dpo", dataset = "preference_demo", template = "smollm",
    cutoff_len = 40, max_samples = 4, per_device_train_batch_size = 2, per_device_eval_batch_size = 4, max_steps = 3,
    logging_steps = 1, save_steps = 1000, learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true,
    seed = 3, output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end

local function report(what, before, after)
  print(fmt("      %s: %s -> %s", what, before, after))
end

local cases = {}

-- each case frees its model before the next loads one
local function collect() collectgarbage(); collectgarbage() end

cases.dpo_margin_grows = function()
  local tr = lfl.trainer(recipe({output_dir = tmp .. "/dpo"}))
  local before = tr:evaluate(tr.train_set)
  -- the policy starts as the reference: zero margin, loss log 2
  t.assert_eq(before["eval_rewards/margins"], 0)
  t.assert_close(before.eval_loss, math.log(2), 1e-6)
  tr:train()
  local after = tr:evaluate(tr.train_set)
  report("dpo margin / loss / accuracy", fmt("%.3f / %.4f", 0, before.eval_loss),
    fmt("%.3f / %.4f / %.2f", after["eval_rewards/margins"], after.eval_loss, after["eval_rewards/accuracies"]))
  t.assert(after["eval_rewards/margins"] > 0.05, fmt("margin %.4f", after["eval_rewards/margins"]))
  t.assert(after["eval_rewards/accuracies"] > 0.5, fmt("accuracy %.2f", after["eval_rewards/accuracies"]))
  t.assert(after.eval_loss < math.log(2) - 0.02, fmt("loss %.4f", after.eval_loss))
  collect()
end

cases.orpo_simpo_margins_grow = function()
  for _, stage in ipairs({"orpo", "simpo"}) do
    local tr = lfl.trainer(recipe({stage = stage, output_dir = tmp .. "/" .. stage, max_steps = 2,
      pref_beta = stage == "simpo" and 2.0 or 0.1, learning_rate = 3e-3}))
    local before = tr:evaluate(tr.train_set)
    tr:train()
    local after = tr:evaluate(tr.train_set)
    local mb, ma = before["eval_rewards/margins"], after["eval_rewards/margins"]
    report(stage .. " margin / loss", fmt("%.4f / %.4f", mb, before.eval_loss), fmt("%.4f / %.4f", ma, after.eval_loss))
    t.assert(ma > mb, fmt("%s: margin %.4f -> %.4f", stage, mb, ma))
    t.assert(after.eval_loss < before.eval_loss, fmt("%s: loss %.4f -> %.4f", stage, before.eval_loss, after.eval_loss))
    tr = nil
    collect()
  end
end

cases.rm_accuracy_rises = function()
  local tr = lfl.trainer(recipe({stage = "rm", output_dir = tmp .. "/rm", max_samples = 8, max_steps = 4, seed = 7}))
  local before = tr:evaluate(tr.train_set)
  tr:train()
  local after = tr:evaluate(tr.train_set)
  report("rm accuracy / loss", fmt("%.2f / %.4f", before.eval_accuracy, before.eval_loss),
    fmt("%.2f / %.4f", after.eval_accuracy, after.eval_loss))
  t.assert(after.eval_accuracy > 0.5, fmt("accuracy %.2f on the training pairs", after.eval_accuracy))
  t.assert(after.eval_loss < before.eval_loss, fmt("loss %.4f -> %.4f", before.eval_loss, after.eval_loss))
  t.assert(exists(tmp .. "/rm/value_head.safetensors"), "value head saved")
  collect()
end

-- LlamaFactory's example recipes, unchanged but for the model (and the step
-- counts, dataset_dir: LlamaFactory reads data/ of its own checkout)
local shared = lfl.home .. "/../shared"
local examples = shared .. "/reference/llamafactory-examples/train_lora/"
cases.llamafactory_example_recipes = function()
  if not exists(examples .. "qwen3_lora_dpo.yaml") then
    print("      skipped: " .. examples .. " is absent (the LlamaFactory examples live in ../shared)")
    return
  end
  local train = require("lfl.cmd.train")
  for _, c in ipairs({{"qwen3_lora_dpo.yaml", "rewards/accuracies", "training_rewards_accuracies.png"},
                      {"qwen3_lora_reward.yaml", "accuracy", "value_head.safetensors"}}) do
    local out = tmp .. "/" .. c[1]:gsub("%.yaml$", "")
    local recipe_file = lfl.args.read_yaml(examples .. c[1])
    t.assert(recipe_file.stage == "dpo" or recipe_file.stage == "rm", c[1] .. " is a preference recipe")
    train.run({examples .. c[1], "model_name_or_path=" .. model,
      "dataset_dir=" .. shared .. "/data/llamafactory-data", "output_dir=" .. out,
      "cutoff_len=64", "max_samples=2", "max_steps=1", "per_device_train_batch_size=2",
      "gradient_accumulation_steps=1", "logging_steps=1", "disable_tqdm=true"})
    for _, f in ipairs({"adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl", "training_loss.png", c[3]}) do
      t.assert(exists(out .. "/" .. f), c[1] .. " wrote " .. f)
    end
    local f = assert(io.open(out .. "/trainer_log.jsonl"))
    local line = lfl.json.decode(f:read("*l"))
    f:close()
    t.assert(type(line[c[2]]) == "number", c[1] .. ": the log has " .. c[2])
    collect()
  end
end

t.suite("pref_smollm2", cases)
local ok = t.run()
lfl.fs.remove(tmp)
return ok
