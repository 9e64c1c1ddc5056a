-- Recipe arguments: LlamaFactory's names and defaults (M.DEFAULTS), what each
-- one takes (M.SPEC: type, range, the values lfl implements, what it applies
-- to), key=value overrides, a YAML reader for LlamaFactory recipe files,
-- validation of incompatible combinations, and "did you mean" for unknown keys.
-- A value is checked, and coerced from text where HfArgumentParser would
-- ("8" -> 8, "true" -> true), as it is set: a bad one is refused with its key,
-- the value and what was expected before anything loads. A setting lfl cannot
-- honour is refused with a message naming it, never dropped; the few that
-- change nothing in lfl (dataloader_num_workers, ...) are accepted with a printed note.
local lfl = lfl
local fmt, concat = string.format, table.concat

local M = {}

local NIL = {} -- marks "no default" entries so they are still known keys

M.DEFAULTS = {
  -- model
  model_name_or_path = NIL, adapter_name_or_path = NIL, cache_dir = NIL, resize_vocab = false,
  add_tokens = NIL, add_special_tokens = NIL,
  rope_scaling = NIL, disable_gradient_checkpointing = false, gradient_checkpointing_policy = "auto",
  moe_aux_loss_coef = NIL,
  trust_remote_code = false, model_revision = "main",
  infer_dtype = "auto", print_param_status = false, flash_attn = "auto", use_cache = true, hf_hub_token = NIL,
  mixture_of_depths = NIL,
  gguf_blocks = NIL,
  quantization_bit = NIL, quantization_method = "bnb", quantization_type = "nf4", double_quantization = true,
  export_dir = NIL, export_size = 5, export_device = "cpu", export_legacy_format = false,
  export_format = "safetensors", export_quantization = "f16",
  export_quantization_bit = NIL, export_quantization_dataset = NIL, export_quantization_nsamples = 128,
  export_quantization_maxlen = 1024, export_hub_model_id = NIL,
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
  oft_rank = 0, oft_block_size = 32, oft_target = "all", module_dropout = 0.0,
  pref_beta = 0.1, pref_ftx = 0.0, pref_loss = "sigmoid", dpo_label_smoothing = 0.0, kto_chosen_weight = 1.0,
  kto_rejected_weight = 1.0, simpo_gamma = 0.5,
  use_dft_loss = false, use_asft_loss = false, asft_alpha = 0.1, use_eaft_loss = false, eaft_alpha = 1.0,
  -- grpo (lfl, beyond LlamaFactory; TRL's GRPOConfig names prefixed where they would clash): reward_funcs (functions
  -- or recipes/rewards/ names), num_generations, max_completion_length, grpo_beta (TRL beta), grpo_epsilon (TRL
  -- epsilon), grpo_loss_type (TRL loss_type), reward_format_pattern / reward_length_target for the bundled rewards
  reward_funcs = NIL, num_generations = 4, max_completion_length = 32, grpo_beta = 0.04, grpo_epsilon = 0.2,
  grpo_loss_type = "dapo", reward_format_pattern = "^%s*%-?%d+%.?%s*$", reward_length_target = 16, ref_model = NIL, ref_model_adapters = NIL, reward_model = NIL,
  -- ppo (LlamaFactory's FinetuningArguments)
  reward_model_type = "lora", reward_model_adapters = NIL, reward_model_quantization_bit = NIL, ppo_buffer_size = 1,
  ppo_epochs = 4, ppo_score_norm = false, ppo_target = 6.0, ppo_whiten_rewards = false,
  use_galore = false, galore_target = "all", galore_rank = 16, galore_update_interval = 200, galore_scale = 2.0,
  galore_proj_type = "std", galore_layerwise = false,
  use_muon = false, use_llama_pro = false, use_adam_mini = false,
  use_apollo = false, apollo_target = "all", apollo_rank = 16, apollo_update_interval = 200, apollo_scale = 32.0,
  apollo_proj = "random", apollo_proj_type = "std", apollo_scale_type = "channel", apollo_layerwise = false,
  apollo_scale_front = false,
  use_badam = false, badam_mode = "layer", badam_start_block = NIL, badam_switch_mode = "ascending",
  badam_switch_interval = 50, badam_update_ratio = 0.05, badam_mask_mode = "adjacent", badam_verbose = 0,
  -- training (do_eval: unset evaluates at the end when there is an eval set; false never, true requires one)
  output_dir = NIL, overwrite_output_dir = false, do_train = true, do_eval = NIL, do_predict = false,
  per_device_train_batch_size = 8, per_device_eval_batch_size = 8, gradient_accumulation_steps = 1,
  learning_rate = 5e-5, weight_decay = 0.0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8,
  max_grad_norm = 1.0, num_train_epochs = 3.0, max_steps = -1, lr_scheduler_type = "linear",
  lr_scheduler_kwargs = NIL, warmup_ratio = 0.0, warmup_steps = 0, logging_steps = 500, save_steps = 500,
  save_total_limit = NIL, eval_strategy = "no", eval_steps = NIL, bf16 = false, fp16 = false, optim = "adamw_torch",
  seed = 42, full_determinism = false, neftune_noise_alpha = NIL, resume_from_checkpoint = NIL, report_to = "none", save_only_model = false, ddp_timeout = NIL, deepspeed = NIL,
  dataloader_num_workers = 0, predict_with_generate = false, generation_max_length = NIL,
  save_strategy = "steps", logging_strategy = "steps", run_name = NIL, threads = NIL, device = "cpu", disable_tqdm = false,
  max_nonfinite_steps = 3, -- lfl: stop (with a checkpoint) after this many non-finite steps in a row; 0 never
  -- generation
  do_sample = true, temperature = 0.95, top_p = 0.7, top_k = 50, num_beams = 1, max_length = 1024,
  max_new_tokens = 1024, repetition_penalty = 1.0, length_penalty = 1.0, skip_special_tokens = true,
}

-- Lua recipes only: inline dataset descriptions and templates, by name
local LUA_ONLY = {datasets = true, templates = true}

-- ---------------------------------------------------------------- the spec

-- M.SPEC[key] = a rule:
--   type      int | number | bool | string | path | list | enum | dict | numbers | path_or_bool | table
--             | funcs (a function, or a list of functions and names)
--   min, max  inclusive bounds; gt, lt: exclusive bounds; one_of: the allowed integers
--   values    an enum's values (LlamaFactory's / transformers')
--   lfl       the values lfl implements when fewer than `values`, with `lfl_why`
--   check     function(v) -> nil, or what was expected (a rule the bounds cannot say)
--   unsupported  why: any value but the default is refused (lfl does not implement it)
--   inert     why: a value but the default changes nothing in lfl; accepted with a note
--   applies   function(a) -> true, or why a value but the default would have no effect
--   limit     function(v) -> nil, or why lfl cannot do what a valid value asks
-- Bounds are LlamaFactory's, transformers', PEFT's or torch's where they have
-- them (torch's AdamW: lr >= 0, 0 <= betas < 1, eps >= 0, weight_decay >= 0;
-- PEFT: r > 0; transformers: warmup_ratio in [0, 1], *_steps > 1 whole, top_p in
-- (0, 1], repetition_penalty > 0); lfl adds one only where a value would train
-- nothing or crash (lora_dropout < 1, negative max_grad_norm).

local function lora(a) return a.finetuning_type == "lora" or fmt("it applies to finetuning_type lora (this run's is %s)",
  tostring(a.finetuning_type)) end
local function oft(a) return a.finetuning_type == "oft" or fmt("it applies to finetuning_type oft (this run's is %s)",
  tostring(a.finetuning_type)) end
-- LlamaFactory 0.9.5 builds the OFT adapter on lora_target too (model/adapter.py)
local function lora_or_oft(a) return a.finetuning_type == "lora" or a.finetuning_type == "oft" or
  fmt("it applies to finetuning_type lora or oft (this run's is %s)", tostring(a.finetuning_type)) end
local function freeze(a) return a.finetuning_type == "freeze" or
  fmt("it applies to finetuning_type freeze (this run's is %s)", tostring(a.finetuning_type)) end
local function galore(a) return a.use_galore == true or "it applies with use_galore: true" end
local function apollo(a) return a.use_apollo == true or "it applies with use_apollo: true" end
local function badam_layer(a)
  if not a.use_badam then return "it applies with use_badam: true" end
  return a.badam_mode == "layer" or "it applies to badam_mode layer (this run's is ratio)"
end
local function badam_ratio(a)
  if not a.use_badam then return "it applies with use_badam: true" end
  return a.badam_mode == "ratio" or "it applies to badam_mode ratio (this run's is layer)"
end
local function quantized(a) return a.quantization_bit ~= nil or "it applies with quantization_bit" end
-- quantization_type and double_quantization: 4-bit only (LlamaFactory passes them to load_in_4bit only)
local function quantized4(a)
  if a.quantization_bit == 4 then return true end
  return a.quantization_bit and "it applies with quantization_bit: 4 (8-bit LLM.int8 has no type or double "
    .. "quantization)" or "it applies with quantization_bit"
end
local function stages(...)
  local list = {...}
  return function(a)
    for _, s in ipairs(list) do if a.stage == s then return true end end
    return fmt("it applies to stage %s (this run's is %s)", concat(list, ", "), tostring(a.stage))
  end
end
-- the stages with a reference model, and sft with use_asft_loss (its KL term's reference)
local function with_reference(a)
  if a.stage == "sft" and a.use_asft_loss == true then return true end
  local r = stages("dpo", "kto", "ppo")(a)
  return r == true or (r .. ", or to stage sft with use_asft_loss: true")
end
local function strategy(key, want)
  return function(a)
    return a[key] == want or fmt("it applies with %s: %s (this run's is %s)", key, want, tostring(a[key]))
  end
end

-- HF TrainingArguments: a step interval > 1 is a whole number; below 1 it is a
-- fraction of the total steps
local function steps_rule(v)
  if v > 1 and v ~= math.floor(v) then return "a whole number of steps, or a fraction (< 1) of the total steps" end
end

local HF_SCHEDULERS = {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
  "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay"}
local LFL_SCHEDULERS = {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
  "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay"}
-- transformers' OptimizerNames
local HF_OPTIMS = {"adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adamw_apex_fused",
  "adafactor", "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
  "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit", "paged_adamw_8bit",
  "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb",
  "rmsprop_bnb_8bit", "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor",
  "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo", "adalomo",
  "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw",
  "apollo_adamw_layerwise", "stable_adamw", "adamw_hf"}
-- the same update as one of lfl's optimizers (paged: CUDA unified-memory paging of the same state)
M.OPTIMS = {adamw_torch = "adamw", adamw_torch_fused = "adamw", adamw_hf = "adamw", adamw_apex_fused = "adamw",
  paged_adamw_32bit = "adamw", adamw_8bit = "adamw_8bit", adamw_bnb_8bit = "adamw_8bit",
  paged_adamw_8bit = "adamw_8bit", sgd = "sgd"}
local LFL_OPTIMS = {}
for k in pairs(M.OPTIMS) do LFL_OPTIMS[#LFL_OPTIMS + 1] = k end
table.sort(LFL_OPTIMS)
-- transformers' report_to integrations
local HF_REPORTS = {"all", "none", "azure_ml", "clearml", "codecarbon", "comet_ml", "dagshub", "dvclive", "flyte",
  "mlflow", "neptune", "swanlab", "tensorboard", "trackio", "wandb"}

M.SPEC = {
  -- model
  model_name_or_path = {type = "path"},
  adapter_name_or_path = {type = "list"},
  cache_dir = {type = "path"},
  resize_vocab = {type = "bool"},
  add_tokens = {type = "list"},
  add_special_tokens = {type = "list"},
  -- LlamaFactory's configure_rope (lfl.model.rope.apply_recipe_scaling; M.rope_option)
  rope_scaling = {type = "enum", values = {"linear", "dynamic", "yarn", "llama3"}},
  disable_gradient_checkpointing = {type = "bool"},
  -- LlamaFactory's configure_moe: the router_aux_loss_coef of a MoE model's training loss (Mixtral here)
  moe_aux_loss_coef = {type = "number", min = 0},
  gradient_checkpointing_policy = {type = "enum", values = {"auto", "selective", "full"}},
  trust_remote_code = {type = "bool",
    inert = "lfl runs no model code from the Hub: every architecture is built in (recipes/models/)"},
  model_revision = {type = "string"},
  infer_dtype = {type = "enum", values = {"auto", "float16", "bfloat16", "float32", "bf16", "fp16"}},
  print_param_status = {type = "bool"},
  flash_attn = {type = "enum", values = {"auto", "disabled", "sdpa", "fa2", "fa3"},
    inert = "lfl's attention is always its own fused kernel (no T x T matrix), the same numbers either way"},
  use_cache = {type = "bool", unsupported = "lfl's generation always keeps a KV cache"},
  hf_hub_token = {type = "string"},
  -- a GGUF's linear weights kept in their blocks (lfl.model.gguf; unset: kept
  -- for finetuning_type lora without quantization_bit, lfl.train.trainer.gguf_blocks)
  gguf_blocks = {type = "bool", applies = function(a)
    return tostring(a.model_name_or_path or ""):match("%.gguf$") ~= nil or
      "it applies to a GGUF model_name_or_path (a .gguf file)"
  end},
  -- QLoRA: 4-bit bitsandbytes NF4/FP4 or 8-bit LLM.int8 base weights (lfl.model.check_quantize)
  quantization_bit = {type = "int", one_of = {1, 2, 3, 4, 5, 6, 8},
    limit = function(v)
      if v ~= 4 and v ~= 8 then
        return "only bitsandbytes quantization (quantization_bit: 4, NF4/FP4, or 8, LLM.int8) is implemented in "
          .. "lfl; " .. v .. "-bit (HQQ/EETQ) is not"
      end
    end},
  quantization_method = {type = "enum", values = {"bnb", "gptq", "awq", "aqlm", "quanto", "eetq", "hqq", "mxfp4", "fp8"},
    lfl = {"bnb"}, lfl_why = "lfl quantizes on the fly with bitsandbytes (4-bit NF4/FP4, 8-bit LLM.int8) only", applies = quantized},
  quantization_type = {type = "enum", values = {"fp4", "nf4"}, applies = quantized4},
  double_quantization = {type = "bool", applies = quantized4},
  export_dir = {type = "string"}, -- "" has its own message (validate)
  export_size = {type = "number", gt = 0, -- GB a shard (LlamaFactory: an int; a fraction works too)
    applies = function(a) return a.export_format ~= "gguf" or "a GGUF export is one file (export_format: gguf)" end},
  export_device = {type = "enum", values = {"cpu", "auto"}, lfl = {"cpu"}, lfl_why = "lfl merges and writes on the CPU"},
  export_legacy_format = {type = "bool", unsupported = "lfl writes safetensors only (not pytorch_model.bin)"},
  -- lfl's own: a single GGUF file for llama.cpp instead of the HF folder (lfl.model.gguf_export)
  export_format = {type = "enum", values = {"safetensors", "gguf"}},
  export_quantization = {type = "enum", values = {"f32", "f16", "bf16", "q8_0", "q4_k"},
    applies = strategy("export_format", "gguf")},
  -- GPTQ of the exported model (lfl.model.gptq_export; LlamaFactory: GPTQConfig through gptqmodel)
  export_quantization_bit = {type = "int", one_of = {2, 3, 4, 8},
    limit = function(v)
      if v == 3 then return "3-bit GPTQ (codes across word boundaries) is not implemented in lfl; 2, 4 or 8 bits are" end
    end,
    applies = function(a)
      return a.export_format ~= "gguf" or "GPTQ writes an HF folder; a GGUF export quantizes with export_quantization"
    end},
  -- LlamaFactory: the merged model and tokenizer are pushed there after the local export (hf_hub_token or HF_TOKEN)
  export_hub_model_id = {type = "string", check = function(v)
    if not require("lfl.hub").is_repo_id(v) then return "a Hub repo id ('namespace/name')" end end},
  export_quantization_dataset = {type = "string", applies = function(a)
    return a.export_quantization_bit ~= nil or "it is GPTQ's calibration data (export_quantization_bit)" end},
  export_quantization_nsamples = {type = "int", min = 1, applies = function(a)
    return a.export_quantization_bit ~= nil or "it applies with export_quantization_bit (GPTQ)" end},
  export_quantization_maxlen = {type = "int", min = 1, applies = function(a)
    return a.export_quantization_bit ~= nil or "it applies with export_quantization_bit (GPTQ)" end},
  -- data
  template = {type = "string"},
  dataset = {type = "list"},
  eval_dataset = {type = "list"},
  dataset_dir = {type = "path"},
  cutoff_len = {type = "int", min = 2, hint = "a training example keeps at least one prompt and one response token"},
  train_on_prompt = {type = "bool"},
  mask_history = {type = "bool"},
  streaming = {type = "bool"},
  buffer_size = {type = "int", min = 1},
  mix_strategy = {type = "enum", values = {"concat", "interleave_under", "interleave_over", "interleave_once"},
    lfl = {"concat", "interleave_under", "interleave_over"}},
  interleave_probs = {type = "numbers", min = 0, max = 1},
  overwrite_cache = {type = "bool"},
  preprocessing_num_workers = {type = "int", min = 1,
    inert = "lfl preprocesses in one process (tokenizing in C), caching the result"},
  max_samples = {type = "int", min = 1},
  val_size = {type = "number", min = 0, check = function(v)
    if v >= 1 and v ~= math.floor(v) then return "a fraction in [0, 1) or a whole number of examples" end
  end},
  packing = {type = "bool"},
  neat_packing = {type = "bool"},
  tool_format = {type = "string"},
  default_system = {type = "string"},
  enable_thinking = {type = "bool"},
  tokenized_path = {type = "path"}, -- lfl's own dataset file in that folder (lfl.data.cache)
  preprocessing_batch_size = {type = "int", min = 1},
  ignore_pad_token_for_loss = {type = "bool", unsupported = "lfl packs examples and never trains on padding"},
  strict = {type = "bool"},
  -- finetuning
  stage = {type = "string"}, -- the stages are the approach modules found (checked in validate)
  finetuning_type = {type = "enum", values = {"lora", "oft", "freeze", "full"}},
  pure_bf16 = {type = "bool"},
  plot_loss = {type = "bool"},
  compute_accuracy = {type = "bool", applies = stages("sft")},
  -- LlamaFactory's SFT loss variants (train/trainer_utils.py), one at a time: it
  -- picks DFT, else EAFT, else ASFT (lfl refuses a second one, see validate);
  -- ASFT's reference is ref_model (+ ref_model_adapters), else a frozen copy of
  -- the initial weights
  use_dft_loss = {type = "bool", applies = stages("sft")},
  use_eaft_loss = {type = "bool", applies = stages("sft")},
  eaft_alpha = {type = "number", applies = function(a) return a.use_eaft_loss == true or
    "it applies with use_eaft_loss: true" end},
  use_asft_loss = {type = "bool", applies = stages("sft")},
  asft_alpha = {type = "number", applies = function(a) return a.use_asft_loss == true or
    "it applies with use_asft_loss: true" end},
  disable_shuffling = {type = "bool"},
  freeze_trainable_layers = {type = "int", applies = function(a)
    if a.finetuning_type == "lora" and a.use_llama_pro then return true end -- the expanded blocks LoRA targets
    return freeze(a)
  end},
  -- mixture-of-depths (lfl.model.mod, the MoD package's layout): convert the
  -- loaded model (routers on every odd layer, untrained), or load a MoD checkpoint
  mixture_of_depths = {type = "enum", values = {"convert", "load"}},
  use_llama_pro = {type = "bool", applies = function(a)
    return (a.finetuning_type == "freeze" or a.finetuning_type == "lora") or
      fmt("it applies to finetuning_type freeze or lora (this run's is %s)", tostring(a.finetuning_type))
  end},
  freeze_trainable_modules = {type = "list", applies = freeze},
  freeze_extra_modules = {type = "list", applies = freeze},
  lora_rank = {type = "int", min = 1, applies = lora},
  lora_alpha = {type = "number", gt = 0, applies = lora},
  lora_dropout = {type = "number", min = 0, lt = 1, applies = lora},
  lora_target = {type = "list", applies = lora_or_oft},
  -- PEFT's modules_to_save next to a LoRA adapter (lfl.train.peft.add_modules_to_save)
  additional_target = {type = "list", applies = function(a)
    if a.finetuning_type == "oft" then return "modules_to_save next to an OFT adapter is not implemented (LoRA only)" end
    if a.finetuning_type ~= "lora" then return lora(a) end
    -- the preference stages' reference is this model with its adapter off, which would still see the trained copies
    if a.stage ~= "sft" and a.stage ~= "pt" and a.stage ~= "rm" and not a.ref_model then
      return fmt("with stage %s the reference model is this model with its adapter off, which would see the "
        .. "modules trained whole; give a ref_model or train them in sft", tostring(a.stage))
    end
    return true
  end},
  -- OFT (lfl.train.oft): PEFT's OFTConfig(r = oft_rank, oft_block_size, module_dropout), exactly one of the two
  -- sizes non-zero (checked in validate)
  oft_rank = {type = "int", min = 0, applies = oft},
  oft_block_size = {type = "int", min = 0, applies = oft},
  oft_target = {type = "list", applies = oft}, -- must agree with lora_target (validate)
  module_dropout = {type = "number", min = 0, lt = 1, applies = oft},
  loraplus_lr_ratio = {type = "number", gt = 0, applies = lora},
  -- NEFTune: transformers' TrainingArguments key (noise on the input embeddings while training)
  neftune_noise_alpha = {type = "number", gt = 0},
  loraplus_lr_embedding = {type = "number", min = 0, applies = lora,
    inert = "lfl's LoRA adapts linear layers only, so there is no LoRA+ embedding group"},
  use_rslora = {type = "bool", applies = lora},
  use_dora = {type = "bool", applies = lora},
  pissa_init = {type = "bool", applies = lora},
  pissa_iter = {type = "int", min = -1, applies = function(a)
    if a.finetuning_type ~= "lora" then return lora(a) end
    return a.pissa_init == true or "it applies with pissa_init: true"
  end},
  pissa_convert = {type = "bool",
    applies = function(a) return a.pissa_init == true or "it applies with pissa_init: true" end},
  create_new_adapter = {type = "bool", applies = function(a)
    if a.finetuning_type ~= "lora" then return lora(a) end
    return a.adapter_name_or_path ~= nil or "it applies with adapter_name_or_path (the adapters merged first)"
  end},
  -- the preference stages' approach modules check the combinations (lfl.train.pref.check_args)
  pref_beta = {type = "number", gt = 0, applies = stages("dpo", "orpo", "simpo", "kto")},
  pref_ftx = {type = "number", min = 0, applies = stages("dpo", "orpo", "simpo", "kto")},
  pref_loss = {type = "enum", values = {"sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"},
    applies = stages("dpo", "orpo", "simpo")},
  dpo_label_smoothing = {type = "number", min = 0, lt = 0.5, applies = stages("dpo")},
  kto_chosen_weight = {type = "number", min = 0, applies = stages("kto")},
  kto_rejected_weight = {type = "number", min = 0, applies = stages("kto")},
  simpo_gamma = {type = "number", applies = stages("dpo", "simpo")},
  ref_model = {type = "path", applies = function(a) return with_reference(a) end},
  ref_model_adapters = {type = "list", applies = function(a) return with_reference(a) end},
  -- grpo (lfl.train.grpo.check_args checks the combinations and resolves reward_funcs)
  reward_funcs = {type = "funcs", applies = stages("grpo")},
  num_generations = {type = "int", min = 2, applies = stages("grpo")},
  max_completion_length = {type = "int", min = 1, applies = stages("grpo")},
  grpo_beta = {type = "number", min = 0, applies = stages("grpo")},
  grpo_epsilon = {type = "number", gt = 0, lt = 1, applies = stages("grpo")},
  grpo_loss_type = {type = "enum", values = {"grpo", "bnpo", "dr_grpo", "dapo"}, applies = stages("grpo")},
  reward_format_pattern = {type = "string", applies = stages("grpo")},
  reward_length_target = {type = "number", gt = 0, applies = stages("grpo")},
  reward_model = {type = "path", applies = stages("ppo")},
  -- ppo (lfl.train.ppo.check_args checks the combinations)
  reward_model_type = {type = "enum", values = {"lora", "full", "api"}, applies = stages("ppo")},
  reward_model_adapters = {type = "list", applies = stages("ppo"), unsupported = "adapters on a full reward model "
    .. "are not loaded; merge them into the reward model (lfl export) and pass that as reward_model"},
  reward_model_quantization_bit = {type = "int", one_of = {4, 8}, applies = stages("ppo"),
    unsupported = "on-the-fly quantization of the reward model is not implemented"},
  ppo_buffer_size = {type = "int", min = 1, applies = stages("ppo")},
  ppo_epochs = {type = "int", min = 1, applies = stages("ppo")},
  ppo_score_norm = {type = "bool", applies = stages("ppo")},
  ppo_target = {type = "number", gt = 0, applies = stages("ppo")},
  ppo_whiten_rewards = {type = "bool", applies = stages("ppo")},
  use_galore = {type = "bool"},
  galore_target = {type = "list", applies = galore},
  galore_rank = {type = "int", min = 1, applies = galore},
  galore_update_interval = {type = "int", min = 1, applies = galore},
  galore_scale = {type = "number", gt = 0, applies = galore},
  galore_proj_type = {type = "enum", values = {"std", "reverse_std", "right", "left", "full"}, applies = galore},
  galore_layerwise = {type = "bool", applies = galore, inert = "lfl applies the same GaLore update to every layer "
    .. "once per step; only the memory saving of per-layer updates during backward is not implemented"},
  use_apollo = {type = "bool"},
  apollo_target = {type = "list", applies = apollo},
  apollo_rank = {type = "int", min = 1, applies = apollo},
  apollo_update_interval = {type = "int", min = 1, applies = apollo},
  apollo_scale = {type = "number", gt = 0, applies = apollo},
  apollo_proj = {type = "enum", values = {"random", "svd"}, applies = apollo},
  apollo_proj_type = {type = "enum", values = {"std", "right", "left"}, applies = apollo},
  apollo_scale_type = {type = "enum", values = {"channel", "tensor"}, applies = apollo},
  apollo_scale_front = {type = "bool", applies = apollo},
  apollo_layerwise = {type = "bool", applies = apollo, inert = "lfl applies the same APOLLO update to every layer "
    .. "once per step (after clipping, which LlamaFactory's layer-wise mode skips); the memory saving of per-layer "
    .. "updates during backward is not implemented"},
  use_muon = {type = "bool"},
  use_adam_mini = {type = "bool"},
  use_badam = {type = "bool"},
  badam_mode = {type = "enum", values = {"layer", "ratio"},
    applies = function(a) return a.use_badam == true or "it applies with use_badam: true" end},
  badam_start_block = {type = "int", min = 0, applies = badam_layer},
  badam_switch_mode = {type = "enum", values = {"ascending", "descending", "random", "fixed"}, applies = badam_layer},
  badam_switch_interval = {type = "int", applies = badam_layer, check = function(v)
    if v ~= -1 and v < 1 then return "an integer >= 1, or -1 (never switch)" end
  end},
  badam_update_ratio = {type = "number", gt = 0, max = 1, applies = badam_ratio},
  badam_mask_mode = {type = "enum", values = {"adjacent", "scatter"}, applies = badam_ratio},
  badam_verbose = {type = "int", one_of = {0, 1, 2},
    applies = function(a) return a.use_badam == true or "it applies with use_badam: true" end},
  -- training
  output_dir = {type = "string"}, -- "" has its own message (validate)
  overwrite_output_dir = {type = "bool"},
  do_train = {type = "bool"},
  do_eval = {type = "bool"},
  do_predict = {type = "bool"},
  per_device_train_batch_size = {type = "int", min = 1},
  per_device_eval_batch_size = {type = "int", min = 1},
  gradient_accumulation_steps = {type = "int", min = 1},
  learning_rate = {type = "number", min = 0},
  weight_decay = {type = "number", min = 0},
  adam_beta1 = {type = "number", min = 0, lt = 1},
  adam_beta2 = {type = "number", min = 0, lt = 1},
  adam_epsilon = {type = "number", min = 0},
  max_grad_norm = {type = "number", min = 0, hint = "0 turns clipping off"},
  num_train_epochs = {type = "number"}, -- > 0 unless max_steps > 0 (validate)
  max_steps = {type = "int"}, -- <= 0: num_train_epochs decides
  lr_scheduler_type = {type = "enum", values = HF_SCHEDULERS, lfl = LFL_SCHEDULERS},
  lr_scheduler_kwargs = {type = "dict"},
  warmup_ratio = {type = "number", min = 0, max = 1},
  warmup_steps = {type = "number", min = 0, check = steps_rule},
  logging_steps = {type = "number", gt = 0, check = steps_rule, applies = strategy("logging_strategy", "steps")},
  save_steps = {type = "number", min = 0, check = steps_rule, hint = "0 writes no checkpoint before the end",
    applies = strategy("save_strategy", "steps")},
  save_total_limit = {type = "int", min = 0, hint = "0 keeps every checkpoint"},
  eval_strategy = {type = "enum", values = {"no", "steps", "epoch"}},
  eval_steps = {type = "number", gt = 0, check = steps_rule, applies = strategy("eval_strategy", "steps")},
  bf16 = {type = "bool"},
  fp16 = {type = "bool", unsupported = "fp16 mixed precision is not implemented; bf16: true keeps bf16 weights and "
    .. "multiplies in bf16"},
  optim = {type = "enum", values = HF_OPTIMS, lfl = LFL_OPTIMS, lfl_why = "AdamW, 8-bit AdamW and SGD",
    applies = function(a)
      return not (a.use_galore or a.use_badam or a.use_muon or a.use_adam_mini or a.use_apollo) or
        "use_galore / use_apollo / use_badam / use_muon / use_adam_mini replace the optimizer"
    end},
  seed = {type = "int", min = 0, max = 2 ^ 32 - 1},
  -- transformers' switch for bit-reproducible runs; lfl's kernels are deterministic
  -- for a fixed thread count, so it fixes the thread count (no following other load)
  full_determinism = {type = "bool"},
  resume_from_checkpoint = {type = "path_or_bool"},
  report_to = {type = "list", check = function(v)
    for _, x in ipairs(type(v) == "table" and v or {v}) do
      for name in tostring(x):gmatch("[^,%s]+") do
        local known = false
        for _, r in ipairs(HF_REPORTS) do if r == name then known = true end end
        if not known then return "a comma list of " .. concat(HF_REPORTS, ", ") end
      end
    end
  end},
  save_only_model = {type = "bool"},
  -- seconds a collective of a multi-process run may wait for the other ranks (lfl.train.dist)
  ddp_timeout = {type = "int", min = 1},
  -- a DeepSpeed JSON config: its ZeRO stage (0, 1, 2) for a multi-process run (lfl.train.dist)
  deepspeed = {type = "path"},
  dataloader_num_workers = {type = "int", min = 0,
    inert = "lfl's batches come from memory (or the stream) in the training process"},
  predict_with_generate = {type = "bool"},
  generation_max_length = {type = "int", min = 1, unsupported = "prediction takes max_new_tokens (or max_length "
    .. "when max_new_tokens <= 0), as LlamaFactory's generation arguments override generation_max_length"},
  save_strategy = {type = "enum", values = {"no", "steps", "epoch", "best"}, lfl = {"no", "steps", "epoch"},
    lfl_why = "'best' needs metric_for_best_model, which lfl does not track"},
  logging_strategy = {type = "enum", values = {"no", "steps", "epoch"}},
  run_name = {type = "string", inert = "it names the run for trackers such as wandb and mlflow; TensorBoard's "
    .. "directory is output_dir/runs/<date>_<host> (or $TENSORBOARD_LOGGING_DIR), as transformers writes it"},
  threads = {type = "int", min = 1},
  -- lfl: where training runs: "cpu", or a CUDA device ("cuda" = "cuda:0", "cuda:N"); LlamaFactory takes the GPU
  -- from the environment (CUDA_VISIBLE_DEVICES), lfl only when asked, while its CUDA backend is new
  device = {type = "string", check = function(v)
    if v == "cpu" or v == "cuda" or v:match("^cuda:%d+$") then return nil end
    return "\"cpu\", \"cuda\" or \"cuda:N\""
  end},
  disable_tqdm = {type = "bool"},
  max_nonfinite_steps = {type = "int", min = 0},
  -- generation
  do_sample = {type = "bool"},
  temperature = {type = "number", min = 0},
  top_p = {type = "number", gt = 0, max = 1},
  top_k = {type = "int", min = 0},
  num_beams = {type = "int", min = 1, limit = function(v)
    if v > 1 then return "beam search is not supported (num_beams: 1)" end
  end},
  max_length = {type = "int", min = 1},
  max_new_tokens = {type = "int", hint = "<= 0 generates up to max_length"},
  repetition_penalty = {type = "number", gt = 0},
  length_penalty = {type = "number", unsupported = "it only changes beam search (num_beams > 1), which lfl does not have"},
  skip_special_tokens = {type = "bool"},
  -- Lua recipes
  datasets = {type = "table"},
  templates = {type = "table"},
}

-- ---------------------------------------------------------------- checking one value

local function show(v)
  if type(v) == "string" then return fmt("%q", v) end
  if v == nil then return "null" end
  if type(v) == "table" then return #v > 0 and "a list" or "a table" end
  return tostring(v)
end
M.show = show

local function finite(n) return n == n and n ~= math.huge and n ~= -math.huge end

local function range_text(r)
  local lo = r.min ~= nil and fmt("%s", r.min) or r.gt ~= nil and fmt("%s", r.gt)
  local hi = r.max ~= nil and fmt("%s", r.max) or r.lt ~= nil and fmt("%s", r.lt)
  if r.max == 2 ^ 32 - 1 then hi = "2^32 - 1" end
  if lo and hi then
    return fmt(" in %s%s, %s%s", r.min ~= nil and "[" or "(", lo, hi, r.max ~= nil and "]" or ")")
  end
  if lo then return fmt(" %s %s", r.min ~= nil and ">=" or ">", lo) end
  if hi then return fmt(" %s %s", r.max ~= nil and "<=" or "<", hi) end
  return ""
end

-- what a rule takes, in words
function M.expected(rule)
  local t = rule.type
  if rule.one_of then
    local s = {}
    for i, v in ipairs(rule.one_of) do s[i] = tostring(v) end
    return "one of " .. concat(s, ", ")
  end
  if t == "int" then return "an integer" .. range_text(rule) end
  if t == "number" then return "a number" .. range_text(rule) end
  if t == "bool" then return "true or false" end
  if t == "string" then return "a string" end
  if t == "path" then return "a path (a non-empty string)" end
  if t == "list" then return "a comma-separated list of names" end
  if t == "enum" then return "one of " .. concat(rule.values, ", ") end
  if t == "dict" then return "a mapping (or a JSON object)" end
  if t == "numbers" then return "a comma-separated list of numbers" .. range_text(rule) end
  if t == "path_or_bool" then return "true, false or a checkpoint folder" end
  if t == "table" then return "a table" end
  if t == "funcs" then return "a function, or a list (or comma-separated names) of functions and reward recipe names" end
  return t
end

-- a decimal number as YAML / Python write it ("8", "-1", "1.0e-4", ".5"); not
-- "0x10", "inf" or "nan", which tonumber would also take
local function to_number(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local m, e = v:match("^%s*([+-]?[%d%.]+)(.-)%s*$")
  if not m or (e ~= "" and not e:match("^[eE][+-]?%d+$")) then return nil end
  if not (m:match("^[+-]?%d+%.?%d*$") or m:match("^[+-]?%.%d+$")) then return nil end
  return tonumber(m .. e)
end

-- HfArgumentParser's string_to_bool
local TRUE = {["true"] = true, yes = true, t = true, y = true, ["1"] = true}
local FALSE = {["false"] = true, no = true, f = true, n = true, ["0"] = true}
local function to_bool(v)
  if type(v) == "boolean" then return v end
  if v == 1 or v == 0 then return v == 1 end
  if type(v) == "string" then
    local s = v:match("^%s*(.-)%s*$"):lower()
    if TRUE[s] then return true end
    if FALSE[s] then return false end
  end
  return nil
end

local function in_range(r, n)
  if r.min ~= nil and n < r.min then return false end
  if r.max ~= nil and n > r.max then return false end
  if r.gt ~= nil and n <= r.gt then return false end
  if r.lt ~= nil and n >= r.lt then return false end
  return true
end

-- the coerced value, or nil and what was expected
local function coerce(rule, v)
  local t, what = rule.type, M.expected(rule)
  if t == "int" or t == "number" then
    local n = to_number(v)
    if not n or not finite(n) then return nil, what end
    if t == "int" and n ~= math.floor(n) then return nil, what end
    if rule.one_of then
      local ok = false
      for _, x in ipairs(rule.one_of) do if x == n then ok = true end end
      if not ok then return nil, what end
    end
    if not in_range(rule, n) then return nil, what end
    return n
  elseif t == "bool" then
    local b = to_bool(v)
    if b == nil then return nil, what .. " (yes/no, true/false, t/f, y/n, 1/0)" end
    return b
  elseif t == "string" or t == "path" then
    if type(v) == "number" then v = v == math.floor(v) and fmt("%d", v) or tostring(v) end
    if type(v) ~= "string" then return nil, what end
    if t == "path" and v == "" then return nil, what end
    return v
  elseif t == "list" then
    if type(v) == "number" then v = tostring(v) end
    if type(v) == "string" then
      if not v:find("[^,%s]") then return nil, what end
      return v
    end
    if type(v) ~= "table" or #v == 0 then return nil, what end
    for _, x in ipairs(v) do if type(x) ~= "string" or x == "" then return nil, what end end
    return v
  elseif t == "enum" then
    if type(v) ~= "string" then return nil, what end
    for _, x in ipairs(rule.values) do if x == v then return v end end
    return nil, what
  elseif t == "dict" then
    if type(v) == "string" and v:match("^%s*{") then
      local ok, d = pcall(lfl.json.decode, v)
      if ok and type(d) == "table" then return d end
      return nil, what
    end
    if type(v) ~= "table" or #v > 0 then return nil, what end
    return v
  elseif t == "numbers" then
    local list = {}
    if type(v) == "number" then list = {v}
    elseif type(v) == "string" then
      for p in v:gmatch("[^,]+") do
        local n = to_number(p)
        if not n then return nil, what end
        list[#list + 1] = n
      end
    elseif type(v) == "table" then
      for i, x in ipairs(v) do list[i] = to_number(x) or (0 / 0) end
    else return nil, what end
    if #list == 0 then return nil, what end
    for _, n in ipairs(list) do if not finite(n) or not in_range(rule, n) then return nil, what end end
    return list
  elseif t == "path_or_bool" then
    if type(v) == "boolean" then return v end
    if type(v) == "string" then
      local b = to_bool(v)
      if b ~= nil and v:match("^%a+$") then return b end
      if v ~= "" then return v end
    end
    return nil, what
  elseif t == "table" then
    if type(v) ~= "table" then return nil, what end
    return v
  elseif t == "funcs" then
    if type(v) == "function" then return v end
    if type(v) == "string" then
      if not v:find("[^,%s]") then return nil, what end
      return v
    end
    -- each entry is checked by the approach (lfl.train.grpo: its index and the recipes found)
    if type(v) ~= "table" or #v == 0 then return nil, what end
    return v
  end
  error("args: unknown rule type " .. tostring(t))
end

-- check(key, value[, where[, opts]]) -> the value, coerced from text where
-- HfArgumentParser would; raises "<where>: <key>: expected <what>, got <value>"
-- (nil is always fine: the key is unset). Keys without a rule pass unchanged.
-- opts.rule: a rule instead of M.SPEC[key]; opts.label: the name in the message.
function M.check(key, v, where, opts)
  local rule = opts and opts.rule or M.SPEC[key]
  if v == nil or not rule then return v end
  local out, what = coerce(rule, v)
  if out ~= nil and rule.check then
    local w = rule.check(out)
    if w then out, what = nil, w end
  end
  if out == nil then
    error(fmt("%s: %s: expected %s, got %s%s", where or "arguments", opts and opts.label or key, what, show(v),
      rule.hint and " (" .. rule.hint .. ")" or ""), 0)
  end
  return out
end

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

-- scalar from text (a key=value override): null/None/~ or nothing -> nil,
-- true/false, quoted text, numbers; a flow mapping or sequence
-- (`lr_scheduler_kwargs={min_lr_rate: 0.1}`, `x=[a, b]`) is read as YAML, as
-- LlamaFactory's OmegaConf.from_cli reads it
function M.parse_value(s)
  s = s:match("^%s*(.-)%s*$")
  if s == "" or s == "null" or s == "~" or s == "None" then return nil end
  if s == "true" or s == "True" then return true end
  if s == "false" or s == "False" then return false end
  local q = s:match('^"(.*)"$') or s:match("^'(.*)'$")
  if q then return q end
  if s:match("^[%[{]") then
    local v = lfl.yaml.decode(s, "command line value '" .. s .. "'", {schema = "omegaconf"})
    return v ~= lfl.yaml.null and v or nil
  end
  local n = tonumber(s)
  if n then return n end
  return s
end

-- LlamaFactory's other command line, `llamafactory-cli train --stage sft
-- --model_name_or_path X --do_train ...` (no recipe file: HfArgumentParser's
-- flags): "--key value" and "--key=value" become key=value overrides, a bare
-- "--key" (the next word is another flag, or none) is key=true as for
-- HfArgumentParser's booleans, and "--no_key" is key=false for a boolean key
-- (its negative flag). Returns the overrides; errors name the word.
function M.from_flags(argv, first)
  local out, i = {}, first or 1
  while i <= #argv do
    local w = argv[i]
    local k, v = w:match("^%-%-([%w_%-]+)=(.*)$")
    if not k then k = w:match("^%-%-([%w_%-]+)$") end
    if not k then
      error(fmt("command line: '%s' is not a --key value flag (LlamaFactory's flags: --stage sft --do_train ...; "
        .. "or give a recipe file first, then key=value)", w), 0)
    end
    k = k:gsub("%-", "_")
    if v == nil then
      local nxt = argv[i + 1]
      if nxt ~= nil and not nxt:match("^%-%-[%a_]") then v, i = nxt, i + 1 else v = "true" end
    end
    local pos = k:match("^no_(.+)$")
    if pos and M.DEFAULTS[k] == nil and type(M.DEFAULTS[pos]) == "boolean" and v == "true" then k, v = pos, "false" end
    out[#out + 1] = k .. "=" .. v
    i = i + 1
  end
  return out
end

-- A LlamaFactory recipe file, read as LlamaFactory reads it
-- (OmegaConf.load: YAML with OmegaConf's float rule, so `1e-4` is a number,
-- and a duplicate key is an error). Top-level nulls are dropped (the default
-- stays); errors name the file, line and column.
function M.read_yaml(path)
  local f, err = io.open(path, "rb")
  if not f then error(fmt("%s: cannot read: %s", path, tostring(err)), 0) end
  local text = f:read("*a")
  f:close()
  local r = lfl.yaml.decode(text, path, {schema = "omegaconf"})
  if r == nil then return {} end
  local keys = 0
  if type(r) == "table" then for _ in pairs(r) do keys = keys + 1 end end
  if type(r) ~= "table" or (#r > 0 and keys == #r) then
    error(fmt("%s: a recipe is a mapping of arguments (key: value), got %s", path,
      type(r) == "table" and "a list" or show(r)), 0)
  end
  for k, v in pairs(r) do if v == lfl.yaml.null then r[k] = nil end end
  return r
end

-- LlamaFactory / transformers settings lfl knows and does not implement: the
-- reason is the refusal (an unknown key only gets "unknown argument")
local MULTIMODAL = "multimodal (vision/video/audio) models are not implemented in lfl yet; lfl trains text models"
local MULTI_PROCESS = "FSDP and Ray are not implemented in lfl; several processes train through MPI "
  .. "(lfl ... --nproc N) with data parallel or ZeRO-1/2/3 (deepspeed: ds_z0/ds_z2/ds_z3_config.json)"
local MEGATRON = "Megatron-core parallelism is not implemented in lfl; lfl trains in one process"
local KT = "the KTransformers integration (CPU/GPU MoE offload) is not implemented in lfl"
M.NOT_IMPLEMENTED = {
  fsdp = MULTI_PROCESS, fsdp_config = MULTI_PROCESS,
  fsdp_transformer_layer_cls_to_wrap = MULTI_PROCESS, ray_num_workers = MULTI_PROCESS,
  ray_run_name = MULTI_PROCESS, ray_storage_path = MULTI_PROCESS,
  image_max_pixels = MULTIMODAL, image_min_pixels = MULTIMODAL, video_max_pixels = MULTIMODAL,
  video_min_pixels = MULTIMODAL, video_fps = MULTIMODAL, video_maxlen = MULTIMODAL, audio_sampling_rate = MULTIMODAL,
  freeze_vision_tower = MULTIMODAL, freeze_multi_modal_projector = MULTIMODAL, freeze_language_model = MULTIMODAL,
  shift_attn = "LongLoRA's shift short attention (S^2-Attn) is not implemented in lfl (LlamaFactory 0.9.5 patches it "
    .. "into transformers 4.45-4.47's llama attention only and refuses newer transformers)",
  fp8 = "FP8 training needs FP8 GPU kernels, which lfl does not have",
  fp8_backend = "FP8 training needs FP8 GPU kernels, which lfl does not have",
  fp8_enable_fsdp_float8_all_gather = "FP8 training needs FP8 GPU kernels, which lfl does not have",
  use_kt = KT, kt_config = KT, kt_cpu_activation = KT, kt_weight_path = KT, kt_non_expert_weight_path = KT,
  use_v1_kernels = "LlamaFactory's v1 kernels (Ascend NPU) do not apply to lfl",
  apply_rope_fusion = MEGATRON, bias_activation_fusion = MEGATRON, tensor_model_parallel_size = MEGATRON,
  pipeline_model_parallel_size = MEGATRON, context_parallel_size = MEGATRON, expert_model_parallel_size = MEGATRON,
  sequence_parallel = MEGATRON, use_distributed_optimizer = MEGATRON, overlap_grad_reduce = MEGATRON,
  overlap_param_gather = MEGATRON, moe_grouped_gemm = MEGATRON, moe_token_dispatcher_type = MEGATRON,
  recompute_granularity = MEGATRON,
}

-- ---------------------------------------------------------------- resolving

-- Merges recipe + overrides over the defaults, checking each value as it is
-- set, then validates the whole. Returns the table.
function M.resolve(recipe, overrides, source)
  local args, origin = {}, {}
  for k, v in pairs(M.DEFAULTS) do if v ~= NIL then args[k] = v end end
  local function set(k, v, where)
    if type(k) == "string" and M.NOT_IMPLEMENTED[k] and M.DEFAULTS[k] == nil then
      error(fmt("%s: %s is not supported: %s", where, k, M.NOT_IMPLEMENTED[k]), 0)
    end
    if type(k) ~= "string" or (M.DEFAULTS[k] == nil and not LUA_ONLY[k]) then
      local s = type(k) == "string" and M.suggest(k)
      error(fmt("%s: unknown argument '%s'%s", where, tostring(k), s and fmt(" (did you mean '%s'?)", s) or ""), 0)
    end
    if v == nil then
      -- null (key= on the command line) puts the default back
      local d = M.DEFAULTS[k]
      args[k] = d ~= NIL and d or nil
    else
      args[k] = M.check(k, v, where)
    end
    origin[k] = where
  end
  -- every problem is reported, in key order (the report does not depend on table order)
  local problems = {}
  local function try(...) M.collect(problems, "", ...) end
  local keys = {}
  for k in pairs(recipe or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do try(set, k, recipe[k], source or "recipe") end
  for _, kv in ipairs(overrides or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then problems[#problems + 1] = fmt("command line: '%s' is not key=value", kv)
    else try(set, k, M.parse_value(v), "command line") end
  end
  return M.validate(args, origin, problems)
end

-- f(...) run for its errors: one that it raises goes to the list problems,
-- after prefix, and the check goes on (M.raise_problems reports them all)
function M.collect(problems, prefix, f, ...)
  local ok, err = pcall(f, ...)
  if not ok then problems[#problems + 1] = prefix .. tostring(err) end
end

-- One error for all of a recipe's problems (a user fixes them in one go):
-- a single problem is its own message, several are listed.
function M.raise_problems(problems)
  if #problems == 1 then error(problems[1], 0) end
  local lines = {fmt("%d problems with the arguments:", #problems)}
  for _, p in ipairs(problems) do lines[#lines + 1] = "  - " .. p end
  error(table.concat(lines, "\n"), 0)
end

local function member(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- lr_scheduler_kwargs each schedule takes (transformers' get_scheduler)
local SCHEDULER_KWARGS = {
  linear = {}, constant = {}, constant_with_warmup = {},
  cosine = {num_cycles = "number"}, cosine_with_restarts = {num_cycles = "number"},
  cosine_with_min_lr = {num_cycles = "number", min_lr = "number", min_lr_rate = "number"},
  polynomial = {lr_end = "number", power = "number"},
  inverse_sqrt = {timescale = "number"},
  warmup_stable_decay = {num_decay_steps = "number", num_stable_steps = "number", min_lr_ratio = "number",
    num_cycles = "number", warmup_type = {"linear", "cosine", "1-sqrt"}, decay_type = {"linear", "cosine", "1-sqrt"}},
}

local function scheduler_kwargs(a, bad_key)
  local kw, name = a.lr_scheduler_kwargs, a.lr_scheduler_type
  local takes = SCHEDULER_KWARGS[name]
  if not takes then return end
  local out = {}
  for k, v in pairs(kw or {}) do
    local want = takes[k]
    if not want then
      local names = {}
      for n in pairs(takes) do names[#names + 1] = n end
      table.sort(names)
      bad_key("lr_scheduler_kwargs", fmt("'%s' is not an argument of the %s schedule (it takes: %s)", tostring(k),
        name, #names > 0 and concat(names, ", ") or "none"))
    end
    if want == "number" and (type(v) ~= "number" or v ~= v) then
      bad_key("lr_scheduler_kwargs", fmt("%s: expected a number, got %s", k, show(v)))
    elseif type(want) == "table" and not member(want, v) then
      bad_key("lr_scheduler_kwargs", fmt("%s: expected one of %s, got %s", k, concat(want, ", "), show(v)))
    end
    out[k] = v
  end
  -- transformers takes min_lr and lr_end as learning rates; lfl's schedule is a multiplier
  if name == "cosine_with_min_lr" then
    if out.min_lr == nil and out.min_lr_rate == nil then
      bad_key("lr_scheduler_kwargs", "the cosine_with_min_lr schedule needs min_lr or min_lr_rate (transformers)")
    end
    if out.min_lr ~= nil and out.min_lr_rate ~= nil then
      bad_key("lr_scheduler_kwargs", "give min_lr or min_lr_rate, not both")
    end
    if out.min_lr then out.min_lr_rate = a.learning_rate > 0 and out.min_lr / a.learning_rate or 0; out.min_lr = nil end
  elseif name == "polynomial" then
    out.lr_init = a.learning_rate
    local lr_end = out.lr_end or 1e-7
    if not (a.learning_rate > lr_end) then
      bad_key("lr_scheduler_kwargs", fmt("lr_end (%s) must be smaller than learning_rate (%s)", show(lr_end),
        show(a.learning_rate)))
    end
  end
  a.lr_scheduler_kwargs = next(out) and out or nil
end

-- validate(a[, origin]) -> a: the types and ranges of every key, what lfl
-- implements, what applies to this run, and LlamaFactory's rules for the
-- combinations; fills in what follows from the rest (packing, lora_alpha,
-- resize_vocab). origin[key] names where a key was set, for the messages.
-- report_to's names: a string ("tensorboard", "none,tensorboard") or a list of them
function M.report_names(v)
  local out = {}
  if v == nil then return out end
  for _, x in ipairs(type(v) == "table" and v or {v}) do
    for name in tostring(x):gmatch("[^,%s]+") do out[#out + 1] = name end
  end
  return out
end

-- whether the run writes TensorBoard event files: report_to names tensorboard, or
-- "all" (transformers' every installed integration, and tensorboard is lfl's one)
function M.reports_to_tensorboard(a)
  for _, name in ipairs(M.report_names(a.report_to)) do
    if name == "tensorboard" or name == "all" then return true end
  end
  return false
end

local validate_rules -- below: the rules themselves

-- problems: those found before (lfl.args.resolve's); every rule is checked and
-- all problems are raised together (M.raise_problems)
function M.validate(a, origin, problems)
  origin, problems = origin or {}, problems or {}
  local function bad(msg) problems[#problems + 1] = "arguments: " .. msg end
  local function bad_key(k, msg) problems[#problems + 1] = fmt("%s: %s: %s", origin[k] or "arguments", k, msg) end
  local ok, err = pcall(validate_rules, a, origin, bad, bad_key, problems)
  -- a rule that raises itself (an approach's check_args) is one more problem; an error with a
  -- source position after other problems is a follow-on of an invalid value, not news
  if not ok then
    local e = tostring(err)
    if #problems == 0 then error(err, 0) end
    if not e:match("^[^:\n]+%.lua:%d+:") then problems[#problems + 1] = e end
  end
  if #problems > 0 then M.raise_problems(problems) end
  for _, n in ipairs(err) do print("[lfl] note: " .. n) end -- the notes validate_rules returned
  return a
end

validate_rules = function(a, origin, bad, bad_key, problems)
  -- types and ranges (resolve checked them as they were set; this covers a table made by hand,
  -- whose missing keys take their defaults)
  local keys0 = {}
  for k in pairs(a) do if M.SPEC[k] then keys0[#keys0 + 1] = k end end
  table.sort(keys0)
  for _, k in ipairs(keys0) do
    local ok, v = pcall(M.check, k, a[k], origin[k] or "arguments")
    if ok then a[k] = v else problems[#problems + 1] = tostring(v) end
  end
  for k, d in pairs(M.DEFAULTS) do if a[k] == nil and d ~= NIL then a[k] = d end end
  -- the valid stages are the approach modules found (recipes/approaches/, ~/.lfl/recipes/approaches/)
  local stage_ok, stage_msg = require("lfl.train.approach").check_stage(a.stage)
  if not stage_ok then bad(stage_msg) end
  if not a.model_name_or_path then bad("model_name_or_path is required") end
  if a.do_train and not a.dataset then bad("dataset is required for training") end
  if a.output_dir == "" then bad("output_dir is empty (give the folder the run writes to, e.g. saves/my-run)") end
  if a.export_dir == "" then bad("export_dir is empty (give the folder the exported model goes to)") end
  -- LlamaFactory's export_model / ModelArguments rules for GPTQ
  if a.export_quantization_bit and not a.export_quantization_dataset then
    bad_key("export_quantization_bit", "GPTQ needs calibration data: set export_quantization_dataset (a .json/.jsonl/"
      .. ".txt/.csv/.parquet file with a text column)")
  end
  if a.export_quantization_bit and a.adapter_name_or_path then
    bad_key("export_quantization_bit", "merge the adapters before quantizing (LlamaFactory: export the merged model "
      .. "first, then quantize that export without adapter_name_or_path)")
  end

  -- eval_steps alone asks for evaluation: it implies eval_strategy steps (transformers would
  -- ignore it under the default "no"; an explicit eval_strategy: no is still refused with it)
  if a.eval_steps and a.eval_strategy == "no" and not origin.eval_strategy then
    a.eval_strategy = "steps"
    origin.eval_strategy = origin.eval_steps
  end

  -- what lfl implements of the values LlamaFactory takes, and what applies to
  -- this run: a value other than the default is refused when it would change
  -- nothing, or noted when it changes nothing in lfl by design
  local notes = {}
  local keys = {}
  for k in pairs(M.SPEC) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local rule, v, d = M.SPEC[k], a[k], M.DEFAULTS[k]
    if d == NIL then d = nil end
    if v ~= nil and v ~= d and not LUA_ONLY[k] then
      if rule.lfl and not member(rule.lfl, v) then
        bad_key(k, fmt("'%s' is a LlamaFactory value lfl does not implement (lfl: %s%s)", v, concat(rule.lfl, ", "),
          rule.lfl_why and "; " .. rule.lfl_why or ""))
      end
      local why = rule.limit and rule.limit(v)
      if why then bad_key(k, fmt("%s: %s", show(v), why)) end
      if rule.applies then
        local r = rule.applies(a)
        if r ~= true then bad_key(k, fmt("%s has no effect: %s", show(v), r)) end
      end
      if rule.unsupported then bad_key(k, fmt("%s is not supported: %s", show(v), rule.unsupported)) end
      if rule.inert then notes[#notes + 1] = fmt("%s=%s has no effect in lfl: %s", k, show(v), rule.inert) end
    end
  end
  for _, name in ipairs(M.report_names(a.report_to)) do
    if name ~= "none" and name ~= "all" and name ~= "tensorboard" then
      bad_key("report_to", fmt("'%s' is not supported: lfl reports to tensorboard only (event files under "
        .. "output_dir/runs, or $TENSORBOARD_LOGGING_DIR); the run's logs are also trainer_log.jsonl and "
        .. "trainer_state.json in output_dir (report_to: tensorboard or none)", name))
    end
  end

  -- LlamaFactory's combination rules (hparams/parser.py, *_args.py __post_init__)
  if a.stage ~= "sft" then
    for _, k in ipairs({"predict_with_generate", "neat_packing", "train_on_prompt", "mask_history"}) do
      if a[k] then bad(k .. " is only valid for stage sft") end
    end
  end
  if a.train_on_prompt and a.mask_history then bad("train_on_prompt and mask_history are mutually exclusive") end
  if a.mixture_of_depths then
    local mod_why = "the routed layers' generation (KV cache) is not implemented in lfl"
    if a.stage == "ppo" or a.stage == "grpo" then
      bad_key("mixture_of_depths", fmt("stage %s generates its samples; %s", a.stage, mod_why))
    end
    if a.predict_with_generate then bad_key("mixture_of_depths", "predict_with_generate: " .. mod_why) end
    -- the new routers start random: a method that freezes them (or saves only an adapter) trains
    -- a model that cannot be used
    if a.mixture_of_depths == "convert" and a.do_train and a.finetuning_type ~= "full"
      and a.finetuning_type ~= "freeze" then
      bad_key("mixture_of_depths", fmt("convert trains with finetuning_type full or freeze (this run's is %s): the "
        .. "new routers start random, and %s would keep them frozen and save only the adapter", a.finetuning_type,
        a.finetuning_type))
    end
  end
  if a.do_predict and a.stage == "sft" and not a.predict_with_generate then
    bad("do_predict for sft needs predict_with_generate")
  end
  if a.finetuning_type == "oft" then
    if (a.oft_rank ~= 0) == (a.oft_block_size ~= 0) then
      bad(fmt("finetuning_type oft: set exactly one of oft_rank (%d) and oft_block_size (%d) to a non-zero value "
        .. "(PEFT's OFTConfig: oft_rank x oft_block_size = in_features)", a.oft_rank, a.oft_block_size))
    end
    local function norm(v) return type(v) == "table" and concat(v, ",") or tostring(v) end
    if norm(a.oft_target) ~= norm(a.lora_target) then
      bad_key("oft_target", fmt("LlamaFactory 0.9.5 builds the OFT adapter on lora_target (%s) and ignores "
        .. "oft_target (%s); set lora_target to the modules to adapt", norm(a.lora_target), norm(a.oft_target)))
    end
    if a.stage ~= "sft" and a.stage ~= "pt" then
      bad(fmt("finetuning_type oft is implemented for stage sft and pt in lfl (this run's is %s)", tostring(a.stage)))
    end
    if a.use_galore or a.use_badam then bad("OFT cannot be combined with GaLore or BAdam") end
    if a.pissa_init then bad("pissa_init applies to LoRA, not OFT") end
    if a.adapter_name_or_path and tostring(norm(a.adapter_name_or_path)):find(",", 1, true) then
      bad_key("adapter_name_or_path", "finetuning_type oft takes a single OFT adapter to resume (merging several "
        .. "first is not implemented)")
    end
  end
  if a.finetuning_type == "lora" and (a.use_galore or a.use_badam or a.use_apollo) then
    bad("LoRA cannot be combined with GaLore, APOLLO or BAdam")
  end
  if (a.use_galore and 1 or 0) + (a.use_apollo and 1 or 0) + (a.use_badam and 1 or 0) > 1 then
    bad("GaLore, APOLLO and BAdam are mutually exclusive")
  end
  if a.use_apollo and a.apollo_layerwise and a.gradient_accumulation_steps ~= 1 then
    bad("Per-layer APOLLO does not support gradient accumulation.")
  end
  -- LlamaFactory picks one custom optimizer in a fixed order (GaLore, APOLLO,
  -- LoRA+, BAdam, Adam-mini, Muon) and drops the later ones without a word: refuse instead
  for _, key in ipairs({"use_adam_mini", "use_muon"}) do
    if a[key] then
      for _, k in ipairs({"use_galore", "use_apollo", "use_badam", "loraplus_lr_ratio", "use_adam_mini"}) do
        if k ~= key and a[k] then bad(fmt("%s cannot be combined with %s (LlamaFactory would use %s and ignore %s)",
          key, k, k == "loraplus_lr_ratio" and "LoRA+" or k:sub(5), key)) end
      end
    end
  end
  if a.use_adam_mini and (a.finetuning_type == "lora" or a.finetuning_type == "oft") then
    bad_key("use_adam_mini", fmt("Adam-mini shares second moments over the model's attention heads and rows; the %s "
      .. "adapter's matrices do not split that way (LlamaFactory fails on them at the first step): use "
      .. "finetuning_type full or freeze", a.finetuning_type))
  end
  -- added tokens imply resize_vocab (LlamaFactory's ModelArguments.__post_init__)
  if a.add_tokens or a.add_special_tokens then a.resize_vocab = true end
  if a.pissa_init and (a.stage == "ppo" or a.stage == "kto") then bad("PiSSA is not allowed for ppo/kto") end
  if a.streaming and (not a.max_steps or a.max_steps <= 0) then bad("streaming needs max_steps") end
  if a.streaming and a.max_samples then bad("max_samples is incompatible with streaming") end
  if a.streaming and a.val_size > 0 and a.val_size < 1 then
    bad_key("val_size", fmt("%s: streaming needs a whole number of examples (the stream has no length)", show(a.val_size)))
  end
  if a.val_size > 0 and a.eval_dataset then
    bad("val_size and eval_dataset are mutually exclusive (LlamaFactory: cannot specify val_size if eval_dataset is set)")
  end
  if a.val_size > 0 and not a.dataset then bad("val_size needs dataset (it splits the training data)") end
  if a.interleave_probs and a.mix_strategy == "concat" then
    bad_key("interleave_probs", "only valid for interleaved mixing (mix_strategy: interleave_under or interleave_over)")
  end
  if a.interleave_probs then
    for _, key in ipairs({"dataset", "eval_dataset"}) do
      local n = #lfl.data.names_of(a[key])
      if n > 0 and n ~= #a.interleave_probs then
        bad_key("interleave_probs", fmt("%d probabilities for the %d datasets of %s (one each)", #a.interleave_probs,
          n, key))
      end
    end
  end
  -- HF: the number of optimizer steps is max_steps when > 0, else num_train_epochs epochs
  if a.do_train and not (a.max_steps > 0) and not (a.num_train_epochs > 0) then
    bad_key("num_train_epochs", fmt("expected a number > 0 when max_steps is not set, got %s (there would be no step "
      .. "to train)", show(a.num_train_epochs)))
  end
  local has_eval = a.val_size > 0 or a.eval_dataset ~= nil
  if a.do_train and a.eval_strategy ~= "no" and not has_eval then
    bad_key("eval_strategy", fmt("'%s' needs an eval set: val_size > 0 or eval_dataset", a.eval_strategy))
  end
  if a.do_train and a.do_eval and not has_eval then
    bad_key("do_eval", "true needs an eval set: val_size > 0 or eval_dataset")
  end
  if a.finetuning_type == "freeze" and a.freeze_trainable_layers == 0 and not a.freeze_extra_modules then
    bad_key("freeze_trainable_layers", "0 with no freeze_extra_modules trains nothing (n > 0: the last n layers, "
      .. "n < 0: the first -n)")
  end
  if a.plot_loss and a.logging_strategy == "no" then
    bad_key("plot_loss", "true has no effect: with logging_strategy: no there is no logged loss to plot")
  end
  if a.tokenized_path and a.streaming then
    bad_key("tokenized_path", "cannot be used with streaming: lfl streams raw records and tokenizes them as it trains")
  end
  if a.use_asft_loss and (a.use_dft_loss or a.use_eaft_loss) then
    bad_key("use_asft_loss", fmt("true has no effect with %s: true (LlamaFactory then trains with the %s loss); set "
      .. "one of them", a.use_dft_loss and "use_dft_loss" or "use_eaft_loss", a.use_dft_loss and "DFT" or "EAFT"))
  end
  if a.use_asft_loss and a.finetuning_type == "lora" and not a.ref_model then
    bad_key("use_asft_loss", "with finetuning_type lora needs ref_model: LlamaFactory creates no reference model for "
      .. "LoRA (create_ref_model) and its ASFT step then fails")
  end
  if a.use_dft_loss and a.use_eaft_loss then
    bad_key("use_eaft_loss", "true has no effect with use_dft_loss: true (LlamaFactory then trains with the DFT loss); "
      .. "set one of them")
  end
  if a.compute_accuracy and a.predict_with_generate then
    bad("Cannot use `predict_with_generate` and `compute_accuracy` together.")
  end
  -- GGUF block weights are frozen and read as stored: LoRA only, nothing that rewrites the base
  if a.gguf_blocks then
    if a.finetuning_type ~= "lora" then
      bad_key("gguf_blocks", fmt("GGUF block weights are frozen, so only finetuning_type lora trains on them "
        .. "(LlamaFactory refuses full and freeze fine-tuning of a quantized model); this run's is %s: set "
        .. "gguf_blocks: false to dequantize the file", tostring(a.finetuning_type)))
    elseif a.quantization_bit then
      bad_key("gguf_blocks", "true keeps the GGUF's blocks and quantization_bit re-quantizes them (bitsandbytes): "
        .. "choose one")
    elseif a.pissa_init then
      bad_key("pissa_init", "PiSSA rewrites the base weights, which gguf_blocks keeps as stored; set gguf_blocks: false")
    elseif a.adapter_name_or_path and tostring(a.adapter_name_or_path):find(",", 1, true) then
      bad_key("adapter_name_or_path", "GGUF block weights take a single adapter (the others would merge into them); "
        .. "set gguf_blocks: false or merge them first (lfl export)")
    end
  end
  if a.quantization_bit and a.resize_vocab then bad("cannot resize the embeddings of a quantized model (resize_vocab)") end
  -- LlamaFactory's rules for a quantized base (hparams/parser.py), and where lfl loads one
  -- (LlamaFactory: "Quantization is only compatible with the LoRA or OFT method"; PEFT's oft/bnb.py
  -- rotates the input of the 4-bit linear as in the unquantized case)
  if a.quantization_bit and a.finetuning_type ~= "lora" and a.finetuning_type ~= "oft" then
    bad_key("quantization_bit", fmt("quantization is only compatible with finetuning_type lora (QLoRA) or oft (QOFT); "
      .. "this run's is %s", tostring(a.finetuning_type)))
  end
  if a.quantization_bit and a.adapter_name_or_path and tostring(a.adapter_name_or_path):find(",", 1, true) then
    bad_key("adapter_name_or_path", "a quantized model takes a single adapter (the others would merge into the quantized "
      .. "weights); merge them first (lfl export)")
  end
  -- create_new_adapter merges every adapter given into the base, which a quantized or GGUF-block base cannot take
  -- (LlamaFactory then resumes the last adapter instead, without a word)
  if a.create_new_adapter and a.adapter_name_or_path and (a.quantization_bit or a.gguf_blocks) then
    bad_key("create_new_adapter", fmt("true merges adapter_name_or_path into the base, which %s cannot take; merge "
      .. "them first (lfl export) or train on the last adapter (create_new_adapter: false)",
      a.quantization_bit and "a quantized base (quantization_bit)" or "GGUF block weights (gguf_blocks)"))
  end
  if a.quantization_bit and a.pissa_init then
    bad_key("pissa_init", "PiSSA cannot initialize from a quantized base (LlamaFactory: run scripts/pissa_init.py "
      .. "on the unquantized model first)")
  end
  if a.quantization_bit and not a.do_train then
    bad_key("quantization_bit", "a quantized base is loaded for training (QLoRA) only in lfl; chat, eval, predict and "
      .. "export load it unquantized (and adapters cannot be merged into a quantized model)")
  end
  scheduler_kwargs(a, bad_key)
  if a.templates then
    for name, spec in pairs(a.templates) do
      if type(name) ~= "string" or type(spec) ~= "table" then
        bad_key("templates", fmt("expected {name = template spec, ...}, got %s = %s", show(name), show(spec)))
      end
      lfl.template.register(name, spec)
    end
  end
  if a.datasets then
    for name, d in pairs(a.datasets) do
      if type(name) ~= "string" or type(d) ~= "table" then
        bad_key("datasets", fmt("expected {name = dataset description, ...}, got %s = %s", show(name), show(d)))
      end
    end
  end
  if a.neat_packing then a.packing = true end
  if a.packing == nil then a.packing = a.stage == "pt" end
  if a.lora_alpha == nil and a.finetuning_type == "lora" then a.lora_alpha = 2 * a.lora_rank end
  -- what the stage's approach module reads (pref_loss, pref_beta, ... for the preference stages)
  local ap = require("lfl.train.approach").load(a.stage)
  if ap.check_args then ap.check_args(a) end
  return notes
end

-- What the arguments name that can be checked without the model: the
-- template, the tool format, and each dataset's description against the
-- stage. lfl train and lfl.trainer call it before the model loads.
function M.preflight(a)
  local problems = {}
  local function try(...) M.collect(problems, ...) end
  if a.template then try("arguments: ", lfl.template.get, a.template) end
  if a.tool_format then try("arguments: tool_format: ", require("lfl.text.tools").get, a.tool_format) end
  for _, key in ipairs({"dataset", "eval_dataset"}) do
    for _, name in ipairs(lfl.data.names_of(a[key])) do try("", lfl.data.describe_for, name, a) end
  end
  if #problems > 0 then M.raise_problems(problems) end
end

-- the lfl.hub options of a model download: model_revision, hf_hub_token, cache_dir
-- the model-loading option of a recipe's rope_scaling: training stretches the
-- positions to cutoff_len, inference and export by 2 (LlamaFactory)
function M.rope_option(a, training)
  if not a.rope_scaling then return nil end
  return {type = a.rope_scaling, max_length = training and (a.cutoff_len or 2048) or nil}
end

function M.hub_options(a)
  return {revision = a.model_revision ~= "main" and a.model_revision or nil, token = a.hf_hub_token,
          cache_dir = a.cache_dir}
end

-- Loads a recipe: a .lua file returning a table (or calling lfl.train itself),
-- or a LlamaFactory .yaml / .yml / .json file.
function M.load_recipe(path)
  if path:match("%.ya?ml$") then return M.read_yaml(path) end
  if path:match("%.json$") then
    -- llamafactory-cli takes a .json recipe too (json.load)
    local text, err = lfl.fs.read(path)
    if not text then error(fmt("%s: cannot read: %s", path, tostring(err)), 0) end
    local r = lfl.json.decode(text, path)
    if type(r) ~= "table" then error(fmt("%s: a recipe is a JSON object of arguments", path), 0) end
    for k, v in pairs(r) do if v == lfl.json.null then r[k] = nil end end
    return r
  end
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  local r = chunk()
  if type(r) ~= "table" then error(fmt("%s: a recipe must return a table of arguments", path), 0) end
  return r
end

return M
