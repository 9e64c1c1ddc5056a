-- lfl.recipes, the one resolver: a template, a dataset description with a
-- mapper, a model family and an approach dropped into <HOME>/.lfl/recipes/
-- override (same name) or extend (new name) the bundled ones without a
-- rebuild; LFL_PATH entries come before ~/.lfl/recipes; names are checked;
-- load errors name the file. (tests/sh/test_recipes.sh checks that a recipes/
-- folder in the current directory is not used, and `lfl recipes`.)
local t = lfl.test
local R = lfl.recipes
local fmt = string.format

local tmp = os.tmpname()
os.remove(tmp)
local home, extra = tmp .. "/home", tmp .. "/extra"
local user = home .. "/.lfl/recipes"
for _, d in ipairs({user .. "/templates", user .. "/datasets", user .. "/models", user .. "/approaches",
                    extra .. "/recipes/templates"}) do lfl.fs.mkdir(d) end

-- HOME and LFL_PATH as the process would see them (lfl.recipes reads them on every lookup)
local env = {HOME = home}
local real_getenv = os.getenv
os.getenv = function(k) if env[k] ~= nil then return env[k] or nil end return real_getenv(k) end

local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end
local function read(path) local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s end
local function entry(kind, name)
  for _, e in ipairs(R.list(kind)) do if e.name == name then return e end end
end

local bundled = lfl.home .. "/recipes/"

-- the drops: one override and one extension of each kind
write(user .. "/templates/qwen.lua", [[return {format_user = "<U>{{content}}</U>", default_system = "mine"}]])
write(user .. "/templates/mytpl.lua", [[return {format_user = "Q: {{content}}\nA: ", format_assistant = {"{{content}}\n"}}]])
write(user .. "/datasets/alpaca_demo.lua", [[
-- the bundled dataset_info.json entry's file, through a mapper
return {file_name = "alpaca_demo.json",
        mapper = function(r) return {prompt = {{role = "user", content = "Mapped: " .. r.instruction}},
                                     response = {{role = "assistant", content = r.output}}} end}]])
write(user .. "/datasets/mydata.lua", [[
return {records = {{q = "1+1?", a = "2"}, {q = "2+2?", a = "4"}, {q = "3+3?", a = "6"}},
        mapper = function(r) return {prompt = {{role = "user", content = r.q}},
                                     response = {{role = "assistant", content = r.a}}} end}]])
write(user .. "/models/llama.lua", [[
local base = lfl.recipes.bundled("models", "llama")
base.title = "my llama"
base.checkpoints = {{name = "My-Llama", hub = "me/my-llama", size = "1B"}}
return base]])
write(user .. "/models/mymodel.lua", [[
-- a llama-layout model under its own model_type
return {family = "mymodel", title = "My model", model_type = "mymodel", template = "mytpl",
        lora_target = {"q_proj", "v_proj"}, checkpoints = {{name = "My-Model", hub = "me/my-model", size = "tiny"}},
        arch = {model_type = "mymodel", traits = {}}}]])
write(user .. "/approaches/myapproach.lua", [[
-- SFT whose loss is twice the causal-LM loss
local sft = lfl.recipes.bundled("approaches", "sft")
local base_loss = sft.loss
sft.name = "myapproach"
sft.loss = function(model, batch, st)
  local l, m = base_loss(model, batch, st)
  return l * 2, m
end
return sft]])

local suite = {}

suite.names_and_kinds = function()
  t.assert_error(function() R.find("templates", "../qwen") end, "bad template name '../qwen'")
  t.assert_error(function() R.find("templates", "a/b") end, "no '/' or '..'")
  t.assert_error(function() R.find("templates", "a..b") end, "bad template name")
  t.assert_error(function() R.load("widgets", "x") end, "unknown recipe kind 'widgets'")
  t.assert_eq(R.find("templates", "no_such_template"), nil)
  t.assert_error(function() R.load("templates", "no_such_template") end, "no template recipe 'no_such_template'")
  local dirs, sources = R.dirs("models")
  t.assert_eq(#dirs, 2)
  t.assert_eq(dirs[1], user .. "/models/"); t.assert_eq(sources[1], "user")
  t.assert_eq(dirs[2], bundled .. "models/"); t.assert_eq(sources[2], "bundled")
end

suite.load_errors_name_the_file = function()
  write(user .. "/templates/broken_syntax.lua", "return {")
  write(user .. "/templates/broken_run.lua", "local x = nil; return x.y")
  write(user .. "/templates/broken_nil.lua", "local x = 1")
  t.assert_error(function() R.load("templates", "broken_syntax") end, user .. "/templates/broken_syntax.lua")
  t.assert_error(function() R.load("templates", "broken_run") end, user .. "/templates/broken_run.lua")
  t.assert_error(function() R.load("templates", "broken_nil") end, "broken_nil.lua: a recipe must return a value")
  t.assert_error(function() lfl.template.get("broken_run") end, "broken_run.lua")
  for _, n in ipairs({"broken_syntax", "broken_run", "broken_nil"}) do os.remove(user .. "/templates/" .. n .. ".lua") end
end

suite.template_override_and_new = function()
  local q = lfl.template.get("qwen")
  t.assert_eq(q.default_system, "mine", "the user's qwen.lua overrides the bundled one")
  local e = entry("templates", "qwen")
  t.assert_eq(e.source, "user")
  t.assert_eq(e.path, user .. "/templates/qwen.lua")
  t.assert_eq(e.overrides, bundled .. "templates/qwen.lua")
  local mine = lfl.template.get("mytpl")
  local turns = mine:encode_multiturn({{role = "user", content = "hi"}, {role = "assistant", content = "yo"}})
  t.assert_eq(lfl.template.join(turns[1][1], {}), "Q: hi\nA: ")
  t.assert_eq(entry("templates", "mytpl").overrides, nil)
  t.assert_eq(entry("templates", "llama3").source, "bundled")
end

suite.dataset_override_and_new = function()
  local d = lfl.data.load({dataset = "alpaca_demo", max_samples = 2})
  t.assert_eq(#d.train, 2)
  t.assert(d.train[1].prompt[1].content:find("^Mapped: "), "the user's description with its mapper wins over "
    .. "dataset_info.json: " .. d.train[1].prompt[1].content)
  local m = lfl.data.load({dataset = "mydata"})
  t.assert_eq(#m.train, 3)
  t.assert_eq(m.train[2].prompt[1].content, "2+2?")
  t.assert_eq(m.train[2].response[1].content, "4")
  t.assert_eq(entry("datasets", "mydata").source, "user")
end

suite.model_family_override_and_new = function()
  local reg = lfl.registry
  reg.reload()
  t.assert_eq(reg.family("llama").title, "my llama", "the user's llama.lua replaces the bundled family")
  t.assert_eq(reg.lookup("meta-llama/Meta-Llama-3-8B"), nil, "its checkpoints are the user's")
  t.assert_eq(reg.lookup("me/my-llama").family, "llama")
  t.assert_eq(entry("models", "llama").overrides, bundled .. "models/llama.lua")
  local types = table.concat(reg.model_types(), ",")
  t.assert(types:find("mymodel", 1, true) and types:find("llama", 1, true), types)
  -- a checkpoint whose config.json says model_type "mymodel" loads with the user's arch
  local src = lfl.home .. "/tests/golden/models/llama"
  local dir = tmp .. "/mymodel-ckpt"
  lfl.fs.mkdir(dir)
  lfl.fs.copy(src .. "/model.safetensors", dir)
  local cfg = lfl.json.decode(read(src .. "/config.json"))
  t.assert_eq(cfg.model_type, "llama")
  cfg.model_type = "mymodel"
  write(dir .. "/config.json", lfl.json.encode(cfg))
  local ref = lfl.model.load(src)
  local mine = lfl.model.load(dir)
  t.assert_eq(mine.arch.name, "mymodel")
  local ids = lfl.tensor({{1, 5, 9, 3, 7, 2}}, "i64")
  local a, b = ref:forward(ids), mine:forward(ids)
  t.assert_eq((a - b):abs():max():item(), 0, "same logits as the llama it copies")
  t.assert_eq(reg.default_template(dir), "mytpl", "the family is found by its model_type")
  -- an unknown model_type is refused with the known ones
  cfg.model_type = "nosuch"
  write(dir .. "/config.json", lfl.json.encode(cfg))
  t.assert_error(function() lfl.model.load(dir) end, "model_type 'nosuch' is not supported")
  t.assert_error(function() lfl.model.load(dir) end, "mymodel")
end

suite.approach_new_stage = function()
  local ap = lfl.approach
  local stages = table.concat(ap.stages(), ",")
  t.assert_eq(stages, "dpo,grpo,kto,myapproach,orpo,ppo,pt,rm,sft,simpo")
  t.assert(ap.check_stage("myapproach"))
  t.assert(ap.check_stage("ppo"))
  -- a LlamaFactory stage without a module (every one has one now: one is pretended)
  ap.LLAMAFACTORY[#ap.LLAMAFACTORY + 1] = "lfstage"
  local ok, msg = ap.check_stage("lfstage")
  t.assert(not ok and msg:find("LlamaFactory stage lfl does not implement yet", 1, true), msg)
  t.assert(msg:find("dpo, grpo, kto, myapproach, orpo, ppo, pt, rm, sft, simpo", 1, true), msg)
  t.assert_error(function() lfl.args.resolve({model_name_or_path = "x", stage = "lfstage"}, {}, "test") end,
    "stage 'lfstage' is a LlamaFactory stage")
  ap.LLAMAFACTORY[#ap.LLAMAFACTORY] = nil
  t.assert_error(function() lfl.args.resolve({model_name_or_path = "x", stage = "nope"}, {}, "test") end,
    "stage 'nope' (stages found: dpo, grpo, kto, myapproach, orpo, ppo, pt, rm, sft, simpo")
  -- a declaration error names the file
  write(user .. "/approaches/badkind.lua", [[
local sft = lfl.recipes.bundled("approaches", "sft"); sft.name = nil; sft.kind = "chat"; return sft]])
  t.assert_error(function() ap.load("badkind") end, "badkind.lua: kind: expected the data kind")
  write(user .. "/approaches/badkind.lua", [[
local sft = lfl.recipes.bundled("approaches", "sft"); sft.name = nil
sft.needs = {reward_model = true}; return sft]])
  R.reload() -- a recipe file edited in the same process
  t.assert(ap.for_training("badkind"), "the trainer provides a reward model (stage ppo)")
  -- a need the trainer cannot meet is refused (every need is met now: one is pretended missing)
  ap.PROVIDED.reward_model = false
  t.assert_error(function() ap.for_training("badkind") end, "needs reward model, which the trainer does not provide")
  -- a need may depend on the arguments
  write(user .. "/approaches/badkind.lua", [[
local sft = lfl.recipes.bundled("approaches", "sft"); sft.name = nil
sft.needs = {reward_model = function(a) return a.want == true end}; return sft]])
  R.reload()
  t.assert(ap.for_training("badkind", {want = false}), "not needed with these arguments")
  t.assert_error(function() ap.for_training("badkind", {want = true}) end, "needs reward model, which the trainer")
  ap.PROVIDED.reward_model = true
  os.remove(user .. "/approaches/badkind.lua")
  -- train 1 step with the user's stage and with sft: the same run, twice the loss
  local cache = real_getenv("LFL_CACHE") or (real_getenv("HOME") .. "/.cache/lfl")
  local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  if not io.open(model, "rb") then error(model .. " is missing (tests/fixtures.sh fetches it)", 0) end
  local function first_loss(stage)
    local a = lfl.args.resolve({model_name_or_path = model, stage = stage, dataset = "mydata", template = "smollm",
      cutoff_len = 32, per_device_train_batch_size = 2, max_steps = 1, logging_steps = 1, save_steps = 1000,
      learning_rate = 1e-3, overwrite_output_dir = true, output_dir = tmp .. "/run_" .. stage,
      disable_tqdm = true, seed = 7, overwrite_cache = true}, {}, "test")
    lfl.trainer.run(a)
    for line in io.lines(a.output_dir .. "/trainer_log.jsonl") do
      local r = lfl.json.decode(line)
      if r.loss then return r.loss end
    end
  end
  local l_sft, l_mine = first_loss("sft"), first_loss("myapproach")
  t.assert(l_sft > 0, "a loss was logged")
  t.assert_close(l_mine, 2 * l_sft, 1e-4, "the user's approach's loss is used")
end

suite.lfl_path_first = function()
  write(extra .. "/recipes/templates/qwen.lua", [[return {format_user = "{{content}}", default_system = "from LFL_PATH"}]])
  env.LFL_PATH = extra .. "/?.lua;" .. tmp .. "/missing/"
  local dirs, sources = R.dirs("templates")
  t.assert_eq(dirs[1], extra .. "/recipes/templates/"); t.assert_eq(sources[1], "LFL_PATH")
  t.assert_eq(dirs[2], tmp .. "/missing/recipes/templates/"); t.assert_eq(sources[2], "LFL_PATH")
  t.assert_eq(sources[3], "user"); t.assert_eq(sources[4], "bundled")
  local ok, err = pcall(function()
    t.assert_eq(lfl.template.get("qwen").default_system, "from LFL_PATH", "LFL_PATH comes before ~/.lfl/recipes")
    local e = entry("templates", "qwen")
    t.assert_eq(e.source, "LFL_PATH")
    t.assert_eq(e.overrides, user .. "/templates/qwen.lua", "the first file it hides is the user's")
  end)
  env.LFL_PATH = nil
  if not ok then error(err, 0) end
  t.assert_eq(lfl.template.get("qwen").default_system, "mine")
end

-- in this order: the LFL_PATH case last (it shadows the user's qwen.lua)
for _, n in ipairs({"names_and_kinds", "load_errors_name_the_file", "template_override_and_new",
                    "dataset_override_and_new", "model_family_override_and_new", "approach_new_stage",
                    "lfl_path_first"}) do
  t.case("recipes." .. n, suite[n])
end
local ok, err = pcall(t.run)
os.getenv = real_getenv
lfl.registry.reload()
lfl.template.reload()
lfl.fs.remove(tmp)
if not ok then error(err, 0) end
