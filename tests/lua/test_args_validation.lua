-- lfl.args: every argument's type and range (lfl.args.SPEC) checked as it is
-- set, from a recipe table, a YAML file or a key=value override, with the key,
-- the value and what was expected in the message; text coerced as
-- HfArgumentParser would ("8" -> 8, "no" -> false); values LlamaFactory takes
-- that lfl does not implement, or that would have no effect on this run,
-- refused with a message naming them; settings that change nothing in lfl
-- noted; LlamaFactory's example recipes all parse and none of their values is
-- refused as a bad value; the template, tool format and datasets checked
-- before a model loads; and the settings made to take effect (step intervals
-- as fractions, eval/save/logging strategies, save_only_model, do_eval,
-- print_param_status, eval_dataset during training, optim names, warmup_steps
-- as a fraction) on the tiny golden llama. tests/sh/test_args_validation.sh
-- runs the real `lfl train` command line.
local t = lfl.test
local A = lfl.args
local fmt = string.format
local home = lfl.home

local base = os.tmpname()
os.remove(base)
local tmp = base .. "_args"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp .. "/model")
for _, f in ipairs({"tests/golden/models/llama/config.json", "tests/golden/models/llama/model.safetensors",
                    "tests/golden/serve/tokenizer.json"}) do
  lfl.fs.symlink(home .. "/" .. f, tmp .. "/model/" .. f:match("[^/]+$"))
end
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return tmp .. "/cache" end return real_getenv(k) end

-- resolve never loads anything: a model path and a dataset name are enough
local function resolve(over, cli, source)
  local r = {model_name_or_path = "m", dataset = "d"}
  for k, v in pairs(over or {}) do r[k] = v end
  return A.resolve(r, cli or {}, source or "recipe.yaml")
end

-- runs fn with print captured; returns the printed lines and fn's results
local function printed(fn)
  local lines, real = {}, print
  print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  local ok, res = pcall(fn)
  print = real
  if not ok then error(res, 0) end
  return lines, res
end

local suite = {}

-- one bad value per important key, given on the command line (text, as a
-- shell passes it): type errors and range errors, each naming the key, the
-- value and what was expected
local BAD_CLI = {
  {"lora_rank=abc", 'command line: lora_rank: expected an integer >= 1, got "abc"'},
  {"lora_rank=0", "lora_rank: expected an integer >= 1, got 0"},
  {"lora_rank=2.5", "lora_rank: expected an integer >= 1, got 2.5"},
  {"lora_alpha=0", "lora_alpha: expected a number > 0, got 0"},
  {"lora_dropout=1", "lora_dropout: expected a number in [0, 1), got 1"},
  {"lora_dropout=-0.1", "lora_dropout: expected a number in [0, 1), got -0.1"},
  {"lora_target=,", 'lora_target: expected a comma-separated list of names, got ","'},
  {"seed=x", 'seed: expected an integer in [0, 2^32 - 1], got "x"'},
  {"seed=-1", "seed: expected an integer in [0, 2^32 - 1], got -1"},
  {"per_device_train_batch_size=0", "per_device_train_batch_size: expected an integer >= 1, got 0"},
  {"per_device_eval_batch_size=two", 'per_device_eval_batch_size: expected an integer >= 1, got "two"'},
  {"gradient_accumulation_steps=0", "gradient_accumulation_steps: expected an integer >= 1, got 0"},
  {"learning_rate=-1", "learning_rate: expected a number >= 0, got -1"},
  {"learning_rate=1e-4x", 'learning_rate: expected a number >= 0, got "1e-4x"'},
  {"weight_decay=-0.1", "weight_decay: expected a number >= 0, got -0.1"},
  {"adam_beta1=1", "adam_beta1: expected a number in [0, 1), got 1"},
  {"adam_beta2=1.5", "adam_beta2: expected a number in [0, 1), got 1.5"},
  {"adam_epsilon=-1e-8", "adam_epsilon: expected a number >= 0, got -1e-08"},
  {"max_grad_norm=-1", "max_grad_norm: expected a number >= 0, got -1 (0 turns clipping off)"},
  {"num_train_epochs=abc", 'num_train_epochs: expected a number, got "abc"'},
  {"max_steps=1.5", "max_steps: expected an integer, got 1.5"},
  {"warmup_ratio=1.5", "warmup_ratio: expected a number in [0, 1], got 1.5"},
  {"warmup_steps=-1", "warmup_steps: expected a number >= 0, got -1"},
  {"warmup_steps=2.5", "warmup_steps: expected a whole number of steps, or a fraction (< 1) of the total steps, got 2.5"},
  {"logging_steps=0", "logging_steps: expected a number > 0, got 0"},
  {"logging_steps=1.5", "logging_steps: expected a whole number of steps, or a fraction (< 1) of the total steps"},
  {"save_steps=-5", "save_steps: expected a number >= 0, got -5 (0 writes no checkpoint before the end)"},
  {"eval_steps=0", "eval_steps: expected a number > 0, got 0"},
  {"save_total_limit=-1", "save_total_limit: expected an integer >= 0, got -1"},
  {"cutoff_len=1", "cutoff_len: expected an integer >= 2, got 1 (a training example keeps at least one prompt"},
  {"cutoff_len=abc", 'cutoff_len: expected an integer >= 2, got "abc"'},
  {"val_size=-0.1", "val_size: expected a number >= 0, got -0.1"},
  {"val_size=2.5", "val_size: expected a fraction in [0, 1) or a whole number of examples, got 2.5"},
  {"max_samples=0", "max_samples: expected an integer >= 1, got 0"},
  {"buffer_size=0", "buffer_size: expected an integer >= 1, got 0"},
  {"preprocessing_batch_size=0", "preprocessing_batch_size: expected an integer >= 1, got 0"},
  {"temperature=-1", "temperature: expected a number >= 0, got -1"},
  {"top_p=0", "top_p: expected a number in (0, 1], got 0"},
  {"top_p=1.5", "top_p: expected a number in (0, 1], got 1.5"},
  {"top_k=-1", "top_k: expected an integer >= 0, got -1"},
  {"num_beams=0", "num_beams: expected an integer >= 1, got 0"},
  {"max_length=0", "max_length: expected an integer >= 1, got 0"},
  {"max_new_tokens=many", 'max_new_tokens: expected an integer, got "many"'},
  {"repetition_penalty=0", "repetition_penalty: expected a number > 0, got 0"},
  {"do_sample=maybe", 'do_sample: expected true or false (yes/no, true/false, t/f, y/n, 1/0), got "maybe"'},
  {"bf16=2", "bf16: expected true or false"},
  {"lr_scheduler_type=cosin", 'lr_scheduler_type: expected one of linear, cosine,'},
  {"finetuning_type=qlora", 'finetuning_type: expected one of lora, oft, freeze, full, got "qlora"'},
  {"gradient_checkpointing_policy=some", 'gradient_checkpointing_policy: expected one of auto, selective, full, got "some"'},
  {"mix_strategy=zip", 'mix_strategy: expected one of concat, interleave_under, interleave_over, interleave_once'},
  {"optim=adam", 'optim: expected one of adamw_torch,'},
  {"quantization_bit=7", "quantization_bit: expected one of 1, 2, 3, 4, 5, 6, 8, got 7"},
  {"lr_scheduler_kwargs=[1]", 'lr_scheduler_kwargs: expected a mapping (or a JSON object), got a list'},
  {"interleave_probs=0.5,x", 'interleave_probs: expected a comma-separated list of numbers in [0, 1], got "0.5,x"'},
  {"interleave_probs=0.5,2", 'interleave_probs: expected a comma-separated list of numbers in [0, 1], got "0.5,2"'},
  {"dpo_label_smoothing=0.6", "dpo_label_smoothing: expected a number in [0, 0.5), got 0.6"},
  {"badam_switch_interval=0", "badam_switch_interval: expected an integer >= 1, or -1 (never switch), got 0"},
  {"pissa_iter=-2", "pissa_iter: expected an integer >= -1, got -2"},
  {"galore_rank=0", "galore_rank: expected an integer >= 1, got 0"},
  {"freeze_trainable_layers=x", 'freeze_trainable_layers: expected an integer, got "x"'},
  {"export_size=0", "export_size: expected a number > 0, got 0"},
  {"threads=0", "threads: expected an integer >= 1, got 0"},
  {"max_nonfinite_steps=-1", "max_nonfinite_steps: expected an integer >= 0, got -1"},
  {"report_to=slack", 'report_to: expected a comma list of all, none,'},
  {"resume_from_checkpoint=1.5", "resume_from_checkpoint: expected true, false or a checkpoint folder, got 1.5"},
  {"num_generations=1", "num_generations: expected an integer >= 2, got 1"},
  {"grpo_epsilon=1", "grpo_epsilon: expected a number in (0, 1), got 1"},
  {"grpo_loss_type=ppo", 'grpo_loss_type: expected one of grpo, bnpo, dr_grpo, dapo, got "ppo"'},
}

-- every argument has a rule, and every rule an argument
suite.spec_covers_every_argument = function()
  for k in pairs(A.DEFAULTS) do t.assert(A.SPEC[k], "no rule for " .. k) end
  for k in pairs(A.SPEC) do t.assert(A.DEFAULTS[k] ~= nil or k == "datasets" or k == "templates", "a rule for no argument: " .. k) end
end

suite.bad_values_on_the_command_line = function()
  t.assert(#BAD_CLI >= 32, "at least 32 bad values")
  for _, c in ipairs(BAD_CLI) do
    t.assert_error(function() resolve({}, {c[1]}) end, c[2], c[1])
  end
end

-- the same from a recipe: Lua values, and strings as a YAML file quotes them
local BAD_RECIPE = {
  {{lora_rank = "abc"}, 'recipe.yaml: lora_rank: expected an integer >= 1, got "abc"'},
  {{seed = true}, "recipe.yaml: seed: expected an integer in [0, 2^32 - 1], got true"},
  {{lora_target = {}}, "lora_target: expected a comma-separated list of names, got a table"},
  {{lora_target = {"q_proj", 3}}, "lora_target: expected a comma-separated list of names, got a list"},
  {{template = true}, "template: expected a string, got true"},
  {{learning_rate = math.huge}, "learning_rate: expected a number >= 0, got inf"},
  {{learning_rate = "inf"}, 'learning_rate: expected a number >= 0, got "inf"'},
  {{lr_scheduler_kwargs = "{not json"}, 'lr_scheduler_kwargs: expected a mapping (or a JSON object), got "{not json"'},
  {{do_train = "sometimes"}, 'do_train: expected true or false'},
  {{model_name_or_path = ""}, 'model_name_or_path: expected a path (a non-empty string), got ""'},
  {{datasets = "mine"}, 'datasets: expected a table, got "mine"'},
  {{stage = "grpo", reward_funcs = true},
   "reward_funcs: expected a function, or a list (or comma-separated names) of functions and reward recipe names"},
}

suite.bad_values_in_a_recipe = function()
  for _, c in ipairs(BAD_RECIPE) do t.assert_error(function() resolve(c[1]) end, c[2], c[2]) end
end

suite.yaml_values_name_the_file = function()
  local path = tmp .. "/bad.yaml"
  local f = assert(io.open(path, "wb"))
  f:write('model_name_or_path: m\ndataset: d\nlora_rank: "abc"\n')
  f:close()
  t.assert_error(function() A.resolve(A.read_yaml(path), {}, path) end,
    path .. ': lora_rank: expected an integer >= 1, got "abc"')
  f = assert(io.open(path, "wb"))
  f:write('model_name_or_path: m\ndataset: d\nlora_rank: "16"\nlearning_rate: 1e-4\nbf16: "True"\n')
  f:close()
  local a = A.resolve(A.read_yaml(path), {}, path)
  t.assert_eq(a.lora_rank, 16, "a quoted number is coerced")
  t.assert_eq(a.lora_alpha, 32, "lora_alpha follows the coerced rank")
  t.assert_eq(a.learning_rate, 1e-4)
  t.assert_eq(a.bf16, true)
  -- a quoted key (a token map) parses too
  f = assert(io.open(path, "wb"))
  f:write('"<|a|>": "first"\n\'<b>\': second\n')
  f:close()
  local m = A.read_yaml(path)
  t.assert_eq(m["<|a|>"], "first")
  t.assert_eq(m["<b>"], "second")
  -- what the hand-written reader got wrong: '#' inside quotes, flow mappings
  f = assert(io.open(path, "wb"))
  f:write('model_name_or_path: m\ndataset: d\ndefault_system: "You are assistant #1"  # a comment\n' ..
    'lr_scheduler_type: cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr_rate: 0.1}\ntemplate: null\n')
  f:close()
  a = A.resolve(A.read_yaml(path), {}, path)
  t.assert_eq(a.default_system, "You are assistant #1")
  t.assert_eq(a.lr_scheduler_kwargs.min_lr_rate, 0.1)
  t.assert_eq(a.template, nil, "null keeps the default")
  a = A.resolve(A.read_yaml(path), {"lr_scheduler_kwargs={min_lr: 1.0e-6}", "learning_rate=1e-5"}, path)
  t.assert_close(a.lr_scheduler_kwargs.min_lr_rate, 0.1, 1e-12, "an override's flow mapping is read as YAML (min_lr -> rate)")
  -- YAML errors and a duplicate key (OmegaConf refuses it) name the file, line and column
  f = assert(io.open(path, "wb"))
  f:write('model_name_or_path: m\nlora_rank: 8\nlora_rank: 16\n')
  f:close()
  t.assert_error(function() A.read_yaml(path) end, path .. ":3:1: found duplicate key 'lora_rank'")
  f = assert(io.open(path, "wb"))
  f:write('model_name_or_path: m\nlora_target: [q_proj, v_proj\n')
  f:close()
  t.assert_error(function() A.read_yaml(path) end, path .. ":3:1: did not find expected ',' or ']'")
  -- a .json recipe (llamafactory-cli reads it with json.load)
  local jp = tmp .. "/recipe.json"
  f = assert(io.open(jp, "wb"))
  f:write('{"model_name_or_path": "m", "lora_rank": 4, "template": null}')
  f:close()
  local j = A.load_recipe(jp)
  t.assert_eq(j.lora_rank, 4)
  t.assert_eq(j.template, nil, "null keeps the default")
end

suite.good_values_are_coerced = function()
  local a = resolve({}, {"lora_rank=16", "learning_rate=1.0e-4", "do_sample=no", "do_train=T", "bf16=1", "seed=0",
    "val_size=20", "num_train_epochs=2", "max_new_tokens=-1", "save_steps=0", "max_grad_norm=0", "top_k=0"})
  t.assert_eq(a.lora_rank, 16)
  t.assert_eq(type(a.lora_rank), "number")
  t.assert_eq(a.learning_rate, 1e-4)
  t.assert_eq(a.do_sample, false)
  t.assert_eq(a.do_train, true)
  t.assert_eq(a.bf16, true)
  t.assert_eq(a.seed, 0)
  t.assert_eq(a.val_size, 20)
  t.assert_eq(a.max_new_tokens, -1, "<= 0: max_length decides (LlamaFactory)")
  t.assert_eq(a.save_steps, 0, "0: no checkpoint before the end")
  local b = resolve({lora_rank = "8.0", learning_rate = "1e-4", do_sample = "false", lora_target = {"q_proj", "v_proj"},
    lr_scheduler_type = "cosine", lr_scheduler_kwargs = '{"num_cycles": 0.25}', dataset = "a,b",
    mix_strategy = "interleave_under", interleave_probs = "0.3, 0.7", resume_from_checkpoint = "true",
    model_revision = 2024})
  t.assert_eq(b.lora_rank, 8)
  t.assert_eq(b.learning_rate, 1e-4, "PyYAML leaves 1e-4 a string; it is a number here")
  t.assert_eq(b.do_sample, false)
  t.assert_eq(b.lora_target[2], "v_proj", "a list stays a list")
  t.assert_eq(b.lr_scheduler_kwargs.num_cycles, 0.25, "a JSON object becomes a table (HF's _convert_str_dict)")
  t.assert_eq(b.interleave_probs[1], 0.3)
  t.assert_eq(b.interleave_probs[2], 0.7)
  t.assert_eq(b.resume_from_checkpoint, true)
  t.assert_eq(b.model_revision, "2024", "a number where a string goes is its text")
  t.assert_eq(resolve({resume_from_checkpoint = "saves/x/checkpoint-5"}).resume_from_checkpoint, "saves/x/checkpoint-5")
  -- key= (null) puts the default back
  local c = resolve({lora_rank = 4}, {"lora_rank="})
  t.assert_eq(c.lora_rank, 8)
  t.assert_eq(c.lora_alpha, 16)
  -- lfl.args.check alone
  t.assert_eq(A.check("per_device_train_batch_size", " 4 "), 4)
  t.assert_eq(A.check("not_a_key", "x"), "x", "a key without a rule passes unchanged")
  t.assert_error(function() A.check("top_p", 2, "here") end, "here: top_p: expected a number in (0, 1], got 2")
  t.assert_error(function() A.check("top_p", 2, "lfl chat", {label = "--top-p"}) end, "lfl chat: --top-p: expected")
end

-- values LlamaFactory takes but lfl does not implement, and values that
-- would have no effect on this run: refused, naming the key and why
local REFUSED = {
  {{}, {"quantization_bit=2"}, "quantization_bit: 2: only bitsandbytes quantization (quantization_bit: 4, NF4/FP4, "
    .. "or 8, LLM.int8) is implemented in lfl; 2-bit (HQQ/EETQ) is not"},
  {{}, {"quantization_bit=4", "quantization_method=gptq"}, "quantization_method: 'gptq' is a LlamaFactory value lfl "
    .. "does not implement (lfl: bnb; lfl quantizes on the fly with bitsandbytes (4-bit NF4/FP4, 8-bit LLM.int8) only)"},
  -- LLM.int8 (quantization_bit 8) under LlamaFactory's rules for a quantized base, and without the 4-bit settings
  {{}, {"quantization_bit=8", "finetuning_type=full"}, "quantization_bit: quantization is only compatible with "
    .. "finetuning_type lora (QLoRA) or oft (QOFT); this run's is full"},
  {{}, {"quantization_bit=8", "finetuning_type=freeze"}, "only compatible with finetuning_type lora"},
  {{}, {"quantization_bit=8", "adapter_name_or_path=a,b"}, "adapter_name_or_path: a quantized model takes a single adapter"},
  {{}, {"quantization_bit=8", "pissa_init=true"}, "pissa_init: PiSSA cannot initialize from a quantized base"},
  {{}, {"quantization_bit=8", "do_train=false"}, "quantization_bit: a quantized base is loaded for training (QLoRA) only"},
  {{}, {"quantization_bit=8", "quantization_type=fp4"}, 'quantization_type: "fp4" has no effect: it applies with '
    .. "quantization_bit: 4 (8-bit LLM.int8 has no type or double quantization)"},
  {{}, {"quantization_bit=8", "double_quantization=false"}, "double_quantization: false has no effect: it applies "
    .. "with quantization_bit: 4"},
  {{}, {"quantization_bit=4", "finetuning_type=full"}, "quantization_bit: quantization is only compatible with "
    .. "finetuning_type lora (QLoRA) or oft (QOFT); this run's is full"},
  {{}, {"quantization_bit=4", "finetuning_type=freeze"}, "only compatible with finetuning_type lora"},
  {{}, {"quantization_bit=4", "pissa_init=true"}, "pissa_init: PiSSA cannot initialize from a quantized base"},
  {{}, {"quantization_bit=4", "resize_vocab=true"}, "cannot resize the embeddings of a quantized model"},
  {{}, {"quantization_bit=4", "adapter_name_or_path=a,b"}, "adapter_name_or_path: a quantized model takes a single adapter"},
  {{}, {"quantization_bit=4", "do_train=false"}, "quantization_bit: a quantized base is loaded for training (QLoRA) only"},
  {{}, {"double_quantization=false"}, "double_quantization: false has no effect: it applies with quantization_bit"},
  {{}, {"report_to=wandb"}, "report_to: 'wandb' is not supported: lfl reports to tensorboard only"},
  {{}, {"report_to=tensorboard,mlflow"}, "report_to: 'mlflow' is not supported: lfl reports to tensorboard only"},
  {{}, {"fp16=true"}, "fp16: true is not supported: fp16 mixed precision is not implemented"},
  {{}, {"optim=adafactor"}, "optim: 'adafactor' is a LlamaFactory value lfl does not implement (lfl: adamw_8bit,"},
  {{}, {"finetuning_type=oft", "oft_rank=8"}, "finetuning_type oft: set exactly one of oft_rank (8) and "
    .. "oft_block_size (32) to a non-zero value"},
  {{}, {"finetuning_type=oft", "oft_target=q_proj"}, "oft_target: LlamaFactory 0.9.5 builds the OFT adapter on "
    .. "lora_target (all) and ignores oft_target (q_proj)"},
  {{}, {"finetuning_type=oft", "stage=dpo"}, "finetuning_type oft is implemented for stage sft and pt"},
  {{}, {"oft_block_size=16"}, "oft_block_size: 16 has no effect: it applies to finetuning_type oft"},
  {{}, {"lr_scheduler_type=reduce_lr_on_plateau"}, "lr_scheduler_type: 'reduce_lr_on_plateau' is a LlamaFactory value"},
  {{}, {"mix_strategy=interleave_once"}, "mix_strategy: 'interleave_once' is a LlamaFactory value lfl does not"},
  {{}, {"save_strategy=best"}, "save_strategy: 'best' is a LlamaFactory value lfl does not implement"},
  {{}, {"export_device=auto"}, "export_device: 'auto' is a LlamaFactory value lfl does not implement"},
  {{}, {"export_legacy_format=true"}, "export_legacy_format: true is not supported: lfl writes safetensors only"},
  {{}, {"use_cache=false"}, "use_cache: false is not supported"},
  {{}, {"tokenized_path=saves/tok", "streaming=true", "max_steps=5"}, "tokenized_path: cannot be used with streaming"},
  {{}, {"ignore_pad_token_for_loss=false"}, "ignore_pad_token_for_loss: false is not supported"},
  {{stage = "dpo", dataset = "dpo_en_demo"}, {"additional_target=embed_tokens"},
   "additional_target: \"embed_tokens\" has no effect: with stage dpo the reference model is this model with its adapter off"},
  {{finetuning_type = "oft"}, {"additional_target=embed_tokens"}, "modules_to_save next to an OFT adapter is not implemented"},
  {{}, {"create_new_adapter=true"}, "create_new_adapter: true has no effect: it applies with adapter_name_or_path"},
  {{}, {"generation_max_length=512"}, "generation_max_length: 512 is not supported"},
  {{}, {"length_penalty=2"}, "length_penalty: 2 is not supported: it only changes beam search"},
  {{}, {"num_beams=4"}, "num_beams: 4: beam search is not supported"},
  -- what does not apply to this run
  {{finetuning_type = "full"}, {"lora_rank=16"},
   "lora_rank: 16 has no effect: it applies to finetuning_type lora (this run's is full)"},
  {{finetuning_type = "freeze"}, {"lora_target=q_proj"},
   'lora_target: "q_proj" has no effect: it applies to finetuning_type lora'},
  {{}, {"freeze_trainable_layers=4"}, "freeze_trainable_layers: 4 has no effect: it applies to finetuning_type freeze"},
  {{}, {"galore_rank=32"}, "galore_rank: 32 has no effect: it applies with use_galore: true"},
  {{finetuning_type = "full", use_badam = true}, {"badam_update_ratio=0.1"},
   "badam_update_ratio: 0.1 has no effect: it applies to badam_mode ratio (this run's is layer)"},
  {{finetuning_type = "full", use_badam = true, badam_mode = "ratio"}, {"badam_switch_interval=10"},
   "badam_switch_interval: 10 has no effect: it applies to badam_mode layer"},
  {{}, {"pref_beta=0.2"}, "pref_beta: 0.2 has no effect: it applies to stage dpo, orpo, simpo, kto (this run's is sft)"},
  {{}, {"pissa_iter=4"}, "pissa_iter: 4 has no effect: it applies with pissa_init: true"},
  {{}, {"num_generations=8"}, "num_generations: 8 has no effect: it applies to stage grpo (this run's is sft)"},
  {{}, {"fsdp=full_shard"}, "fsdp is not supported: FSDP and Ray are not implemented in lfl"},
  {{}, {"image_max_pixels=262144"}, "image_max_pixels is not supported: multimodal"},
  {{}, {"mixture_of_depths=convert"}, "mixture_of_depths: convert trains with finetuning_type full or freeze (this run's is lora)"},
  {{finetuning_type = "full"}, {"mixture_of_depths=depth"}, "mixture_of_depths"},
  {{stage = "pt"}, {"compute_accuracy=true"}, "compute_accuracy: true has no effect: it applies to stage sft (this run's is pt)"},
  {{}, {"compute_accuracy=true", "predict_with_generate=true"}, "Cannot use `predict_with_generate` and `compute_accuracy` together."},
  {{finetuning_type = "full", use_galore = true}, {"optim=sgd"},
   'optim: "sgd" has no effect: use_galore / use_apollo / use_badam / use_muon / use_adam_mini replace the optimizer'},
  {{}, {"eval_strategy=no", "eval_steps=10"},
   "eval_steps: 10 has no effect: it applies with eval_strategy: steps (this run's is no)"},
  {{}, {"eval_steps=10"}, "eval_strategy: 'steps' needs an eval set"},
  {{}, {"save_strategy=no", "save_steps=100"}, "save_steps: 100 has no effect: it applies with save_strategy: steps"},
  {{}, {"logging_strategy=epoch", "logging_steps=5"}, "logging_steps: 5 has no effect: it applies with logging_strategy"},
  {{}, {"quantization_type=fp4"}, 'quantization_type: "fp4" has no effect: it applies with quantization_bit'},
  -- combinations (LlamaFactory's rules, and what would train nothing)
  {{}, {"eval_strategy=steps"}, "eval_strategy: 'steps' needs an eval set: val_size > 0 or eval_dataset"},
  {{}, {"do_eval=true"}, "do_eval: true needs an eval set"},
  {{}, {"val_size=0.1", "eval_dataset=x"}, "val_size and eval_dataset are mutually exclusive"},
  {{}, {"streaming=true", "max_steps=10", "val_size=0.1"}, "val_size: 0.1: streaming needs a whole number of examples"},
  {{dataset = "a,b"}, {"interleave_probs=0.5,0.5"}, "interleave_probs: only valid for interleaved mixing"},
  {{dataset = "a,b,c", mix_strategy = "interleave_over"}, {"interleave_probs=0.5,0.5"},
   "interleave_probs: 2 probabilities for the 3 datasets of dataset (one each)"},
  {{finetuning_type = "freeze"}, {"freeze_trainable_layers=0"}, "freeze_trainable_layers: 0 with no freeze_extra_modules trains nothing"},
  {{}, {"lr_scheduler_type=cosine_with_min_lr"}, "the cosine_with_min_lr schedule needs min_lr or min_lr_rate"},
  {{lr_scheduler_kwargs = {num_cycles = 2}}, {}, "lr_scheduler_kwargs: 'num_cycles' is not an argument of the linear schedule"},
  {{lr_scheduler_type = "polynomial", lr_scheduler_kwargs = {lr_end = 1}}, {"learning_rate=1e-4"},
   "lr_scheduler_kwargs: lr_end (1) must be smaller than learning_rate"},
  {{lr_scheduler_type = "warmup_stable_decay", lr_scheduler_kwargs = {decay_type = "step"}}, {},
   'lr_scheduler_kwargs: decay_type: expected one of linear, cosine, 1-sqrt, got "step"'},
  {{}, {"num_train_epochs=0"}, "num_train_epochs: expected a number > 0 when max_steps is not set, got 0"},
  {{}, {"plot_loss=true", "logging_strategy=no"}, "plot_loss: true has no effect: with logging_strategy: no"},
}

suite.refused_with_a_reason = function()
  for _, c in ipairs(REFUSED) do
    t.assert_error(function() resolve(c[1], c[2]) end, c[3], table.concat(c[2], " "))
  end
  -- a default value of a key that does not apply is fine (a recipe switched to full keeps lora_rank: 8)
  local a = resolve({finetuning_type = "full", lora_rank = 8, lora_target = "all"})
  t.assert_eq(a.lora_alpha, nil, "no lora_alpha made up for a full run")
  t.assert(resolve({}, {"num_train_epochs=0", "max_steps=3"}), "max_steps wins over num_train_epochs")
  t.assert(resolve({}, {"report_to=none"}))
  -- QLoRA as LlamaFactory writes it
  local q = resolve({quantization_bit = 4, quantization_type = "fp4", double_quantization = false})
  t.assert_eq(q.quantization_bit, 4); t.assert_eq(q.quantization_type, "fp4"); t.assert_eq(q.double_quantization, false)
  t.assert_eq(resolve({}, {"quantization_bit=4"}).quantization_type, "nf4", "LlamaFactory's default type")
  -- and what the trainer loads the model with: each setting reaches the loader
  local T = require("lfl.train.trainer")
  local o = T.quantize_options(q)
  t.assert_eq(o.type, "fp4"); t.assert_eq(o.double_quant, false)
  o = T.quantize_options(resolve({}, {"quantization_bit=4"}))
  t.assert_eq(o.type, "nf4"); t.assert_eq(o.double_quant, true)
  t.assert_eq(T.quantize_options(resolve({})), nil)
  local q8 = resolve({}, {"quantization_bit=8"})
  t.assert_eq(q8.quantization_bit, 8)
  t.assert_eq(T.quantize_options(q8).type, "int8")
  t.assert_eq(T.quantize_options(q8).double_quant, nil, "LLM.int8 has no double quantization")
  t.assert_eq(resolve({val_size = 0.1, eval_steps = 5}).eval_strategy, "steps", "eval_steps alone implies steps")
  local args = require("lfl.train.args")
  t.assert_eq(args.reports_to_tensorboard(resolve({}, {"report_to=all"})), true, "all: every installed tracker")
  t.assert_eq(args.reports_to_tensorboard(resolve({}, {"report_to=tensorboard"})), true)
  t.assert_eq(args.reports_to_tensorboard(resolve({report_to = {"none", "tensorboard"}})), true)
  t.assert_eq(args.reports_to_tensorboard(resolve({}, {"report_to=none"})), false)
  t.assert_eq(args.reports_to_tensorboard(resolve({})), false, "none by default")
end

suite.scheduler_kwargs_as_transformers_reads_them = function()
  local a = resolve({lr_scheduler_type = "cosine_with_min_lr", lr_scheduler_kwargs = {min_lr = 1e-5}}, {"learning_rate=1e-4"})
  t.assert_close(a.lr_scheduler_kwargs.min_lr_rate, 0.1, 1e-12, "min_lr is a learning rate: min_lr_rate = min_lr / lr")
  t.assert_eq(a.lr_scheduler_kwargs.min_lr, nil)
  local p = resolve({lr_scheduler_type = "polynomial", lr_scheduler_kwargs = {lr_end = 1e-5, power = 2}},
    {"learning_rate=1e-4"})
  t.assert_eq(p.lr_scheduler_kwargs.lr_init, 1e-4, "polynomial decays from the learning rate to lr_end")
  local f = lfl.optim.schedule("polynomial", 0, 10, p.lr_scheduler_kwargs)
  t.assert_close(f(10) * 1e-4, 1e-5, 1e-9, "the last step's learning rate is lr_end")
  t.assert_eq(resolve({}).lr_scheduler_kwargs, nil)
end

suite.notes_for_settings_without_effect = function()
  local lines = printed(function() return resolve({dataloader_num_workers = 4, trust_remote_code = true}) end)
  local text = table.concat(lines, "\n")
  t.assert(text:find("[lfl] note: dataloader_num_workers=4 has no effect in lfl: lfl's batches come from memory", 1, true), text)
  t.assert(text:find("[lfl] note: trust_remote_code=true has no effect in lfl", 1, true), text)
  local quiet = printed(function() return resolve({trust_remote_code = false, flash_attn = "auto"}) end)
  t.assert_eq(#quiet, 0, "defaults print nothing")
end

suite.unknown_keys = function()
  t.assert_error(function() resolve({learning_rat = 1e-4}) end,
    "recipe.yaml: unknown argument 'learning_rat' (did you mean 'learning_rate'?)")
  t.assert_error(function() resolve({}, {"lora_rnak=8"}) end, "command line: unknown argument 'lora_rnak' (did you mean 'lora_rank'?)")
  t.assert_error(function() resolve({on_step = function() end}) end, "unknown argument 'on_step'")
  t.assert_error(function() resolve({}, {"lora_rank"}) end, "command line: 'lora_rank' is not key=value")
end

-- a table validated by hand (lfl.args.validate without resolve) gets the same checks
suite.validate_checks_a_table_made_by_hand = function()
  local a = {model_name_or_path = "m", dataset = "d", lora_rank = "4", max_steps = 2}
  A.validate(a)
  t.assert_eq(a.lora_rank, 4)
  t.assert_eq(a.learning_rate, 5e-5, "a missing key takes its default")
  a.lora_rank = 0
  t.assert_error(function() A.validate(a) end, "arguments: lora_rank: expected an integer >= 1, got 0")
end

-- the templates of a Lua recipe are registered (so template = "<name>" finds them)
suite.recipe_templates_take_effect = function()
  local a = resolve({templates = {args_test_tpl = {format_user = "U: {{content}}\n"}}, template = "args_test_tpl"})
  A.preflight({template = a.template})
  t.assert_eq(lfl.template.get("args_test_tpl").name, "args_test_tpl")
  t.assert_error(function() resolve({templates = {x = "not a spec"}}) end, 'templates: expected {name = template spec')
end

suite.preflight_before_the_model = function()
  t.assert_error(function() A.preflight({template = "no_such_template_x"}) end, "unknown template 'no_such_template_x'")
  t.assert_error(function() A.preflight({tool_format = "nope"}) end, "arguments: tool_format: ")
  t.assert_error(function() A.preflight({dataset = "no_such_dataset_x", stage = "sft"}) end, "no_such_dataset_x")
  t.assert_error(function() A.preflight({dataset = "alpaca_demo", eval_dataset = "no_such_eval_x", stage = "sft"}) end,
    "no_such_eval_x")
  A.preflight({template = "chatml", tool_format = "qwen", dataset = "alpaca_demo", stage = "sft"})
  -- through the trainer: the missing model is never looked at
  for _, over in ipairs({{template = "no_such_template_x"}, {dataset = "no_such_dataset_x"}}) do
    local r = {model_name_or_path = tmp .. "/no-such-model", dataset = "alpaca_demo", template = "chatml",
      output_dir = tmp .. "/pre", max_steps = 1}
    for k, v in pairs(over) do r[k] = v end
    local err = t.assert_error(function() lfl.trainer(r) end, next(over) == "template" and "no_such_template_x"
      or "no_such_dataset_x")
    t.assert(not tostring(err):find("no-such-model", 1, true), tostring(err))
  end
end

suite.hub_options = function()
  local o = A.hub_options(resolve({model_revision = "v1.0", hf_hub_token = "hf_x", cache_dir = "/c"}))
  t.assert_eq(o.revision, "v1.0")
  t.assert_eq(o.token, "hf_x")
  t.assert_eq(o.cache_dir, "/c")
  t.assert_eq(A.hub_options(resolve({})).revision, nil, "main: the Hub's default")
  -- LlamaFactory's export_hub_model_id: a repo id, checked as it is set (the push is in test_hub.sh)
  t.assert_eq(resolve({}, {"export_hub_model_id=org/merged"}).export_hub_model_id, "org/merged")
  t.assert_eq(resolve({export_hub_model_id = "merged"}).export_hub_model_id, "merged", "the token's namespace")
  for _, bad in ipairs({"org//x", "/abs/path", "a/b/c", "org/x..y"}) do
    t.assert_error(function() resolve({export_hub_model_id = bad}) end,
      "recipe.yaml: export_hub_model_id: expected a Hub repo id ('namespace/name')", bad)
  end
  t.assert_error(function() resolve({export_hub_model_id = true}) end, "export_hub_model_id: expected a string")
end

suite.command_options_ranges = function()
  local chat, serve = require("lfl.cmd.chat"), require("lfl.cmd.serve")
  t.assert_error(function() chat.parse({"--top-p", "2"}) end, "lfl chat: --top-p: expected a number in (0, 1], got 2")
  t.assert_error(function() chat.parse({"--temperature=-1"}) end, "lfl chat: --temperature: expected a number >= 0")
  t.assert_error(function() chat.parse({"--top-k", "1.5"}) end, "lfl chat: --top-k: expected an integer >= 0, got 1.5")
  t.assert_error(function() chat.parse({"--min-p", "2"}) end, "lfl chat: --min-p: expected a number in [0, 1], got 2")
  t.assert_error(function() chat.parse({"--max-new-tokens", "0"}) end, "--max-new-tokens: expected an integer >= 1")
  t.assert_error(function() chat.parse({"--repetition-penalty", "0"}) end, "--repetition-penalty: expected a number > 0")
  t.assert_error(function() serve.parse({"--port", "70000"}) end, "lfl serve: --port: expected an integer in [0, 65535]")
  t.assert_error(function() serve.parse({"--max-queue", "0"}) end, "--max-queue must be at least 1")
  local o = chat.parse({"--top-p", "0.9", "--top-k", "40", "--seed", "7"})
  t.assert_eq(o.top_p, 0.9)
  t.assert_eq(o.top_k, 40)
  local p = require("lfl.cmd.perplexity")
  t.assert_error(function() p.parse({"--stride", "0"}) end, "lfl perplexity: --stride: expected an integer >= 1, got 0")
  t.assert_error(function() p.parse({"--cutoff_len", "1"}) end, "lfl perplexity: --cutoff_len: expected an integer >= 2")
  t.assert_error(function() p.run({"--model", tmp .. "/no-such-model", "--file", home .. "/README.md", "--stride", "2000"}) end,
    "--stride (2000) must not exceed --cutoff_len (1024)")
  local data = require("lfl.cmd.data")
  t.assert_error(function() data.run({"preview", "--cutoff_len", "1", "alpaca_demo"}) end,
    "lfl data: --cutoff_len: expected an integer >= 2, got 1")
  t.assert_error(function() data.run({"preview", "--max-samples=0", "alpaca_demo"}) end,
    "lfl data: --max-samples: expected an integer >= 1, got 0")
end

-- the bundled example recipes resolve as they are (demo.lua trains when it is
-- loaded: it runs lora_sft.lua, which is checked here)
suite.bundled_examples = function()
  local n = 0
  for _, name in ipairs(lfl.fs.list(home .. "/recipes/examples")) do
    if name:match("%.lua$") and name ~= "demo.lua" then
      local path = home .. "/recipes/examples/" .. name
      printed(function() return A.resolve(A.load_recipe(path), {}, path) end)
      n = n + 1
    end
  end
  t.assert(n >= 9, "example recipes: " .. n)
end

-- LlamaFactory's own examples (../shared): every YAML parses, and no value in
-- them is refused as a bad value; a whole recipe may still be refused for
-- what lfl lacks (an unknown key such as deepspeed, a stage, quantization_bit)
suite.llamafactory_examples = function()
  local dir = lfl.home .. "/../shared/reference/llamafactory-examples" -- shared/ sits beside the checkout (CI too)
  if not lfl.fs.isdir(dir) then print("SKIP llamafactory_examples: " .. dir .. " is absent") return end
  local files = {}
  local function walk(d)
    for _, name in ipairs(lfl.fs.list(d)) do
      local p = d .. "/" .. name
      if lfl.fs.isdir(p) then walk(p) elseif name:match("%.ya?ml$") then files[#files + 1] = p end
    end
  end
  walk(dir)
  table.sort(files)
  t.assert(#files > 50, "the examples are there: " .. #files)
  local resolved, refused, values = 0, {}, 0
  for _, f in ipairs(files) do
    local ok, r = pcall(A.read_yaml, f)
    t.assert(ok, tostring(r))
    -- v1/ is the experimental v1 engine's format (model:, flash_attention_2, ...), not the recipe arguments
    if not f:find("/v1/", 1, true) then
      for k, v in pairs(r) do
        if A.SPEC[k] then
          local okc, err = pcall(A.check, k, v, f)
          t.assert(okc, "a value LlamaFactory takes is refused: " .. tostring(err))
          values = values + 1
        end
      end
      if r.model_name_or_path then
        -- as the commands run them: lfl export (merge_lora/) and a prediction recipe train nothing
        local over = {}
        if f:find("/merge_lora/", 1, true) or (r.do_predict and r.do_train == nil and not r.dataset) then
          over = {"do_train=false"}
        end
        local okr, err = pcall(printed, function() return A.resolve(r, over, f) end)
        if okr then resolved = resolved + 1
        else
          err = tostring(err)
          t.assert(not err:find(": expected ", 1, true), "a bad-value error for an example: " .. err)
          refused[#refused + 1] = err
        end
      end
    end
  end
  t.assert(values > 300, "values checked: " .. values)
  t.assert(resolved >= 13, "whole recipes accepted: " .. resolved)
  -- the SFT recipes lfl runs resolve as they are
  for _, name in ipairs({"train_lora/qwen3_lora_sft.yaml", "train_lora/qwen3_lora_pretrain.yaml",
                         "extras/galore/llama3_full_sft.yaml", "extras/badam/llama3_full_sft.yaml",
                         "extras/pissa/llama3_lora_sft.yaml", "extras/loraplus/llama3_lora_sft.yaml"}) do
    printed(function() return A.resolve(A.read_yaml(dir .. "/" .. name), {}, name) end)
  end
  for _, name in ipairs({"merge_lora/qwen3_lora_sft.yaml", "extras/nlg_eval/llama3_lora_predict.yaml"}) do
    printed(function() return A.resolve(A.read_yaml(dir .. "/" .. name), {"do_train=false"}, name) end)
  end
  if os.getenv("LFL_TEST_VERBOSE") then
    print(fmt("llamafactory examples: %d values checked, %d recipes accepted, %d refused:", values, resolved, #refused))
    for _, e in ipairs(refused) do print("  " .. e) end
  end
end

-- ---------------------------------------------------------------- settings that take effect

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "sft", dataset = "alpaca_demo", template = "chatml",
    cutoff_len = 24, max_samples = 8, per_device_train_batch_size = 2, gradient_accumulation_steps = 1,
    max_steps = 4, logging_steps = 1, save_steps = 1000, learning_rate = 1e-2, overwrite_output_dir = true,
    disable_tqdm = true, seed = 5, finetuning_type = "lora"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function log_of(dir)
  local train, eval = {}, {}
  if not io.open(dir .. "/trainer_log.jsonl") then return "", "" end
  for line in io.lines(dir .. "/trainer_log.jsonl") do
    local r = lfl.json.decode(line)
    if r.loss then train[#train + 1] = r.current_steps end
    if r.eval_loss then eval[#eval + 1] = r.current_steps end
  end
  return table.concat(train, ","), table.concat(eval, ",")
end

local function quiet_run(r)
  local _, res = printed(function() return lfl.trainer.run(lfl.args.resolve(r, {}, "test")) end)
  return res
end

local function checkpoints(dir)
  local s = {}
  for i, n in ipairs(lfl.trainer.list_checkpoints(dir)) do s[i] = n end
  return table.concat(s, ",")
end

suite.step_intervals_and_strategies = function()
  local d = tmp .. "/frac"
  quiet_run(recipe({output_dir = d, logging_steps = 0.5, save_steps = 0.25, max_steps = 8}))
  local train = log_of(d)
  t.assert_eq(train, "4,8", "logging_steps 0.5 of 8 steps: every 4")
  t.assert_eq(checkpoints(d), "2,4,6", "save_steps 0.25 of 8: every 2 (the last step is the final save)")
  local st = lfl.json.decode(io.open(d .. "/trainer_state.json"):read("*a"))
  t.assert_eq(st.logging_steps, 4, "trainer_state.json has the steps (HF's state.logging_steps)")
  -- eval_strategy steps: eval_steps defaults to logging_steps (HF)
  d = tmp .. "/evsteps"
  quiet_run(recipe({output_dir = d, val_size = 2, eval_strategy = "steps", logging_steps = 2}))
  local tr, ev = log_of(d)
  t.assert_eq(tr, "2,4")
  t.assert_eq(ev, "2,4")
  d = tmp .. "/evsteps3"
  quiet_run(recipe({output_dir = d, val_size = 2, eval_strategy = "steps", eval_steps = 3}))
  tr, ev = log_of(d)
  t.assert_eq(ev, "3")
  -- epoch strategies: 6 training examples, batch 2 -> 3 steps an epoch, 2 epochs
  d = tmp .. "/epoch"
  quiet_run(recipe({output_dir = d, val_size = 2, max_steps = -1, num_train_epochs = 2, eval_strategy = "epoch",
    save_strategy = "epoch", logging_strategy = "epoch", logging_steps = 500, save_steps = 500}))
  tr, ev = log_of(d)
  t.assert_eq(tr, "3,6", "logged at each epoch's end")
  t.assert_eq(ev, "3,6", "evaluated at each epoch's end")
  t.assert_eq(checkpoints(d), "3", "a checkpoint at the first epoch's end (the last is the final save)")
  -- no: nothing
  d = tmp .. "/none"
  quiet_run(recipe({output_dir = d, save_strategy = "no", logging_strategy = "no", max_steps = 4, save_steps = 500,
    logging_steps = 500}))
  tr = log_of(d)
  t.assert_eq(tr, "")
  t.assert_eq(checkpoints(d), "")
  -- save_steps 0: no checkpoint before the end
  d = tmp .. "/save0"
  quiet_run(recipe({output_dir = d, save_steps = 0}))
  t.assert_eq(checkpoints(d), "")
  -- warmup_steps below 1 is a fraction of the total (transformers 5)
  local _, tw = printed(function() return lfl.trainer(recipe({output_dir = tmp .. "/wu", warmup_steps = 0.5, max_steps = 8})) end)
  t.assert_eq(tw.warmup_steps, 4)
  _, tw = printed(function() return lfl.trainer(recipe({output_dir = tmp .. "/wu", warmup_steps = 3, warmup_ratio = 0.5})) end)
  t.assert_eq(tw.warmup_steps, 3, "warmup_steps wins over warmup_ratio")
end

suite.do_eval_and_eval_dataset = function()
  local res = quiet_run(recipe({output_dir = tmp .. "/ev1", val_size = 2}))
  t.assert(res.metrics.eval_loss, "do_eval unset: evaluated at the end when there is an eval set")
  res = quiet_run(recipe({output_dir = tmp .. "/ev2", val_size = 2, do_eval = false}))
  t.assert_eq(res.metrics.eval_loss, nil, "do_eval false: no final evaluation")
  -- eval_dataset is the eval set of a training run
  local _, tr = printed(function()
    return lfl.trainer(recipe({output_dir = tmp .. "/ev3", eval_dataset = "identity", max_samples = 5}))
  end)
  t.assert(tr.eval_set, "eval_dataset gives the run an eval set")
  t.assert_eq(#tr.eval_set, 5, "identity, cut to max_samples")
  t.assert_eq(#tr.train_set, 5, "the training set is all of dataset")
  local d = lfl.data.load(lfl.args.resolve(recipe({eval_dataset = "identity", max_samples = 3}), {}, "t"))
  t.assert(d.eval[1].prompt[1].content ~= d.train[1].prompt[1].content, "eval rows come from eval_dataset")
end

suite.save_only_model = function()
  local d = tmp .. "/only"
  quiet_run(recipe({output_dir = d, save_steps = 2, save_only_model = true}))
  t.assert(io.open(d .. "/checkpoint-2/adapter_model.safetensors"), "the weights are saved")
  t.assert(not io.open(d .. "/checkpoint-2/optimizer.safetensors"), "no optimizer state")
  d = tmp .. "/full"
  quiet_run(recipe({output_dir = d, save_steps = 2}))
  t.assert(io.open(d .. "/checkpoint-2/optimizer.safetensors"), "the optimizer state by default")
  -- resuming from it says the optimizer starts fresh
  local lines = printed(function()
    lfl.trainer.run(lfl.args.resolve(recipe({output_dir = tmp .. "/only", overwrite_output_dir = false,
      resume_from_checkpoint = tmp .. "/only/checkpoint-2", save_only_model = true}), {}, "t"))
  end)
  t.assert(table.concat(lines, "\n"):find("save_only_model: the optimizer starts from a fresh state", 1, true))
end

suite.print_param_status_and_optim = function()
  local lines, tr = printed(function()
    return lfl.trainer(recipe({output_dir = tmp .. "/pps", print_param_status = true, optim = "paged_adamw_8bit"}))
  end)
  local text = table.concat(lines, "\n")
  t.assert(text:find("name: model.embed_tokens.weight, dtype: f32, device: cpu, trainable: false", 1, true), text)
  t.assert(text:find("lora_A[^\n]*trainable: true"), text)
  t.assert_eq(tr.optimizer.kind, "adamw_8bit", "paged_adamw_8bit: bitsandbytes' 8-bit AdamW (paging aside)")
  _, tr = printed(function() return lfl.trainer(recipe({output_dir = tmp .. "/opt", optim = "adamw_torch_fused"})) end)
  t.assert_eq(tr.optimizer.kind, "adamw")
  _, tr = printed(function() return lfl.trainer(recipe({output_dir = tmp .. "/opt", optim = "sgd"})) end)
  t.assert_eq(tr.optimizer.kind, "sgd")
end

t.suite("args_validation", suite)
t.run()
lfl.fs.remove(tmp)
