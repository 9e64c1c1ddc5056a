-- `lfl chat|serve|api|eval <recipe> [key=value ...]`: LlamaFactory's recipe form
-- of the inference commands (llamafactory-cli chat examples/inference/*.yaml)
-- parses into the same options as the --option form; unknown keys, other
-- inference back-ends, --options after a recipe and mistyped values are refused
-- by name; a comma list of adapters merges all but the last.
local t = lfl.test
local cmd = require("lfl.cmd")
local chat, serve, eval = require("lfl.cmd.chat"), require("lfl.cmd.serve"), require("lfl.cmd.eval")
local LF = lfl.home .. "/../shared/reference/llamafactory-examples/"
local tmp = os.tmpname() .. "_cmdrecipes"
lfl.fs.mkdir(tmp)

local function write(name, text)
  local p = tmp .. "/" .. name
  lfl.fs.write(p, text)
  return p
end

-- runs fn(...) collecting the commands' notes (lfl.cmd.note) instead of printing them
local function quiet(fn, ...)
  local notes, note = {}, cmd.note
  cmd.note = function(line) notes[#notes + 1] = line end
  local ok, r = pcall(fn, ...)
  cmd.note = note
  if not ok then error(r, 0) end
  return r, table.concat(notes, "\n")
end

t.suite("cmd_recipes", {
  forms = function()
    t.assert(cmd.is_recipe_form({"x.yaml"}) and cmd.is_recipe_form({"x.yml", "a=1"}) and cmd.is_recipe_form({"r.lua"}))
    t.assert(cmd.is_recipe_form({"model_name_or_path=m"}), "key=value alone")
    t.assert(not cmd.is_recipe_form({"--model", "m.yaml"}) and not cmd.is_recipe_form({}), "--options")
  end,

  -- LlamaFactory's own inference recipe, model swapped by an override
  lf_inference_recipe = function()
    local o, notes = quiet(chat.parse, {LF .. "inference/qwen3_lora_sft.yaml", "model_name_or_path=/m",
      "temperature=0.3", "max_new_tokens=7", "default_system=be brief"})
    t.assert_eq(o.model, "/m")
    t.assert_eq(o.adapter, "saves/qwen3-4b/lora/sft")
    t.assert_eq(o.template, "qwen3_nothink")
    t.assert_eq(o.temperature, 0.3)
    t.assert_eq(o.max_new_tokens, 7)
    t.assert_eq(o.system, "be brief")
    t.assert_eq(o.top_p, nil, "a key the recipe does not set keeps the command's default")
    t.assert_eq(notes, "", "every key of LlamaFactory's recipe is used")
    -- the same through --options
    local p = chat.parse({"--model", "/m", "--adapter", "saves/qwen3-4b/lora/sft", "--template", "qwen3_nothink",
      "--temperature", "0.3", "--max-new-tokens", "7", "--system", "be brief"})
    for _, k in ipairs({"model", "adapter", "template", "temperature", "max_new_tokens", "system"}) do
      t.assert_eq(o[k], p[k], k)
    end
  end,

  generation_keys = function()
    local r = write("g.yaml", "model_name_or_path: /m\ndo_sample: false\ntop_k: 5\nrepetition_penalty: 1.1\n"
      .. "infer_dtype: bfloat16\nseed: 9\n")
    local o = quiet(chat.parse, {r})
    t.assert_eq(o.temperature, 0, "do_sample false is greedy")
    t.assert_eq(o.top_k, 5)
    t.assert_eq(o.repetition_penalty, 1.1)
    t.assert_eq(o.dtype, "bf16")
    t.assert_eq(o.seed, 9)
    local s = quiet(serve.parse, {r, "max_new_tokens=64", "template=chatml"})
    t.assert_eq(s.max_new_tokens, 64)
    t.assert_eq(s.template, "chatml")
    t.assert_eq(s.model, "/m")
    -- a Lua recipe works the same
    local lr = write("g.lua", 'return {model_name_or_path = "/m", template = "chatml"}')
    t.assert_eq(quiet(chat.parse, {lr}).template, "chatml")
  end,

  refusals = function()
    local r = write("r.yaml", "model_name_or_path: /m\ninfer_backend: huggingface\n")
    t.assert_error(function() quiet(chat.parse, {r, "tempreature=0"}) end, "unknown argument 'tempreature' (did you mean 'temperature'?)")
    t.assert_error(function() quiet(chat.parse, {r, "infer_backend=vllm"}) end, "infer_backend 'vllm' is not available")
    t.assert_error(function() quiet(serve.parse, {r, "--port", "1"}) end, "give settings as key=value")
    t.assert_error(function() quiet(chat.parse, {r, "other.yaml"}) end, "unexpected argument 'other.yaml'")
    t.assert_error(function() quiet(chat.parse, {"template=chatml"}) end, "model_name_or_path is required")
    t.assert_error(function() quiet(eval.parse, {r, "n_shot=2.5"}) end, "n_shot expects a whole number")
    local _, notes = quiet(chat.parse, {r, "dataset=identity", "lora_rank=4"})
    t.assert(notes:find("lfl chat does not use dataset, lora_rank", 1, true), "unused keys are reported: " .. notes)
  end,

  -- LlamaFactory's eval recipe (task, task_dir, lang, n_shot, save_dir, batch_size)
  eval_recipe = function()
    local r = write("e.yaml", "model_name_or_path: /m\nadapter_name_or_path: /a\nfinetuning_type: lora\n"
      .. "task: mmlu_test\ntemplate: fewshot\nlang: en\nn_shot: 5\nsave_dir: /s\nbatch_size: 4\n")
    local o, notes = quiet(eval.parse, {r, "task_dir=/td", "seed=3"})
    t.assert_eq(o.model, "/m")
    t.assert_eq(o.adapter, "/a")
    t.assert_eq(o.task, "mmlu_test")
    t.assert_eq(o.task_dir, "/td")
    t.assert_eq(o.n_shot, 5)
    t.assert_eq(o.lang, "en")
    t.assert_eq(o.save_dir, "/s")
    t.assert_eq(o.seed, 3)
    t.assert_eq(o.template, "fewshot")
    t.assert_eq(notes, "")
  end,

  api_is_serve = function()
    local api = require("lfl.cmd.api")
    t.assert(api.usage:find("lfl api RECIPE", 1, true), api.usage)
    t.assert(type(api.run) == "function" and api.help:find("serve", 1, true))
    local names = table.concat(cmd.list_commands(), " ")
    t.assert(names:find("api", 1, true) and names:find("serve", 1, true), names)
  end,

  -- adapter_name_or_path "a,b": a merged into the weights, b attached (LlamaFactory merges both)
  adapter_list = function()
    local base = lfl.home .. "/tests/golden/models/llama"
    lfl.manual_seed(5)
    local peft = require("lfl.train.peft")
    for _, n in ipairs({"a", "b"}) do
      local m = lfl.model.load(base)
      peft.add_lora(m, {rank = 2})
      for _, e in pairs(m.adapters) do e.B:normal_(0, 0.1) end
      peft.save_adapter(m, tmp .. "/" .. n, base)
    end
    local ids = lfl.tensor({{3, 5, 7, 9}}, "i64")
    local ref = lfl.model.load(base)
    peft.load_adapter(ref, tmp .. "/a"); peft.merge(ref)
    peft.load_adapter(ref, tmp .. "/b"); peft.merge(ref)
    local want = lfl.no_grad(function() return ref:forward(ids) end)
    local o = quiet(chat.parse, {"model_name_or_path=" .. base, "adapter_name_or_path=" .. tmp .. "/a," .. tmp .. "/b"})
    local m = chat.load(o)
    t.assert_eq(#m:adapter_names(), 1, "the last adapter stays attached")
    t.assert_tensor_close(lfl.no_grad(function() return m:forward(ids) end), want, 1e-5, 1e-4)
  end,
})

t.run()
lfl.fs.remove(tmp)
