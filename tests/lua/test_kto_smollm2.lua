-- Stage kto on the real small model (SmolLM2-135M-Instruct, the Q4_1 GGUF in
-- ~/.cache/lfl/models): a few steps on recipes/data/kto_demo.json (arithmetic
-- answers tagged desirable when right), measured on the training examples
-- before and after: the loss falls and the desirable rewards rise above the
-- undesirable ones; LlamaFactory's own train_lora/qwen3_lora_kto.yaml runs
-- with the model path changed (and CI-sized step counts); the bundled example
-- recipe resolves.
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_kto_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_ktosm"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
local function collect() collectgarbage(); collectgarbage() end

local cases = {}

cases.kto_loss_falls = function()
  local tr = lfl.trainer({model_name_or_path = model, stage = "kto", dataset = "kto_demo", template = "smollm",
    cutoff_len = 40, max_samples = 6, per_device_train_batch_size = 3, per_device_eval_batch_size = 6, max_steps = 3,
    logging_steps = 1, save_steps = 1000, learning_rate = 3e-3, pref_beta = 0.5, overwrite_output_dir = true,
    disable_tqdm = true, seed = 3, output_dir = tmp .. "/kto"})
  local before = tr:evaluate(tr.train_set)
  -- the policy starts as the reference: zero rewards and KL, loss 1 - sigmoid(0)
  t.assert_eq(before["eval_rewards/chosen"], 0)
  t.assert_eq(before.eval_kl, 0)
  t.assert_close(before.eval_loss, 0.5, 1e-6)
  tr:train()
  local after = tr:evaluate(tr.train_set)
  print(fmt("      kto loss %.4f -> %.4f, rewards/chosen %.4f, rewards/rejected %.4f, kl %.4f", before.eval_loss,
    after.eval_loss, after["eval_rewards/chosen"], after["eval_rewards/rejected"], after.eval_kl))
  t.assert(after.eval_loss < before.eval_loss - 0.005, fmt("loss %.4f -> %.4f", before.eval_loss, after.eval_loss))
  t.assert(after["eval_rewards/margins"] > 0, fmt("margin %.4f", after["eval_rewards/margins"]))
  local log = tr.log_history[1]
  for _, k in ipairs({"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen",
                      "logps/rejected", "logits/chosen", "logits/rejected", "kl"}) do
    t.assert(type(log[k]) == "number", "the training log has " .. k)
  end
  collect()
end

local shared = lfl.home .. "/../shared"
local example = shared .. "/reference/llamafactory-examples/train_lora/qwen3_lora_kto.yaml"
cases.llamafactory_example_recipe = function()
  if not exists(example) then
    print("      skipped: " .. example .. " is absent (the LlamaFactory examples live in ../shared)")
    return
  end
  local out = tmp .. "/lf"
  t.assert_eq(lfl.args.read_yaml(example).stage, "kto")
  require("lfl.cmd.train").run({example, "model_name_or_path=" .. model,
    "dataset_dir=" .. shared .. "/data/llamafactory-data", "output_dir=" .. out,
    "cutoff_len=64", "max_samples=2", "max_steps=1", "per_device_train_batch_size=2",
    "gradient_accumulation_steps=1", "logging_steps=1", "disable_tqdm=true"})
  for _, f in ipairs({"adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl", "training_loss.png"}) do
    t.assert(exists(out .. "/" .. f), "qwen3_lora_kto.yaml wrote " .. f)
  end
  local f = assert(io.open(out .. "/trainer_log.jsonl"))
  local line = lfl.json.decode(f:read("*l"))
  f:close()
  t.assert(type(line.kl) == "number" and type(line.loss) == "number", "the log has loss and kl")
  collect()
end

cases.example_recipe_resolves = function()
  local r = dofile(lfl.home .. "/recipes/examples/lora_kto.lua")
  t.assert_eq(r.stage, "kto"); t.assert_eq(r.dataset, "kto_demo")
  local a = lfl.args.resolve(r, {}, "lora_kto.lua")
  t.assert_eq(a.kto_chosen_weight, 1.0)
end

t.suite("kto_smollm2", cases)
local ok = t.run()
lfl.fs.remove(tmp)
return ok
