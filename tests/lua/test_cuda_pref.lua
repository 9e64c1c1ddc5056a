-- QLoRA and the preference stages on a CUDA device against the CPU, through
-- lfl.trainer on the tiny golden llama: a 4-bit base (nf4 and fp4, with and
-- without double quantization) under LoRA SFT, and rm, dpo (sigmoid; the
-- reference the adapter-off base, a separate ref_model, or the frozen initial
-- weights of a full run), orpo, simpo and kto on preference_demo / kto_demo's
-- formats (in the tiny tokenizer's alphabet):
-- their loss, grad-norm and logged metric curves equal the CPU's; what the
-- device path still lacks (8-bit bases, ppo) is refused with the reason.
-- Runs where a CUDA device exists (a GPU, or the emulator of build-emu/).
local t = lfl.test
local fmt = string.format
if not t.cuda_device("test_cuda_pref") then return end
local decoder = require("lfl.model.decoder")
local tmp = t.tiny_llama_dir("cuda_pref")
local home = lfl.home

-- preference_demo and kto_demo in the tiny tokenizer's alphabet (letters and
-- . , ? ! :): their answers differ in digits, which it maps all to one
-- unknown token (chosen = rejected: a zero gradient, nothing to compare)
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
local prefs, ktos = {}, {}
for i, p in ipairs(PAIRS) do
  prefs[i] = lfl.json.encode({conversations = {{from = "human", value = p[1]}}, chosen = {from = "gpt", value = p[2]},
    rejected = {from = "gpt", value = p[3]}})
  ktos[i] = lfl.json.encode({messages = {{role = "user", content = p[1]},
    {role = "assistant", content = i % 3 == 0 and p[3] or p[2]}}, label = i % 3 ~= 0})
end
write(tmp .. "/data/pref.json", "[" .. table.concat(prefs, ",\n") .. "]")
write(tmp .. "/data/kto.json", "[" .. table.concat(ktos, ",\n") .. "]")
local demo = lfl.json.decode(assert(io.open(home .. "/recipes/data/dataset_info.json")):read("*a"))
local info = {pref = demo.preference_demo, kto = demo.kto_demo}
info.pref.file_name, info.kto.file_name = "pref.json", "kto.json"
write(tmp .. "/data/dataset_info.json", lfl.json.encode(info))

local SFT_DATA = home .. "/recipes/data"

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "dpo", dataset = "pref", dataset_dir = tmp .. "/data",
    template = "chatml", cutoff_len = 32, max_samples = 8, per_device_train_batch_size = 2, gradient_accumulation_steps = 1,
    max_steps = 2, logging_steps = 1, save_steps = 1000, learning_rate = 5e-2, lr_scheduler_type = "cosine",
    warmup_steps = 0, max_grad_norm = 1.0, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
    finetuning_type = "lora", output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return lfl.args.resolve(r, {}, "test")
end

-- per step: the loss, the grad norm and the logged record (the stage's metrics)
local function curve(a)
  local out = {}
  lfl.trainer.run(a, {on_step = function(st, info)
    local rec = {}
    for k, v in pairs(st.log_history[#st.log_history] or {}) do
      if type(v) == "number" then rec[k] = v end
    end
    -- where the model, its reference and value head live
    local ref = st.reference and st.reference.model
    out[st.global_step] = {loss = info.loss, grad_norm = info.grad_norm, rec = rec,
      device = decoder.device_of(st.model) or "cpu", ref_device = ref and (decoder.device_of(ref) or "cpu"),
      head_device = st.value_head and st.value_head.weight:device()}
  end})
  return out
end

local function merge(a, b)
  local r = {}
  for k, v in pairs(a) do r[k] = v end
  for k, v in pairs(b) do r[k] = v end
  return r
end

local SKIP = {learning_rate = true, epoch = true, step = true}

-- the device run against the CPU's: loss and metrics to rel 1e-4, grad norm to
-- 1e-3 (the LoRA SFT test's tolerances); every metric the CPU logged is there
local function same_curves(name, over, steps)
  local ref = curve(recipe(merge(over, {output_dir = tmp .. "/" .. name .. "_cpu"})))
  local got = curve(recipe(merge(over, {output_dir = tmp .. "/" .. name .. "_cuda", device = "cuda"})))
  steps = steps or 2
  t.assert_eq(#got, steps, name .. ": steps on the device")
  local keys = 0
  for s = 1, steps do
    local r, g = ref[s], got[s]
    t.assert_eq(g.device, "cuda:0", name .. ": the model on the device")
    if g.ref_device then t.assert_eq(g.ref_device, "cuda:0", name .. ": the reference model on the device") end
    if g.head_device then t.assert_eq(g.head_device, "cuda:0", name .. ": the value head on the device") end
    t.assert(math.abs(g.loss - r.loss) <= 1e-4 * math.abs(r.loss) + 1e-7,
      fmt("%s step %d loss %.9g vs cpu %.9g", name, s, g.loss, r.loss))
    t.assert(math.abs(g.grad_norm - r.grad_norm) <= 1e-3 * math.abs(r.grad_norm) + 1e-6,
      fmt("%s step %d grad_norm %.9g vs cpu %.9g", name, s, g.grad_norm, r.grad_norm))
    for k, v in pairs(r.rec) do
      -- while the policy still equals its reference (the first step of a LoRA
      -- run) the rewards are 0 up to rounding and which of them is larger is noise
      local tie = k == "rewards/accuracies" and math.abs(r.rec["rewards/margins"] or 0) < 1e-4
      if not SKIP[k] and not tie then
        local w = g.rec[k]
        t.assert(w ~= nil, fmt("%s step %d: %s logged on the cpu, not on the device", name, s, k))
        t.assert(math.abs(w - v) <= 1e-4 * math.abs(v) + 1e-5,
          fmt("%s step %d %s %.9g vs cpu %.9g", name, s, k, w, v))
        keys = keys + 1
      end
    end
  end
  return ref, got, keys
end

local function has(ref, key)
  for _, s in ipairs(ref) do if s.rec[key] == nil then return false end end
  return true
end

t.suite("cuda_pref", {
  qlora_nf4_double_quant_curve_matches_the_cpu = function()
    same_curves("nf4dq", {stage = "sft", dataset = "alpaca_demo", dataset_dir = SFT_DATA,
      quantization_bit = 4, quantization_type = "nf4", double_quantization = true, learning_rate = 1e-2})
  end,

  qlora_fp4_curve_matches_the_cpu = function()
    same_curves("fp4", {stage = "sft", dataset = "alpaca_demo", dataset_dir = SFT_DATA,
      quantization_bit = 4, quantization_type = "fp4", double_quantization = false, learning_rate = 1e-2})
  end,

  qlora_nf4_without_double_quant_and_fp4_with_it = function()
    same_curves("nf4", {stage = "sft", dataset = "alpaca_demo", dataset_dir = SFT_DATA,
      quantization_bit = 4, quantization_type = "nf4",
      double_quantization = false, learning_rate = 1e-2})
    same_curves("fp4dq", {stage = "sft", dataset = "alpaca_demo", dataset_dir = SFT_DATA,
      quantization_bit = 4, quantization_type = "fp4",
      double_quantization = true, learning_rate = 1e-2})
  end,

  rm_curve_matches_the_cpu = function()
    local ref, got = same_curves("rm", {stage = "rm"})
    t.assert(got[1].head_device ~= nil, "rm trains a value head")
    t.assert(has(ref, "accuracy"), "rm logs accuracy")
    t.assert(lfl.fs.exists(tmp .. "/rm_cuda/value_head.safetensors"), "the value head saved from the device")
  end,

  dpo_with_the_adapter_off_reference_matches_the_cpu = function()
    local ref = same_curves("dpo", {stage = "dpo", pref_loss = "sigmoid"})
    t.assert(has(ref, "rewards/margins") and has(ref, "logits/chosen"), "dpo logs TRL's metrics")
  end,

  dpo_with_a_separate_ref_model_matches_the_cpu = function()
    local _, got = same_curves("dpo_ref", {stage = "dpo", pref_loss = "sigmoid", ref_model = tmp .. "/model"})
    t.assert(got[1].ref_device ~= nil, "a separate reference model")
  end,

  dpo_full_with_the_frozen_reference_matches_the_cpu = function()
    local _, got = same_curves("dpo_full", {stage = "dpo", finetuning_type = "full", learning_rate = 1e-3})
    t.assert(got[1].ref_device ~= nil, "a frozen reference model")
  end,

  orpo_and_simpo_match_the_cpu = function()
    local ref = same_curves("orpo", {stage = "orpo"})
    t.assert(has(ref, "odds_ratio_loss"), "orpo logs odds_ratio_loss")
    same_curves("simpo", {stage = "simpo"})
  end,

  kto_curve_matches_the_cpu = function()
    local ref = same_curves("kto", {stage = "kto", dataset = "kto"})
    t.assert(has(ref, "kl"), "kto logs kl")
  end,

  what_the_device_path_lacks_is_refused = function()
    t.assert_error(function() lfl.trainer.run(recipe({device = "cuda", stage = "sft", dataset = "alpaca_demo",
      dataset_dir = SFT_DATA, quantization_bit = 8})) end, "a int8-quantized base (quantization_bit 8")
    -- a full reward model: the tiny llama with a value head beside it
    lfl.fs.mkdir(tmp .. "/reward")
    for _, f in ipairs({"config.json", "model.safetensors", "tokenizer.json"}) do
      lfl.fs.symlink(tmp .. "/model/" .. f, tmp .. "/reward/" .. f)
    end
    require("lfl.train.value_head").save(require("lfl.train.value_head").new(32), tmp .. "/reward")
    t.assert_error(function() lfl.trainer.run(recipe({device = "cuda", stage = "ppo", dataset = "alpaca_demo",
      dataset_dir = SFT_DATA, reward_model = tmp .. "/reward", reward_model_type = "full"})) end,
      "device cuda:0: stage ppo is not supported on CUDA yet")
  end,
})
t.run()
lfl.fs.remove(tmp)
