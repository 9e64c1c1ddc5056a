-- Every fine-tuning method trains the real SmolLM2-135M-Instruct for 20 steps
-- through lfl.trainer with a falling loss (small cutoff, a few repeated
-- examples), LoRA and full also with bf16, OFT at LlamaFactory's example
-- settings, and a run killed with SIGKILL mid-way resumes to the same loss
-- curve step for step.
local t = lfl.test
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_train_methods: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local tmp = os.tmpname() .. "_train"

local function base(over)
  local a = {model_name_or_path = model, stage = "sft", dataset = "alpaca_demo", template = "smollm",
    cutoff_len = 48, max_samples = 4, per_device_train_batch_size = 2, max_steps = 20, logging_steps = 1,
    save_steps = 1000, learning_rate = 1e-3, lr_scheduler_type = "constant", overwrite_output_dir = true,
    output_dir = tmp .. "/run", disable_tqdm = true, seed = 7}
  for k, v in pairs(over or {}) do a[k] = v end
  return a
end

local function losses(dir)
  local out = {}
  for line in io.lines(dir .. "/trainer_log.jsonl") do
    local r = lfl.json.decode(line)
    if r.loss then out[r.current_steps] = r.loss end
  end
  return out
end

local function run(over)
  local a = lfl.args.resolve(base(over), {}, "test")
  local res = lfl.trainer.run(a)
  return losses(a.output_dir), res
end

local function falls(l, name)
  local first = (l[1] + l[2] + l[3]) / 3
  local last = (l[18] + l[19] + l[20]) / 3
  t.assert(last < first * 0.8, string.format("%s: loss %.3f -> %.3f does not fall", name, first, last))
end

local cases = {
  lora = {finetuning_type = "lora"},
  rslora = {finetuning_type = "lora", use_rslora = true},
  dora = {finetuning_type = "lora", use_dora = true},
  loraplus = {finetuning_type = "lora", loraplus_lr_ratio = 16, learning_rate = 2e-4},
  full = {finetuning_type = "full", learning_rate = 5e-5},
  freeze = {finetuning_type = "freeze", freeze_trainable_layers = 2, learning_rate = 1e-4},
  -- bf16: a bf16 base and bf16 GEMM products (matmul precision "medium") during the run
  lora_bf16 = {finetuning_type = "lora", bf16 = true},
  full_bf16 = {finetuning_type = "full", learning_rate = 5e-5, bf16 = true},
  -- OFT at LlamaFactory's example settings (extras/oft/llama3_oft_sft.yaml: oft_block_size 32, lr 1e-4)
  oft = {finetuning_type = "oft", oft_block_size = 32, learning_rate = 1e-4},
}
local suite = {}
for name, over in pairs(cases) do
  suite[name] = function()
    lfl.fs.remove(tmp .. "/run") -- what an earlier case left there is not this one's output
    local l, res = run(over)
    falls(l, name)
    t.assert_eq(lfl.sys.matmul_precision(), "highest", name .. ": the trainer restores the matmul precision")
    -- train_loss is the mean step loss, as HF's Trainer reports it (every step is logged here)
    local sum = 0
    for i = 1, 20 do sum = sum + l[i] end
    t.assert_close(res.metrics.train_loss, sum / 20, 1e-6, name .. ": train_loss")
    -- output_dir holds the tokenizer files (written from the GGUF's metadata), as LlamaFactory's does
    for _, f in ipairs({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) do
      t.assert(lfl.fs.exists(tmp .. "/run/" .. f), name .. ": " .. f .. " in output_dir")
    end
    local adapter = over.finetuning_type == "lora" or over.finetuning_type == "oft"
    t.assert_eq(lfl.fs.exists(tmp .. "/run/config.json"), not adapter,
      name .. ": a whole HF folder for full / freeze, the adapter for LoRA / OFT")
    if adapter then
      local cfg = lfl.json.decode(lfl.fs.read(tmp .. "/run/adapter_config.json"))
      t.assert_eq(cfg.peft_type, over.finetuning_type:upper(), name .. ": adapter_config.json peft_type")
    end
  end
end

-- An interrupted run resumes from its last checkpoint and reproduces the
-- uninterrupted loss curve step for step.
suite.resume_after_sigkill = function()
  local ref = run({output_dir = tmp .. "/ref", save_steps = 5})
  local dir = tmp .. "/killed"
  os.execute("rm -rf " .. dir)
  -- a child lfl runs the same recipe and kills itself (SIGKILL) after step 12
  local script = tmp .. "_child.lua"
  local f = assert(io.open(script, "w"))
  f:write(string.format([[
local a = lfl.args.resolve(%s, {}, "child")
lfl.trainer.run(a, {on_step = function(st) if st.global_step == 12 then os.execute("kill -9 " .. lfl.sys.pid()) end end})
]], "{" .. (function()
    local parts = {}
    for k, v in pairs(base({output_dir = dir, save_steps = 5})) do
      parts[#parts + 1] = string.format("[%q] = %s", k, type(v) == "string" and string.format("%q", v) or tostring(v))
    end
    return table.concat(parts, ", ")
  end)() .. "}"))
  f:close()
  local ok = os.execute(lfl.sys.exe() .. " " .. script .. " >/dev/null 2>&1")
  t.assert(ok ~= 0, "the child should have been killed")
  local steps = lfl.trainer.list_checkpoints(dir)
  t.assert_eq(steps[#steps], 10, "last checkpoint before the kill")
  local resumed = run({output_dir = dir, save_steps = 5, overwrite_output_dir = false})
  for s = 1, 20 do
    t.assert(resumed[s], "no loss logged at step " .. s)
    t.assert_close(resumed[s], ref[s], 1e-6, "step " .. s)
  end
end

-- LlamaFactory's GaLore recipe (examples/extras/galore/llama3_full_sft.yaml: full,
-- galore_target all, rank 128, scale 2, pure_bf16) with SmolLM2 and LlamaFactory's
-- demo data: it trains with finite losses and bf16 weights (it stopped at the first
-- step with "sgd: the parameter must be a contiguous f32 CPU tensor"). galore_target
-- is narrowed to q_proj only for time: the first step takes a rank-128 SVD of every
-- targeted matrix (~0.5 s each on 2 cores, 210 of them for "all").
suite.galore_lf_recipe_pure_bf16 = function()
  local S = lfl.home .. "/../shared/"
  local r = lfl.args.read_yaml(S .. "reference/llamafactory-examples/extras/galore/llama3_full_sft.yaml")
  t.assert(r.pure_bf16 == true and r.use_galore == true and r.finetuning_type == "full", "the recipe is LF's galore one")
  local out = tmp .. "/galore"
  local a = lfl.args.resolve(r, {"model_name_or_path=" .. model, "template=smollm",
    "dataset_dir=" .. S .. "data/llamafactory-data", "cutoff_len=32", "max_samples=4", "max_steps=2",
    "logging_steps=1", "galore_target=q_proj", "output_dir=" .. out, "disable_tqdm=true"}, "test")
  local res = lfl.trainer.run(a)
  local l = losses(out)
  for s = 1, 2 do
    t.assert(l[s] and l[s] == l[s] and l[s] < math.huge, "step " .. s .. ": loss " .. tostring(l[s]))
  end
  t.assert_eq(res.model.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "bf16", "pure bf16 weights")
  t.assert_eq(res.state.optimizer.kind, "galore_adamw")
  t.assert(io.open(out .. "/config.json") and io.open(out .. "/tokenizer.json"), "a complete HF folder")
end

t.suite("train_methods", suite)
t.run()
os.execute("rm -rf " .. tmp .. " " .. tmp .. "_child.lua")
