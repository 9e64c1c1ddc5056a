-- The preference stages through the trainer on the tiny golden llama (fast):
-- dpo / orpo / simpo / rm runs write the adapter, trainer_log.jsonl with TRL's
-- metric names, trainer_state.json, the plots of loss and the stage's metric,
-- checkpoints; rm's value head is saved next to the adapter, in checkpoints,
-- resumes step for step and loads back with the adapter; the reference is the
-- adapter-off model (LoRA), a frozen copy (full / freeze) or ref_model (+
-- ref_model_adapters); stage orpo = stage dpo with pref_loss orpo; bad input
-- is refused with a clear error.
local t = lfl.test
local fmt = string.format
local home = lfl.home
local pref = require("lfl.train.pref")
local vh = require("lfl.train.value_head")
local pw = require("lfl.data.pairwise")
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_pref"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp .. "/model")
for _, f in ipairs({"tests/golden/models/llama/config.json", "tests/golden/models/llama/model.safetensors",
                    "tests/golden/serve/tokenizer.json"}) do
  lfl.fs.symlink(home .. "/" .. f, tmp .. "/model/" .. f:match("[^/]+$"))
end
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return tmp .. "/cache" end return real_getenv(k) end

-- pairs in the tiny tokenizer's alphabet (letters and . , ? ! :)
lfl.fs.mkdir(tmp .. "/data")
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local PAIRS = {
  {"Is the sky blue?", "Yes, the sky is blue.", "No."}, {"Name a fruit.", "An apple is a fruit.", "A stone."},
  {"Say hello.", "Hello there!", "Bye."}, {"Is fire cold?", "No, fire is hot.", "Yes, very cold."},
  {"Spell cat.", "C, A, T.", "D, O, G."}, {"What do bees make?", "Bees make honey.", "Bees make milk."},
  {"Is ice hot?", "No, ice is cold.", "Yes."}, {"Count to three.", "One, two, three.", "Two, one."},
}
local rows = {}
for i, p in ipairs(PAIRS) do
  rows[i] = lfl.json.encode({instruction = p[1], chosen = p[2], rejected = p[3]})
end
write(tmp .. "/data/pairs.json", "[" .. table.concat(rows, ",\n") .. "]")
write(tmp .. "/data/dataset_info.json", [[{
  "pairs": {"file_name": "pairs.json", "ranking": true,
            "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
  "nopairs": {"file_name": "pairs.json", "ranking": true, "columns": {"prompt": "instruction", "chosen": "chosen"}},
  "plain": {"file_name": "pairs.json", "columns": {"prompt": "instruction", "response": "chosen"}}
}]])

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "dpo", dataset = "pairs", dataset_dir = tmp .. "/data",
    template = "chatml",
    cutoff_len = 32, max_samples = 8, per_device_train_batch_size = 2, max_steps = 3, logging_steps = 1,
    save_steps = 1000, learning_rate = 5e-2, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
    finetuning_type = "lora", output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end

local function log_lines(dir)
  local out = {}
  for line in io.lines(dir .. "/trainer_log.jsonl") do out[#out + 1] = lfl.json.decode(line) end
  return out
end

local function read_json(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("*a")
  f:close()
  return lfl.json.decode(s, p)
end

local TRL = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
             "logps/rejected", "logits/chosen", "logits/rejected"}

local function capture(fn)
  local lines, real = {}, print
  print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  local ok, res = pcall(fn)
  print = real
  if not ok then error(res, 0) end
  return res, table.concat(lines, "\n")
end

local cases = {}

cases.dpo_lora_files_logs_plots = function()
  local out = tmp .. "/dpo"
  local tr = lfl.trainer(recipe({output_dir = out, save_steps = 2, plot_loss = true, val_size = 2, eval_steps = 3}))
  t.assert_eq(tr.reference.kind, "adapter_off")
  tr:train()
  for _, f in ipairs({"adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl", "trainer_state.json",
                      "train_results.json", "all_results.json", "training_loss.png", "training_rewards_accuracies.png",
                      "training_eval_loss.png", "checkpoint-2/adapter_model.safetensors",
                      "checkpoint-2/optimizer.safetensors", "checkpoint-2/trainer_state.json"}) do
    t.assert(exists(out .. "/" .. f), "dpo run wrote " .. f)
  end
  t.assert(not exists(out .. "/value_head.safetensors"), "no value head outside rm")
  local lines = log_lines(out)
  local first = lines[1]
  for _, k in ipairs(TRL) do t.assert(type(first[k]) == "number", "trainer_log.jsonl has " .. k) end
  -- the policy starts as the reference (LoRA B = 0): zero rewards, loss log 2
  t.assert_eq(first["rewards/margins"], 0, "margin at step 1")
  t.assert_close(first.loss, math.log(2), 1e-6, "loss at step 1")
  t.assert_eq(first.accuracy, first["rewards/accuracies"], "LlamaFactory's accuracy field")
  local state = read_json(out .. "/trainer_state.json")
  local h1, ev = state.log_history[1], nil
  for _, h in ipairs(state.log_history) do if h.eval_loss then ev = h end end
  t.assert(h1["rewards/margins"] ~= nil and h1.step == 1, "log_history carries the metrics")
  t.assert(ev and ev["eval_rewards/accuracies"] ~= nil and ev.perplexity == nil, "eval metrics in log_history")
  local res = read_json(out .. "/all_results.json")
  t.assert(res.eval_loss and res["eval_rewards/margins"], "all_results.json has the eval metrics")
end

cases.orpo_simpo_stages = function()
  for _, stage in ipairs({"orpo", "simpo"}) do
    local out = tmp .. "/" .. stage
    local tr = lfl.trainer(recipe({stage = stage, output_dir = out, max_steps = 2, pref_beta = stage == "simpo" and 2 or 0.1}))
    t.assert(tr.reference == nil, stage .. " sets up no reference")
    t.assert_eq(tr.args.pref_loss, stage)
    tr:train()
    local l = log_lines(out)[1]
    for _, k in ipairs(TRL) do t.assert(type(l[k]) == "number", stage .. ": trainer_log.jsonl has " .. k) end
    -- reference-free rewards are beta * the average log-prob: not zero at step 1
    t.assert(l["rewards/chosen"] < 0, stage .. ": rewards/chosen = beta * average log-prob")
    if stage == "orpo" then
      t.assert(l.sft_loss and l.odds_ratio_loss, "orpo logs sft_loss and odds_ratio_loss")
      t.assert_close(l.sft_loss, -l["logps/chosen"], 1e-9, "orpo sft_loss = -average chosen log-prob")
    end
  end
  -- stage dpo with pref_loss orpo is the same run
  local a = lfl.trainer(recipe({stage = "orpo", output_dir = tmp .. "/o1", max_steps = 1}))
  local b = lfl.trainer(recipe({stage = "dpo", pref_loss = "orpo", output_dir = tmp .. "/o2", max_steps = 1}))
  t.assert_eq(a:step().loss, b:step().loss, "stage orpo = stage dpo + pref_loss orpo")
end

-- the value head: saved next to the adapter and in checkpoints, resumed step
-- for step, loaded back from the adapter folder
cases.rm_value_head_save_resume_reload = function()
  local out = tmp .. "/rm"
  local r = recipe({stage = "rm", output_dir = out, max_steps = 4, save_steps = 2, learning_rate = 1e-2,
    val_size = 2, eval_steps = 2, plot_loss = true})
  local tr = lfl.trainer(r)
  t.assert(tr.value_head and tr.value_head.weight:size(2) == 32, "a [1, hidden] value head")
  tr:train()
  for _, f in ipairs({"value_head.safetensors", "adapter_model.safetensors", "checkpoint-2/value_head.safetensors",
                      "training_loss.png", "training_eval_loss.png", "training_eval_accuracy.png"}) do
    t.assert(exists(out .. "/" .. f), "rm run wrote " .. f)
  end
  local saved = lfl.safetensors.load(out .. "/value_head.safetensors")
  t.assert_eq(table.concat(saved[vh.WEIGHT]:size(), ","), "1,32")
  t.assert_eq(table.concat(saved[vh.BIAS]:size(), ","), "1")
  t.assert_eq(t.max_abs_diff(saved[vh.WEIGHT], tr.value_head.weight:detach()), 0, "the trained head is what is saved")
  local lines = log_lines(out)
  t.assert(lines[1].accuracy ~= nil, "rm logs accuracy")
  local state = read_json(out .. "/trainer_state.json")
  local ev
  for _, h in ipairs(state.log_history) do if h.eval_accuracy then ev = h end end
  t.assert(ev, "eval_accuracy in log_history")
  -- resume from checkpoint-2 in another folder: steps 3 and 4 as in the whole run
  local r2 = recipe({stage = "rm", output_dir = tmp .. "/rm_resumed", max_steps = 4, save_steps = 2, learning_rate = 1e-2,
    val_size = 2, eval_steps = 2, resume_from_checkpoint = out .. "/checkpoint-2"})
  local tr2 = lfl.trainer(r2)
  t.assert_eq(tr2.global_step, 2)
  tr2:train()
  local l2 = {}
  for _, l in ipairs(log_lines(tmp .. "/rm_resumed")) do if l.loss then l2[l.current_steps] = l.loss end end
  local l1 = {}
  for _, l in ipairs(lines) do if l.loss then l1[l.current_steps] = l.loss end end
  t.assert_eq(l2[3], l1[3], "step 3 after resume")
  t.assert_eq(l2[4], l1[4], "step 4 after resume")
  t.assert_eq(t.max_abs_diff(tr2.value_head.weight:detach(), tr.value_head.weight:detach()), 0, "same head at the end")
  -- adapter_name_or_path = the run's folder: the head comes back with the adapter
  local tr3 = lfl.trainer(recipe({stage = "rm", output_dir = tmp .. "/rm_again", adapter_name_or_path = out, max_steps = 1}))
  t.assert(tr3.value_head.from:find(out, 1, true), "loaded from the adapter folder")
  t.assert_eq(t.max_abs_diff(tr3.value_head.weight:detach(), saved[vh.WEIGHT]), 0, "the saved head loads back")
  local rows = {}
  for i = 1, 2 do rows[i] = tr.train_set[i] end
  local batch = pw.collate_pairwise_packed(rows)
  local s1 = lfl.no_grad(function() return vh.scores(tr.model, tr.value_head, batch) end)
  local s3 = lfl.no_grad(function() return vh.scores(tr3.model, tr3.value_head, batch) end)
  t.assert(t.max_abs_diff(s1, s3) < 1e-5, "the reloaded reward model scores as the trained one")
  -- a wrong head is refused by name
  lfl.fs.mkdir(tmp .. "/badhead")
  lfl.safetensors.save(tmp .. "/badhead/value_head.safetensors", {[vh.WEIGHT] = lfl.zeros(1, 7), [vh.BIAS] = lfl.zeros(1)})
  t.assert_error(function() vh.load(tmp .. "/badhead", 32) end, "expected [1, 32] and [1] for this model")
end

-- full / freeze: the reference is a frozen copy of the initial weights
cases.frozen_reference_full_freeze = function()
  for _, ft in ipairs({"full", "freeze"}) do
    local tr, printed = capture(function()
      -- freeze_trainable_layers only where it applies (lfl.args refuses it with full)
      return lfl.trainer(recipe({finetuning_type = ft, freeze_trainable_layers = ft == "freeze" and 1 or nil,
        output_dir = tmp .. "/" .. ft,
        max_steps = 2, learning_rate = 1e-2}))
    end)
    t.assert_eq(tr.reference.kind, "frozen")
    t.assert(printed:find("frozen copy of the initial weights", 1, true) and printed:find("MB", 1, true),
      ft .. ": the memory of the frozen copy is printed:\n" .. printed)
    tr:train()
    local rows = {tr.train_set[1], tr.train_set[2]}
    local batch = pw.collate_pairwise_packed(rows)
    local ref = pref.reference_logps(tr, batch)
    local fresh = lfl.model.load(tmp .. "/model")
    local want = lfl.no_grad(function() return pref.sequence_logps(fresh, batch) end)
    local pol = lfl.no_grad(function() return pref.sequence_logps(tr.model, batch) end)
    for i = 1, 4 do
      t.assert_eq(ref[i], want[i], ft .. ": the reference is the initial model, sequence " .. i)
      t.assert(math.abs(pol[i] - want[i]) > 1e-4, ft .. ": the policy moved, sequence " .. i)
    end
  end
end

-- ref_model + ref_model_adapters: a separate reference with the adapters merged
cases.ref_model_with_adapters = function()
  local adir = home .. "/tests/golden/peft/py_adapter_llama_lora"
  local tr = lfl.trainer(recipe({output_dir = tmp .. "/refm", ref_model = tmp .. "/model", ref_model_adapters = adir,
    max_steps = 1}))
  t.assert_eq(tr.reference.kind, "model")
  local rows = {tr.train_set[1], tr.train_set[2]}
  local batch = pw.collate_pairwise_packed(rows)
  local ref = pref.reference_logps(tr, batch)
  local m = lfl.model.load(tmp .. "/model")
  lfl.peft.load_adapter(m, adir)
  local want = lfl.no_grad(function() return pref.sequence_logps(m, batch) end)
  for i = 1, 4 do t.assert(math.abs(ref[i] - want[i]) < 1e-4, fmt("sequence %d: %g vs %g", i, ref[i], want[i])) end
  -- and the rewards of step 1 are measured against it (not zero: the policy starts at the base)
  local info = tr:step()
  t.assert(info.loss ~= math.log(2), "step 1 against the adapted reference")
end

cases.streaming_pairs = function()
  local r = recipe({output_dir = tmp .. "/stream", streaming = true, max_steps = 2})
  r.max_samples = nil
  local tr = lfl.trainer(r)
  tr:train()
  local l = log_lines(tmp .. "/stream")
  t.assert_eq(#l, 2)
  t.assert(l[2]["rewards/margins"] ~= nil, "streamed pairs train with the metrics")
end

cases.dropout_off_in_dpo_kept_in_config = function()
  local out = tmp .. "/drop"
  local tr, printed = capture(function() return lfl.trainer(recipe({output_dir = out, lora_dropout = 0.1, max_steps = 1})) end)
  t.assert_eq(tr.model.lora.dropout, 0, "the policy runs without dropout")
  t.assert(printed:find("dropout is off in the policy", 1, true), printed)
  tr:train()
  t.assert_eq(read_json(out .. "/adapter_config.json").lora_dropout, 0.1, "adapter_config.json keeps lora_dropout")
  -- rm keeps LoRA dropout (LlamaFactory's PairwiseTrainer does)
  local r = lfl.trainer(recipe({stage = "rm", output_dir = tmp .. "/drop_rm", lora_dropout = 0.1, max_steps = 1}))
  t.assert_eq(r.model.lora.dropout, 0.1)
end

cases.errors = function()
  local function resolve(over) return lfl.args.resolve(recipe(over), {}, "test") end
  t.assert_error(function() resolve({pref_loss = "dpo"}) end,
    'pref_loss: expected one of sigmoid, hinge, ipo, kto_pair, orpo, simpo, got "dpo"')
  t.assert_error(function() resolve({pref_beta = 0}) end, "pref_beta: expected a number > 0, got 0")
  t.assert_error(function() resolve({pref_loss = "hinge", dpo_label_smoothing = 0.1}) end,
    "dpo_label_smoothing applies to pref_loss sigmoid only")
  t.assert_error(function() resolve({dpo_label_smoothing = 0.5}) end, "dpo_label_smoothing: expected a number in [0, 0.5), got 0.5")
  t.assert_error(function() resolve({pref_loss = "kto_pair", pref_ftx = 0.1}) end, "pref_ftx does not combine with")
  t.assert_error(function() resolve({ref_model_adapters = "x"}) end, "ref_model_adapters needs ref_model")
  t.assert_error(function() resolve({pref_loss = "simpo", ref_model = "x"}) end, "simpo is reference-free")
  t.assert_error(function() resolve({stage = "orpo", pref_loss = "hinge"}) end, "stage orpo trains with pref_loss orpo")
  t.assert_error(function() resolve({stage = "simpo", pref_loss = "ipo"}) end, "stage simpo trains with pref_loss simpo")
  -- a dataset that is not a preference dataset
  t.assert_error(function() lfl.trainer(recipe({dataset = "plain", output_dir = tmp .. "/e1"})) end,
    "the stage trains on preference pairs")
  -- a preference dataset whose description names no chosen/rejected columns
  t.assert_error(function() lfl.trainer(recipe({dataset = "nopairs", output_dir = tmp .. "/e2"})) end,
    "is a preference dataset (ranking) but its columns name no rejected column")
  -- GaLore / BAdam do not place the value head
  t.assert_error(function()
    lfl.trainer(recipe({stage = "rm", finetuning_type = "full", use_galore = true, output_dir = tmp .. "/e3"}))
  end, "stage rm with GaLore is not supported")
end

t.suite("pref_train", cases)
local ok = t.run()
lfl.fs.remove(tmp)
return ok
