-- LlamaFactory compatibility count: every recipe of LlamaFactory's examples/
-- (../shared/reference/llamafactory-examples; each YAML with a
-- model_name_or_path, outside v1/, the experimental engine's own format) goes
-- through the command llamafactory-cli would run it with, in lfl's CLI path
-- (the recipe file as given, key=value overrides): inference/ -> `lfl chat`
-- (one turn: "Hi", then exit), merge_lora/ -> `lfl export`, the rest -> `lfl
-- train` (which predicts for do_predict). The model becomes SmolLM2-135M-Instruct
-- (~/.cache/lfl) and the run is made tiny (max_steps 1, cutoff_len 32, 4 samples
-- a dataset, 4 new tokens, GPTQ calibration on 2 windows of 32 tokens, output
-- into a scratch folder); adapter_name_or_path
-- becomes the adapter train_lora/qwen3_lora_sft.yaml has just written. Where the
-- recipe's template needs a token SmolLM2's tokenizer lacks (llama3's
-- <|eot_id|>), it runs again with template=smollm, and says so.
--
-- Each recipe either runs (and leaves its output: a trainer log, predictions,
-- an HF folder, a reply) or is refused with a message naming the setting; a Lua
-- error (a traceback, "attempt to ...", a position in lfl's own code) fails the
-- test, as does a recipe in RUNS that no longer runs. It prints
-- "N of 66 run, M refused: <reasons>" and the unknown settings of every recipe.
local t = lfl.test
local fmt = string.format
local home = lfl.home
local dir = home .. "/../shared/reference/llamafactory-examples"
local data = home .. "/../shared/data/llamafactory-data"
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"

if not lfl.fs.isdir(dir) or not lfl.fs.isdir(data) then
  print("SKIP test_llamafactory_examples: " .. dir .. " or " .. data .. " is absent")
  return
end
if not io.open(model, "rb") then
  print("FAIL test_llamafactory_examples: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end

-- the recipes lfl runs today; one that stops running fails the test
local RUNS = {
  "inference/qwen3.yaml", "inference/qwen3_full_sft.yaml", "inference/qwen3_lora_sft.yaml", "inference/qwen3vl.yaml",
  "merge_lora/mossvl_lora_sft.yaml", "merge_lora/qwen3_full_sft.yaml", "merge_lora/qwen3_lora_sft.yaml",
  "merge_lora/qwen3vl_lora_sft.yaml", "merge_lora/qwen3_gptq.yaml",
  "train_lora/qwen3_lora_dpo.yaml", "train_lora/qwen3_lora_kto.yaml", "train_lora/qwen3_lora_pretrain.yaml",
  "train_lora/qwen3_lora_reward.yaml", "train_lora/qwen3_lora_sft.yaml", "train_lora/qwen3_preprocess.yaml",
  "extras/badam/llama3_full_sft.yaml", "extras/galore/llama3_full_sft.yaml", "extras/loraplus/llama3_lora_sft.yaml",
  "extras/pissa/llama3_lora_sft.yaml", "extras/nlg_eval/llama3_lora_predict.yaml",
  "train_qlora/llama3_lora_sft_aqlm.yaml", "train_qlora/llama3_lora_sft_awq.yaml",
  "train_qlora/llama3_lora_sft_gptq.yaml",
  -- on-the-fly QLoRA (quantization_bit 4, bitsandbytes NF4/FP4)
  "train_qlora/qwen3_lora_sft_otfq.yaml", "train_qlora/qwen3_lora_sft_bnb_npu.yaml", "extras/fsdp_qlora/llama3_lora_sft.yaml",
  -- LlamaFactory's SFT loss variants (use_dft_loss, use_eaft_loss)
  "extras/dft/qwen2_full_sft.yaml", "extras/eaft/qwen25_05b_eaft_full.yaml",
  -- OFT (finetuning_type oft), and QOFT on an on-the-fly 4-bit base
  "extras/oft/llama3_oft_sft.yaml", "extras/qoft/llama3_oft_sft_awq.yaml", "extras/qoft/llama3_oft_sft_gptq.yaml",
  "extras/qoft/llama3_oft_sft_bnb_npu.yaml",
  -- use_muon (LlamaFactory's Muon: Newton-Schulz on every 2-D weight), use_adam_mini, use_apollo
  "extras/muon/qwen2_full_sft.yaml", "extras/adam_mini/qwen2_full_sft.yaml", "extras/apollo/llama3_full_sft.yaml",
  -- use_llama_pro on a model expanded by `lfl llama_pro`
  "extras/llama_pro/llama3_freeze_sft.yaml",
  -- use_asft_loss (full fine-tuning with a frozen reference copy), on a demo dataset
  "extras/asft/llama2_full_asft.yaml", "extras/asft/qwen2_full_asft.yaml",
  -- mixture_of_depths: convert (the MoD package's routed layers, lfl.model.mod)
  "extras/mod/llama3_full_sft.yaml",
  -- deepspeed ds_z3_config.json (ZeRO-3; in one process plain training)
  "train_full/qwen3_full_sft.yaml", "train_lora/qwen3_lora_sft_ds3.yaml",
}
local MUST_RUN = {}
for _, r in ipairs(RUNS) do MUST_RUN[r] = true end

local base = os.tmpname()
os.remove(base)
local tmp = base .. "_lfex"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)
local adapter = tmp .. "/lora_sft" -- train_lora/qwen3_lora_sft.yaml's output, for the recipes that load one

local function command_of(rel)
  if rel:match("^inference/") then return "chat" end
  if rel:match("^merge_lora/") then return "export" end
  return "train"
end

-- settings narrowed for time beyond the common ones, and why (printed)
local NARROWED = {
  -- GaLore's first step takes a rank-128 SVD of every targeted matrix (~0.5 s
  -- each on 2 cores, 210 for "all"): two minutes; q_proj alone is 30 of them
  ["extras/galore/llama3_full_sft.yaml"] = {"galore_target=q_proj", "galore_target all -> q_proj (one SVD a layer)"},
  -- the recipe trains models/llama3-8b-pro, made by extras/llama_pro/expand.sh (num_expand 8);
  -- SmolLM2's 30 layers take num_expand 2 (30 + 8 is no multiple of 8)
  ["extras/llama_pro/llama3_freeze_sft.yaml"] = {"freeze_trainable_layers=2",
    "model: SmolLM2 expanded by `lfl llama_pro --num_expand 2` (32 layers), freeze_trainable_layers 8 -> 2"},
  -- the ASFT recipes name the user's own medical / math sets, which LlamaFactory's
  -- demo dataset_info.json lacks (LlamaFactory stops on them too): a demo SFT set instead
  ["extras/asft/llama2_full_asft.yaml"] = {"dataset=alpaca_en_demo",
    "dataset med -> alpaca_en_demo (not in LlamaFactory's demo dataset_info.json)"},
  ["extras/asft/qwen2_full_asft.yaml"] = {"dataset=alpaca_en_demo",
    "dataset math -> alpaca_en_demo (not in LlamaFactory's demo dataset_info.json)"},
}

-- recipes that train a model made from the small one first (made once, on first use)
local expanded
-- the tiny llama's GPTQ / AWQ checkpoints (tests/golden/quant), with a tokenizer
local function ptq_dir(kind)
  local d = tmp .. "/tiny_" .. kind
  if not lfl.fs.exists(d .. "/config.json") then
    lfl.fs.mkdir(d)
    for _, f in ipairs({"tests/golden/quant/" .. kind .. "_llama/config.json",
                        "tests/golden/quant/" .. kind .. "_llama/model.safetensors", "tests/golden/serve/tokenizer.json"}) do
      lfl.fs.symlink(lfl.home .. "/" .. f, d .. "/" .. f:match("[^/]+$"))
    end
  end
  return d
end
local MODEL_FOR = {
  ["train_qlora/llama3_lora_sft_gptq.yaml"] = function() return ptq_dir("gptq") end,
  ["train_qlora/llama3_lora_sft_awq.yaml"] = function() return ptq_dir("awq") end,
  ["extras/qoft/llama3_oft_sft_gptq.yaml"] = function() return ptq_dir("gptq") end,
  ["extras/qoft/llama3_oft_sft_awq.yaml"] = function() return ptq_dir("awq") end,
  ["extras/llama_pro/llama3_freeze_sft.yaml"] = function()
    if not expanded then
      expanded = tmp .. "/smollm2_pro"
      require("lfl.cmd.llama_pro").run({"--model_name_or_path", model, "--output_dir", expanded, "--num_expand", "2"})
    end
    return expanded
  end,
}

local function overrides(rel, recipe, out, template)
  local o = {"model_name_or_path=" .. (MODEL_FOR[rel] and MODEL_FOR[rel]() or model)}
  if NARROWED[rel] then o[#o + 1] = NARROWED[rel][1] end
  local cmd = command_of(rel)
  if recipe.adapter_name_or_path then o[#o + 1] = "adapter_name_or_path=" .. adapter end
  if template then o[#o + 1] = "template=" .. template end
  -- a recipe's tokenized_path is relative to where it runs: into the scratch folder
  if recipe.tokenized_path then o[#o + 1] = "tokenized_path=" .. out .. "_tokenized" end
  if cmd == "train" then
    for _, kv in ipairs({"output_dir=" .. out, "max_steps=1", "cutoff_len=32", "max_samples=4", "dataset_dir=" .. data,
      "per_device_train_batch_size=1", "per_device_eval_batch_size=1", "gradient_accumulation_steps=1",
      "logging_steps=1", "save_steps=1000", "max_new_tokens=4", "disable_tqdm=true"}) do o[#o + 1] = kv end
  elseif cmd == "export" then
    o[#o + 1] = "export_dir=" .. out
    -- GPTQ's calibration file is relative to LlamaFactory's checkout (data/...): the demo data
    -- here; two windows of 32 tokens (the recipe: 128 of 1024)
    if recipe.export_quantization_dataset then
      o[#o + 1] = "export_quantization_dataset=" .. data .. "/" .. tostring(recipe.export_quantization_dataset):gsub("^data/", "")
      o[#o + 1] = "export_quantization_nsamples=2"
      o[#o + 1] = "export_quantization_maxlen=32"
    end
  else
    o[#o + 1] = "max_new_tokens=4"
  end
  return o
end

-- runs fn with print and io.write captured (into the returned text)
local function captured(fn)
  local buf, real_print, real_out = {}, print, io.output()
  local sink = tmp .. "/stdout.txt"
  print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    buf[#buf + 1] = table.concat(parts, "\t") .. "\n"
  end
  io.output(sink)
  local ok, err = xpcall(fn, debug.traceback)
  io.output():close()
  io.output(real_out)
  print = real_print
  local f = io.open(sink, "rb")
  buf[#buf + 1] = f and f:read("*a") or ""
  if f then f:close() end
  return ok, err, table.concat(buf)
end

-- a refusal is a message for the user; a Lua error is a crash
local function is_crash(msg)
  return msg:find("attempt to ", 1, true) or msg:find("bad argument #", 1, true)
    or msg:find("stack overflow", 1, true) or msg:find("^[^\n]*%.lua:%d+:") or msg:find("^[^\n]*%.c:%d+:")
end

-- the first line of an error, without its traceback and the recipe's path
local function reason_of(err)
  local msg = tostring(err):gsub("\nstack traceback:.*$", "")
  local at = msg:find(dir .. "/", 1, true)
  while at do
    msg = msg:sub(1, at - 1) .. msg:sub(at + #dir + 1)
    at = msg:find(dir .. "/", 1, true)
  end
  return msg
end

local function produced(cmd, out, text)
  if cmd == "chat" then return text:find("Assistant: ", 1, true) ~= nil end
  if cmd == "export" then return lfl.fs.exists(out .. "/config.json") end
  return lfl.fs.exists(out .. "/trainer_log.jsonl") or lfl.fs.exists(out .. "/generated_predictions.jsonl")
end

local function run_one(rel, recipe, i, template)
  local cmd = command_of(rel)
  local out = rel == "train_lora/qwen3_lora_sft.yaml" and adapter or (tmp .. "/" .. i)
  local args = {dir .. "/" .. rel}
  for _, kv in ipairs(overrides(rel, recipe, out, template)) do args[#args + 1] = kv end
  local input = tmp .. "/stdin.txt"
  local f = assert(io.open(input, "wb"))
  f:write("Hi\nexit\n")
  f:close()
  io.input(input)
  local ok, err, text = captured(function() return require("lfl.cmd." .. cmd).run(args) end)
  io.input():close()
  io.input(io.stdin)
  collectgarbage()
  collectgarbage()
  local made = ok and produced(cmd, out, text)
  if out ~= adapter then lfl.fs.remove(out) end
  return ok, err, made
end

local suite = {}

suite.every_recipe_runs_or_is_refused_by_name = function()
  local recipes = {}
  for _, rel in ipairs(lfl.fs.walk(dir)) do
    if rel:match("%.ya?ml$") and not rel:match("^v1/") then
      local r = lfl.args.read_yaml(dir .. "/" .. rel)
      if r.model_name_or_path then recipes[#recipes + 1] = {rel = rel, recipe = r} end
    end
  end
  t.assert(#recipes >= 51, "LlamaFactory's recipes: " .. #recipes)
  -- LFL_EXAMPLES=<text>: only the recipes whose path contains it (and the SFT
  -- adapter the inference recipes load), for working on one recipe
  local only = os.getenv("LFL_EXAMPLES")
  if only and only ~= "" then
    local kept = {}
    for _, e in ipairs(recipes) do
      if e.rel:find(only, 1, true) or e.rel == "train_lora/qwen3_lora_sft.yaml" then kept[#kept + 1] = e end
    end
    recipes = kept
    print(fmt("LFL_EXAMPLES=%s: %d recipes", only, #recipes))
  end
  -- the SFT adapter first: the inference, merge and predict recipes load it
  table.sort(recipes, function(a, b)
    local ka, kb = a.rel == "train_lora/qwen3_lora_sft.yaml", b.rel == "train_lora/qwen3_lora_sft.yaml"
    if ka ~= kb then return ka end
    return a.rel < b.rel
  end)
  local ran, refused, crashed, lost, notes = {}, {}, {}, {}, {}
  local by_reason, unknown = {}, {}
  local t0 = lfl.sys.clock()
  for i, e in ipairs(recipes) do
    local rel, r = e.rel, e.recipe
    local own_unknown = {}
    local cmd_own = require("lfl.cmd." .. command_of(rel)).spec
    cmd_own = type(cmd_own) == "table" and cmd_own.recipe_own or {}
    for k in pairs(r) do
      if lfl.args.DEFAULTS[k] == nil and not cmd_own[k] then
        unknown[k] = (unknown[k] or 0) + 1
        own_unknown[#own_unknown + 1] = k
      end
    end
    table.sort(own_unknown)
    local t1 = lfl.sys.clock()
    local ok, err, made = run_one(rel, r, i)
    local swapped
    if not ok and tostring(err):find("the tokenizer has no token", 1, true) and r.template then
      -- the recipe's template is for its own model's tokenizer
      swapped = r.template
      ok, err, made = run_one(rel, r, i, "smollm")
    end
    print(fmt("%-58s %-6s %5.1f s  %s", rel, command_of(rel), lfl.sys.clock() - t1,
      ok and (made and "runs" or "no output") or "refused"))
    if ok and made then
      ran[#ran + 1] = rel
      if swapped then notes[#notes + 1] = fmt("%s: template %s -> smollm (%s)", rel, swapped, "SmolLM2 lacks its tokens") end
    elseif ok then
      crashed[#crashed + 1] = rel .. ": returned without its output (" .. command_of(rel) .. ")"
    else
      local msg = reason_of(err)
      if is_crash(msg) then crashed[#crashed + 1] = rel .. ": " .. msg
      else
        local first = msg:gsub("\n.*", "")
        local key = first:sub(1, #rel + 2) == rel .. ": " and first:sub(#rel + 3) or first
        refused[#refused + 1] = rel .. ": " .. key ..
          (#own_unknown > 0 and " [settings lfl does not know: " .. table.concat(own_unknown, ", ") .. "]" or "")
        by_reason[key] = (by_reason[key] or 0) + 1
      end
      if MUST_RUN[rel] then lost[#lost + 1] = rel .. ": " .. msg:gsub("\n.*", "") end
    end
  end
  -- the summary the issue asks for; "51": without the back-end specific folders
  -- (ascend/, ktransformers/, megatron/, megatron_bridge/)
  local core_total, core_ran = 0, 0
  local function is_core(rel) return not (rel:match("^ascend/") or rel:match("^ktransformers/") or rel:match("^megatron")) end
  for _, e in ipairs(recipes) do if is_core(e.rel) then core_total = core_total + 1 end end
  for _, rel in ipairs(ran) do if is_core(rel) then core_ran = core_ran + 1 end end
  print(fmt("LlamaFactory examples: %d of %d run, %d refused (%.0f s); without ascend/, ktransformers/, megatron*/: " ..
    "%d of %d run", #ran, #recipes, #refused, lfl.sys.clock() - t0, core_ran, core_total))
  local reasons = {}
  for k, n in pairs(by_reason) do reasons[#reasons + 1] = {k, n} end
  table.sort(reasons, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
  for _, x in ipairs(reasons) do print(fmt("  %2d x %s", x[2], x[1])) end
  print("refused:")
  for _, x in ipairs(refused) do print("  " .. x) end
  local keys = {}
  for k, n in pairs(unknown) do keys[#keys + 1] = fmt("%s (%d)", k, n) end
  table.sort(keys)
  print("settings lfl does not know, in how many recipes: " .. table.concat(keys, ", "))
  for _, n in ipairs(notes) do print("note: " .. n) end
  for rel, n in pairs(NARROWED) do print("note: " .. rel .. ": " .. n[2]) end
  print("note: extras/mod/llama3_full_sft.yaml runs MoD 1.2.0's semantics: each routed layer multiplies its tokens' "
    .. "block output, residual included, by the raw router score, so a freshly converted 30-layer SmolLM2 overflows "
    .. "to a NaN loss (the step is skipped), in torch with the MoD package as in lfl")
  print("note: train_qlora/*_gptq|awq and extras/qoft/*_gptq|awq train the tiny llama's GPTQ / AWQ checkpoints (tests/golden/quant); *_aqlm " ..
    "runs on SmolLM2's GGUF in place of its AQLM checkpoint (an AQLM checkpoint is refused by name); vision recipes " ..
    "that run use text data only")
  for _, rel in ipairs(ran) do
    if not MUST_RUN[rel] then print("now runs (add it to RUNS): " .. rel) end
  end
  t.assert(#crashed == 0, "crashed:\n  " .. table.concat(crashed, "\n  "))
  t.assert(#lost == 0, "no longer run:\n  " .. table.concat(lost, "\n  "))
  if not (only and only ~= "") then t.assert(#ran >= #RUNS, fmt("%d run, %d expected", #ran, #RUNS)) end
end

t.suite("llamafactory_examples", suite)
t.run()
lfl.fs.remove(tmp)
