-- Recipe arguments: LlamaFactory's names and defaults, key=value overrides, a
-- YAML reader for LlamaFactory recipe files, validation of incompatible
-- combinations, and "did you mean" for unknown keys.
local lfl = lfl
local fmt, concat = string.format, table.concat

local M = {}

local NIL = {} -- marks "no default" entries so they are still known keys

M.DEFAULTS = {
  -- model
  model_name_or_path = NIL, adapter_name_or_path = NIL, cache_dir = NIL, resize_vocab = false,
  add_tokens = NIL, add_special_tokens = NIL,
  rope_scaling = NIL, disable_gradient_checkpointing = false, gradient_checkpointing_policy = "auto",
  trust_remote_code = false, model_revision = "main",
  infer_dtype = "auto", print_param_status = false, flash_attn = "auto", use_cache = true, hf_hub_token = NIL,
  quantization_bit = NIL, quantization_method = "bnb", quantization_type = "nf4", double_quantization = true,
  export_dir = NIL, export_size = 5, export_device = "cpu", export_legacy_format = false,
  -- data
  template = NIL, dataset = NIL, eval_dataset = NIL, dataset_dir = NIL, cutoff_len = 2048, train_on_prompt = false,
  mask_history = false, streaming = false, buffer_size = 16384, mix_strategy = "concat", interleave_probs = NIL,
  overwrite_cache = false, preprocessing_num_workers = NIL, max_samples = NIL, val_size = 0.0, packing = NIL,
  neat_packing = false, tool_format = NIL, default_system = NIL, enable_thinking = true, tokenized_path = NIL,
  preprocessing_batch_size = 1000, ignore_pad_token_for_loss = true, strict = false,
  -- finetuning
  stage = "sft", finetuning_type = "lora", pure_bf16 = false, plot_loss = false, compute_accuracy = false,
  disable_shuffling = false, freeze_trainable_layers = 2, freeze_trainable_modules = "all",
  freeze_extra_modules = NIL, lora_rank = 8, lora_alpha = NIL, lora_dropout = 0.0, lora_target = "all",
  additional_target = NIL, loraplus_lr_ratio = NIL, loraplus_lr_embedding = 1e-6, use_rslora = false,
  use_dora = false, pissa_init = false, pissa_iter = 16, pissa_convert = false, create_new_adapter = false,
  pref_beta = 0.1, pref_ftx = 0.0, pref_loss = "sigmoid", dpo_label_smoothing = 0.0, kto_chosen_weight = 1.0,
  kto_rejected_weight = 1.0, simpo_gamma = 0.5,
  -- grpo (lfl, beyond LlamaFactory; TRL's GRPOConfig names prefixed where they would clash): reward_funcs (functions
  -- or recipes/rewards/ names), num_generations, max_completion_length, grpo_beta (TRL beta), grpo_epsilon (TRL
  -- epsilon), grpo_loss_type (TRL loss_type), reward_format_pattern / reward_length_target for the bundled rewards
  reward_funcs = NIL, num_generations = 4, max_completion_length = 32, grpo_beta = 0.04, grpo_epsilon = 0.2,
  grpo_loss_type = "dapo", reward_format_pattern = "^%s*%-?%d+%.?%s*$", reward_length_target = 16, ref_model = NIL, ref_model_adapters = NIL, reward_model = NIL,
  use_galore = false, galore_target = "all", galore_rank = 16, galore_update_interval = 200, galore_scale = 2.0,
  galore_proj_type = "std", galore_layerwise = false,
  use_badam = false, badam_mode = "layer", badam_start_block = NIL, badam_switch_mode = "ascending",
  badam_switch_interval = 50, badam_update_ratio = 0.05, badam_mask_mode = "adjacent", badam_verbose = 0,
  -- training
  output_dir = NIL, overwrite_output_dir = false, do_train = true, do_eval = false, do_predict = false,
  per_device_train_batch_size = 8, per_device_eval_batch_size = 8, gradient_accumulation_steps = 1,
  learning_rate = 5e-5, weight_decay = 0.0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8,
  max_grad_norm = 1.0, num_train_epochs = 3.0, max_steps = -1, lr_scheduler_type = "linear",
  lr_scheduler_kwargs = NIL, warmup_ratio = 0.0, warmup_steps = 0, logging_steps = 500, save_steps = 500,
  save_total_limit = NIL, eval_strategy = "no", eval_steps = NIL, bf16 = false, fp16 = false, optim = "adamw_torch",
  seed = 42, resume_from_checkpoint = NIL, report_to = "none", save_only_model = false, ddp_timeout = NIL,
  dataloader_num_workers = 0, predict_with_generate = false, generation_max_length = NIL,
  save_strategy = "steps", logging_strategy = "steps", run_name = NIL, threads = NIL, disable_tqdm = false,
  max_nonfinite_steps = 3, -- lfl: stop (with a checkpoint) after this many non-finite steps in a row; 0 never
  -- generation
  do_sample = true, temperature = 0.95, top_p = 0.7, top_k = 50, num_beams = 1, max_length = 1024,
  max_new_tokens = 1024, repetition_penalty = 1.0, length_penalty = 1.0, skip_special_tokens = true,
}

-- edit distance for suggestions
local function distance(a, b)
  local la, lb = #a, #b
  local prev = {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = {[0] = i}
    for j = 1, lb do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[lb]
end

function M.suggest(key)
  local best, bd = nil, math.huge
  for k in pairs(M.DEFAULTS) do
    local d = distance(key, k)
    if d < bd then best, bd = k, d end
  end
  if best and bd <= math.max(2, math.floor(#key / 3)) then return best end
  return nil
end

-- scalar from text (YAML value or key=value override)
function M.parse_value(s)
  s = s:match("^%s*(.-)%s*$")
  if s == "" or s == "null" or s == "~" or s == "None" then return nil end
  if s == "true" or s == "True" then return true end
  if s == "false" or s == "False" then return false end
  local q = s:match('^"(.*)"$') or s:match("^'(.*)'$")
  if q then return q end
  local n = tonumber(s)
  if n then return n end
  return s
end

-- A YAML subset covering LlamaFactory recipes: "key: value" lines, comments,
-- blank lines, and one level of nested mappings / "- item" lists.
function M.read_yaml(path)
  local f, err = io.open(path, "rb")
  if not f then error(fmt("%s: cannot read: %s", path, tostring(err)), 0) end
  local out, parent, n = {}, nil, 0
  for raw in f:lines() do
    n = n + 1
    local line = raw:gsub("%s+#.*$", ""):gsub("^#.*$", "")
    if line:match("%S") then
      local indent = #line:match("^(%s*)")
      local item = line:match("^%s*%-%s*(.*)$")
      local key, val = line:match("^%s*([%w_%.%-]+)%s*:%s*(.-)%s*$")
      if item and parent and indent > 0 then
        if type(out[parent]) ~= "table" then out[parent] = {} end
        local t = out[parent]
        t[#t + 1] = M.parse_value(item)
      elseif key and indent > 0 and parent then
        if type(out[parent]) ~= "table" then out[parent] = {} end
        out[parent][key] = M.parse_value(val)
      elseif key and indent == 0 then
        if val == "" then parent = key; out[key] = out[key] or lfl.json.null
        else parent = nil; out[key] = M.parse_value(val) end
      else
        f:close()
        error(fmt("%s:%d: cannot parse '%s' (expected 'key: value')", path, n, raw), 0)
      end
    end
  end
  f:close()
  for k, v in pairs(out) do if v == lfl.json.null then out[k] = nil end end
  return out
end

-- Merges recipe + overrides over the defaults and validates. Returns the table.
function M.resolve(recipe, overrides, source)
  local args = {}
  for k, v in pairs(M.DEFAULTS) do if v ~= NIL then args[k] = v end end
  local function set(k, v, where)
    if M.DEFAULTS[k] == nil and type(v) ~= "function" and k ~= "datasets" and k ~= "templates" then
      local s = M.suggest(k)
      error(fmt("%s: unknown argument '%s'%s", where, k, s and fmt(" (did you mean '%s'?)", s) or ""), 0)
    end
    args[k] = v
  end
  for k, v in pairs(recipe or {}) do set(k, v, source or "recipe") end
  for _, kv in ipairs(overrides or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then error(fmt("command line: '%s' is not key=value", kv), 0) end
    set(k, M.parse_value(v), "command line")
  end
  M.validate(args)
  return args
end

function M.validate(a)
  local function bad(msg) error("arguments: " .. msg, 0) end
  -- the valid stages are the approach modules found (recipes/approaches/, ~/.lfl/recipes/approaches/)
  local stage_ok, stage_msg = require("lfl.train.approach").check_stage(a.stage)
  if not stage_ok then bad(stage_msg) end
  local ft = {lora = 1, freeze = 1, full = 1}
  if not ft[a.finetuning_type] then bad(fmt("finetuning_type '%s' (lora, freeze, full)", tostring(a.finetuning_type))) end
  if not a.model_name_or_path then bad("model_name_or_path is required") end
  if a.do_train and not a.dataset then bad("dataset is required for training") end
  if a.stage ~= "sft" then
    for _, k in ipairs({"predict_with_generate", "neat_packing", "train_on_prompt", "mask_history"}) do
      if a[k] then bad(k .. " is only valid for stage sft") end
    end
  end
  if a.train_on_prompt and a.mask_history then bad("train_on_prompt and mask_history are mutually exclusive") end
  local policies = {auto = 1, selective = 1, full = 1}
  if not policies[a.gradient_checkpointing_policy] then
    bad(fmt("gradient_checkpointing_policy '%s' (auto, selective, full)", tostring(a.gradient_checkpointing_policy)))
  end
  if a.do_predict and a.stage == "sft" and not a.predict_with_generate then
    bad("do_predict for sft needs predict_with_generate")
  end
  if a.finetuning_type ~= "lora" then
    for _, k in ipairs({"loraplus_lr_ratio", "use_rslora", "use_dora", "pissa_init"}) do
      if a[k] then bad(k .. " is only valid with finetuning_type lora") end
    end
  end
  if a.finetuning_type == "lora" and (a.use_galore or a.use_badam) then
    bad("LoRA cannot be combined with GaLore or BAdam")
  end
  if a.use_galore and a.use_badam then bad("GaLore and BAdam are mutually exclusive") end
  if a.quantization_bit and a.finetuning_type ~= "lora" then bad("quantization_bit works only with lora") end
  -- added tokens imply resize_vocab (LlamaFactory's ModelArguments.__post_init__)
  if a.add_tokens or a.add_special_tokens then a.resize_vocab = true end
  if a.quantization_bit and a.resize_vocab then bad("cannot resize the embeddings of a quantized model (resize_vocab)") end
  if a.pissa_init and (a.stage == "ppo" or a.stage == "kto") then bad("PiSSA is not allowed for ppo/kto") end
  if a.streaming and (not a.max_steps or a.max_steps <= 0) then bad("streaming needs max_steps") end
  if a.output_dir == "" then bad("output_dir is empty (give the folder the run writes to, e.g. saves/my-run)") end
  if a.export_dir == "" then bad("export_dir is empty (give the folder the exported model goes to)") end
  local function whole(k, lo)
    local v = a[k]
    if type(v) ~= "number" or v ~= math.floor(v) or v < lo then
      bad(fmt("%s must be a whole number >= %d (got %s)", k, lo, tostring(v)))
    end
  end
  whole("gradient_accumulation_steps", 1)
  whole("per_device_train_batch_size", 1)
  whole("per_device_eval_batch_size", 1)
  whole("max_nonfinite_steps", 0)
  -- HF: the number of optimizer steps is max_steps when > 0, else num_train_epochs epochs
  if a.do_train and not (a.max_steps and a.max_steps > 0) then
    if type(a.num_train_epochs) ~= "number" or not (a.num_train_epochs > 0) then
      bad(fmt("num_train_epochs must be > 0 when max_steps is not set (got %s): there would be no step to train",
        tostring(a.num_train_epochs)))
    end
  end
  -- a prompt and a response need at least a token each
  if type(a.cutoff_len) ~= "number" or a.cutoff_len ~= math.floor(a.cutoff_len) or a.cutoff_len < 2 then
    bad(fmt("cutoff_len must be a whole number >= 2 (got %s): a training example keeps at least one prompt and "
      .. "one response token", tostring(a.cutoff_len)))
  end
  if a.streaming and a.max_samples then bad("max_samples is incompatible with streaming") end
  if a.neat_packing then a.packing = true end
  if a.packing == nil then a.packing = a.stage == "pt" end
  if a.lora_alpha == nil then a.lora_alpha = 2 * a.lora_rank end
  if a.bf16 and a.fp16 then bad("bf16 and fp16 are mutually exclusive") end
  local sched = {linear = 1, cosine = 1, cosine_with_restarts = 1, polynomial = 1, constant = 1,
                 constant_with_warmup = 1, inverse_sqrt = 1, warmup_stable_decay = 1, cosine_with_min_lr = 1}
  if not sched[a.lr_scheduler_type] then bad(fmt("lr_scheduler_type '%s' is not supported", tostring(a.lr_scheduler_type))) end
  if a.val_size and (a.val_size < 0) then bad("val_size must be >= 0") end
  -- what the stage's approach module reads (pref_loss, pref_beta, ... for the preference stages)
  local ap = require("lfl.train.approach").load(a.stage)
  if ap.check_args then ap.check_args(a) end
  return a
end

-- Loads a recipe: a .lua file returning a table (or calling lfl.train itself),
-- or a LlamaFactory .yaml file.
function M.load_recipe(path)
  if path:match("%.ya?ml$") then return M.read_yaml(path) end
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  local r = chunk()
  if type(r) ~= "table" then error(fmt("%s: a recipe must return a table of arguments", path), 0) end
  return r
end

return M
