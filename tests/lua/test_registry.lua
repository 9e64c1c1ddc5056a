-- The model registry (recipes/models/*.lua, lfl.registry, lfl models), the
-- lora_target "all" rule against the registry's lists (golden tiny models and
-- HF-named layouts of the families the decoder gains elsewhere), the chat
-- template fallback of lfl chat/serve, and vocabulary growth (lfl.resize:
-- added tokens, embeddings padded to a multiple of 64 with noisy-mean rows).
local t = lfl.test
local R = require "lfl.model.registry"
local T = require "lfl.text.template"
local peft = require "lfl.train.peft"
local resize = require "lfl.model.resize"
local fmt = string.format

local REQUIRED = {llama = "llama", mistral = "mistral", qwen2 = "qwen2", qwen3 = "qwen3", gemma = "gemma",
  gemma2 = "gemma2", phi3 = "phi3", smollm2 = "llama", yi = "llama", deepseek_llm = "llama", olmo = "olmo",
  olmo2 = "olmo2", starcoder2 = "starcoder2", internlm2 = "internlm2", baichuan2 = "baichuan"}

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  os.execute(fmt("mkdir -p '%s'", p))
  return p
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function set_of(list)
  local s = {}
  for _, x in ipairs(list) do s[x] = true end
  return s
end

local function same_set(a, b, msg)
  local sa, sb = set_of(a), set_of(b)
  for x in pairs(sa) do t.assert(sb[x], fmt("%s: %s is not in {%s}", msg, x, table.concat(b, ","))) end
  for x in pairs(sb) do t.assert(sa[x], fmt("%s: %s is missing from {%s}", msg, x, table.concat(a, ","))) end
end

-- runs fn with print captured; returns the printed lines
local function capture(fn)
  local lines, old = {}, print
  print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  local ok, err = pcall(fn)
  print = old
  if not ok then error(err, 0) end
  return lines
end

-- a Model-shaped table with HF parameter names (tiny tensors) for layouts
-- the decoder may not run: target selection only reads names and shapes
local function fake_model(model_type, names_2d, names_1d, layers)
  local params, names = {}, {}
  local function add(n, shape)
    params[n] = lfl.zeros(shape)
    names[#names + 1] = n
  end
  for _, n in ipairs(names_2d.top or {}) do add(n, {8, 4}) end
  for _, n in ipairs(names_1d.top or {}) do add(n, {4}) end
  for l = 0, (layers or 2) - 1 do
    for _, n in ipairs(names_2d.layer) do add(fmt("model.layers.%d.%s.weight", l, n), {4, 4}) end
    for _, n in ipairs(names_1d.layer or {}) do add(fmt("model.layers.%d.%s", l, n), {4}) end
  end
  table.sort(names)
  return {names = names, params = params, config = {model_type = model_type}, arch = {name = model_type}}
end

local GOLDEN = {"gemma", "gemma2", "llama", "llama_bias", "llama_linear_rope", "llama_tied_llama3rope",
  "llama_yarn_rope", "mistral_window", "phi3", "qwen2", "qwen3", "olmo", "olmo2", "starcoder2", "internlm2",
  "internlm2_bias", "baichuan", "baichuan2", "gemma3", "granite", "cohere", "cohere_qknorm", "glm4", "mixtral"}

t.suite("registry", {
  every_family_loads_and_is_complete = function()
    R.reload()
    local fams = R.families()
    local seen = {}
    for i, f in ipairs(fams) do
      seen[f.family] = f
      if i > 1 then t.assert(fams[i - 1].family < f.family, "families() is sorted by name") end
      t.assert(#f.lora_target > 0, f.family .. ": lora_target")
      t.assert(#f.checkpoints > 0 or f.no_checkpoints, f.family .. ": checkpoints (or the reason there are none)")
      t.assert(pcall(T.get, f.template), f.family .. ": template " .. f.template .. " exists")
      for _, c in ipairs(f.checkpoints) do
        t.assert(c.hub:match("^[%w_%.%-]+/[%w_%.%-]+$"), c.name .. ": hub id")
        t.assert(pcall(T.get, c.template), c.name .. ": template " .. c.template .. " exists")
      end
    end
    for fam, mt in pairs(REQUIRED) do
      t.assert(seen[fam], "family " .. fam .. " is registered")
      t.assert_eq(seen[fam].model_type, mt, fam .. " model_type")
    end
    same_set(R.family("phi3").lora_target, {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}, "phi3")
    same_set(R.family("starcoder2").lora_target, {"q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"},
      "starcoder2")
    -- the remote-code layouts load split into llama's names (lfl.convert): those are what LoRA targets
    local llama_names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    same_set(R.family("internlm2").lora_target, llama_names, "internlm2")
    same_set(R.family("baichuan2").lora_target, llama_names, "baichuan2")
  end,

  lookup_by_hub_id_path_and_model_type = function()
    local f, ck, how = R.lookup("Qwen/Qwen2.5-0.5B-Instruct")
    t.assert_eq(f.family, "qwen2"); t.assert_eq(ck.name, "Qwen2.5-0.5B-Instruct"); t.assert_eq(how, "checkpoint")
    t.assert_eq(R.lookup("qwen/qwen2.5-0.5b-instruct").family, "qwen2", "hub ids are case-insensitive")
    f, ck = R.lookup("/home/u/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/0123abc")
    t.assert_eq(f.family, "smollm2", "HF cache snapshot"); t.assert_eq(ck.hub, "HuggingFaceTB/SmolLM2-135M-Instruct")
    t.assert_eq(R.lookup("/data/models/Meta-Llama-3-8B-Instruct/").family, "llama", "folder named like the repo")
    t.assert_eq(R.lookup("internlm/internlm2_5-1_8b-chat").family, "internlm2")
    t.assert_eq(R.lookup("google/gemma-3-1b-it").family, "gemma3")
    t.assert_eq(R.lookup("ibm-granite/granite-3.3-8b-instruct").family, "granite")
    t.assert_eq(R.lookup("CohereForAI/c4ai-command-r-v01").family, "cohere")
    t.assert_eq(R.lookup("THUDM/GLM-4-9B-0414").family, "glm4")
    t.assert_eq(R.lookup("mistralai/Mixtral-8x7B-Instruct-v0.1").family, "mixtral")
    t.assert_eq(R.default_template("THUDM/GLM-Z1-9B-0414"), "glmz1")
    t.assert_eq(R.default_template("google/gemma-3-270m-it"), "gemma3")
    t.assert_eq(R.lookup("phi3").family, "phi3", "a family name")
    local _, _, h = R.lookup("phi3")
    t.assert_eq(h, "family")
    -- unregistered folders fall back to config.json's model_type
    for _, g in ipairs(GOLDEN) do
      local dir = "tests/golden/models/" .. g
      local mt = lfl.json.decode(read(dir .. "/config.json")).model_type
      local fam, c2, how2 = R.lookup(dir)
      t.assert(fam, g .. ": found by model_type")
      t.assert_eq(fam.model_type, mt, g)
      t.assert_eq(c2, nil, g)
      t.assert_eq(how2, "model_type", g)
    end
    t.assert_eq(R.family_of_type("llama").family, "llama", "llama-layout families resolve to llama")
    t.assert_eq(R.family_of_type("baichuan").family, "baichuan2")
    t.assert_eq(R.lookup("nobody/nothing-7b"), nil)
    t.assert_eq(R.lookup("/nonexistent/dir"), nil)
    t.assert_eq(R.lookup(lfl.model.load("tests/golden/models/gemma2")).family, "gemma2", "a loaded Model")
  end,

  default_templates = function()
    local function tpl(x) return (R.default_template(x)) end
    t.assert_eq(tpl("meta-llama/Llama-2-7b-chat-hf"), "llama2")
    t.assert_eq(tpl("meta-llama/Meta-Llama-3-8B-Instruct"), "llama3")
    t.assert_eq(tpl("meta-llama/Llama-3.2-1B-Instruct"), "llama3")
    t.assert_eq(tpl("Qwen/Qwen2.5-7B-Instruct"), "qwen")
    t.assert_eq(tpl("Qwen/Qwen3-4B-Instruct-2507"), "qwen3_nothink")
    t.assert_eq(tpl("Qwen/Qwen3-8B"), "qwen3")
    t.assert_eq(tpl("google/gemma-2-9b-it"), "gemma2")
    t.assert_eq(tpl("microsoft/phi-4"), "phi4")
    t.assert_eq(tpl("microsoft/Phi-3-mini-4k-instruct"), "phi")
    t.assert_eq(tpl("HuggingFaceTB/SmolLM2-1.7B-Instruct"), "smollm2")
    t.assert_eq(tpl("01-ai/Yi-1.5-9B-Chat"), "yi")
    t.assert_eq(tpl("deepseek-ai/deepseek-llm-7b-chat"), "deepseek")
    t.assert_eq(tpl("mistralai/Ministral-8B-Instruct-2410"), "ministral")
    t.assert_eq(tpl("tests/golden/models/qwen3"), "qwen3")
    local name, info = R.default_template("internlm/internlm2-chat-7b")
    t.assert_eq(name, "default"); t.assert_eq(info.stand_in, "intern2"); t.assert_eq(info.family, "internlm2")
    t.assert_eq(R.default_template("nobody/nothing"), nil)
    t.assert_eq(R.lora_targets("nobody/nothing"), nil)
  end,

  -- lora_target "all" (every linear but the head) equals the registry's list
  -- for each golden tiny model the decoder runs
  all_targets_agree_on_golden_models = function()
    for _, g in ipairs(GOLDEN) do
      local m = lfl.model.load("tests/golden/models/" .. g)
      local found = peft.all_linear_names(m)
      same_set(found, R.lora_targets(m), g)
      local notes = capture(function()
        local mods = peft.target_modules(m, "all")
        -- a MoE layer holds each expert's w1/w2/w3
        local per_layer = m.arch.moe and #found + 3 * (m.arch.experts - 1) or #found
        t.assert_eq(#mods, m.arch.layers * per_layer, g .. ": one module per linear per layer")
        for _, mod in ipairs(mods) do
          t.assert(mod ~= "lm_head" and not mod:find("embed"), g .. ": " .. mod .. " is not a head or embedding")
        end
      end)
      t.assert_eq(#notes, 0, g .. ": no mismatch note")
    end
  end,

  -- the same for hand-built HF layouts of olmo/olmo2/starcoder2
  all_targets_agree_on_other_layouts = function()
    local cases = {
      olmo = fake_model("olmo", {top = {"model.embed_tokens.weight", "lm_head.weight"},
        layer = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                 "mlp.up_proj", "mlp.down_proj"}}, {}),
      olmo2 = fake_model("olmo2", {top = {"model.embed_tokens.weight", "lm_head.weight"},
        layer = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                 "mlp.up_proj", "mlp.down_proj"}},
        {top = {"model.norm.weight"}, layer = {"self_attn.q_norm.weight", "self_attn.k_norm.weight",
          "post_attention_layernorm.weight", "post_feedforward_layernorm.weight"}}),
      starcoder2 = fake_model("starcoder2", {top = {"model.embed_tokens.weight", "lm_head.weight"},
        layer = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.c_fc",
                 "mlp.c_proj"}},
        {top = {"model.norm.weight", "model.norm.bias"}, layer = {"input_layernorm.weight", "input_layernorm.bias",
          "self_attn.q_proj.bias", "mlp.c_fc.bias", "mlp.c_proj.bias"}}),
    }
    for mt, m in pairs(cases) do
      local list = R.lora_targets(m)
      t.assert(list, mt .. ": known to the registry")
      same_set(peft.all_linear_names(m), list, mt)
      local notes = capture(function() peft.target_modules(m, "all") end)
      t.assert_eq(#notes, 0, mt .. ": no mismatch note")
    end
    -- an explicit target still has to name a linear
    t.assert_error(function() peft.target_modules(cases.starcoder2, "input_layernorm") end, "no linear layer named")
    t.assert_eq(#peft.target_modules(cases.starcoder2, "c_fc,c_proj"), 4)
  end,

  mismatch_is_reported = function()
    local m = fake_model("llama", {top = {"model.embed_tokens.weight", "lm_head.weight"},
      layer = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.fc"}}, {})
    local notes = capture(function() peft.target_modules(m, "all") end)
    t.assert_eq(#notes, 1)
    t.assert(notes[1]:find("registry's llama list", 1, true), notes[1])
    t.assert(notes[1]:find("missing gate_proj,up_proj,down_proj", 1, true), notes[1])
    t.assert(notes[1]:find("extra fc", 1, true), notes[1])
  end,

  user_recipe_dir = function()
    local root = tmpdir()
    local dir = root .. "/models"
    lfl.fs.mkdir(dir)
    write(dir .. "/mymodel.lua", [[
return {family = "mymodel", model_type = "mymodel_arch", arch = {model_type = "mymodel_arch"},
        template = "chatml", lora_target = "q_proj,v_proj",
        checkpoints = {["My-Model-1B-Chat"] = {hub = "me/my-model-1b-chat", size = "1B"},
                       ["My-Model-1B"] = "me/my-model-1b"}}]])
    write(dir .. "/gemma.lua", [[
return {family = "gemma", title = "my gemma", model_type = "gemma", template = "gemma",
        arch = lfl.recipes.bundled("models", "gemma").arch,
        lora_target = {"q_proj"}, checkpoints = {}}]])
    lfl.recipes.user_dir = root
    local ok, err = pcall(function()
      local f = R.family("mymodel")
      t.assert(f, "a user family is found without a rebuild")
      t.assert_eq(#f.checkpoints, 2)
      t.assert_eq(f.checkpoints[1].name, "My-Model-1B", "map checkpoints are sorted by name")
      t.assert_eq(R.default_template("me/my-model-1b-chat"), "chatml")
      same_set(R.lora_targets("me/my-model-1b"), {"q_proj", "v_proj"}, "comma list")
      t.assert_eq(R.family("gemma").title, "my gemma", "the user's file replaces the bundled one")
      t.assert_eq(R.lookup("google/gemma-2b"), nil, "the replaced family's checkpoints are gone")
      -- a broken recipe names its file and key
      write(dir .. "/broken.lua", [[return {model_type = "x", template = "no_such_template", lora_target = {"a"}}]])
      R.reload()
      t.assert_error(function() R.families() end, "broken.lua: template: no template 'no_such_template'")
      write(dir .. "/broken.lua", [[return {model_type = "x", template = "chatml", lora_target = {"a"},
        checkpoints = {{name = "X", hub = "not a hub id"}}}]])
      R.reload()
      t.assert_error(function() R.families() end, "broken.lua: checkpoints[1].hub")
      write(dir .. "/broken.lua", [[return {template = "chatml", lora_target = {"a"}}]])
      R.reload()
      t.assert_error(function() R.families() end, "broken.lua: model_type")
      -- a family naming a model_type no family module defines is refused, with the known ones
      write(dir .. "/broken.lua", [[return {model_type = "nobody", template = "chatml", lora_target = {"a"}}]])
      R.reload()
      t.assert_error(function() R.families() end, "broken.lua: model_type 'nobody' is not defined by any family's arch (known: baichuan, cohere, deepseek_v2, deepseek_v3, gemma")
      -- two modules defining one model_type
      write(dir .. "/broken.lua", [[return {model_type = "mymodel_arch", arch = {model_type = "mymodel_arch"},
        template = "chatml", lora_target = {"a"}}]])
      R.reload()
      t.assert_error(function() R.families() end, "model_type 'mymodel_arch' is defined by both")
      write(dir .. "/broken.lua", [[return {model_type = "x", arch = {model_type = "x", trait = {}},
        template = "chatml", lora_target = {"a"}}]])
      R.reload()
      t.assert_error(function() R.families() end, "broken.lua: arch.trait: unknown key")
    end)
    lfl.recipes.user_dir = nil
    R.reload()
    lfl.fs.remove(root)
    if not ok then error(err, 0) end
    t.assert_eq(R.family("mymodel"), nil)
    t.assert_eq(R.family("gemma").title, "Gemma / CodeGemma")
  end,

  lfl_models_command = function()
    local cmd = require("lfl.cmd.models")
    local lines = capture(function() t.assert_eq(cmd.run({}), 0) end)
    local text = table.concat(lines, "\n")
    for fam in pairs(REQUIRED) do t.assert(text:find("\n" .. fam .. "  (", 1, true) or text:find("^" .. fam .. "  %("),
      "lfl models lists " .. fam) end
    t.assert(text:find("meta-llama/Meta-Llama-3-8B-Instruct", 1, true))
    t.assert(text:find("template qwen3", 1, true))
    lines = capture(function() t.assert_eq(cmd.run({"tests/golden/models/phi3"}), 0) end)
    t.assert(lines[1]:find("family phi3", 1, true) and lines[1]:find("model_type", 1, true), lines[1])
    lines = capture(function() t.assert_eq(cmd.run({"--json", "smollm2"}), 0) end)
    local j = lfl.json.decode(table.concat(lines, "\n"))
    t.assert_eq(j.family.family, "smollm2"); t.assert_eq(j.template, "smollm2")
    local err = io.stderr
    io.stderr = {write = function() end}
    local okr, rc = pcall(cmd.run, {"nobody/nothing"})
    io.stderr = err
    t.assert(okr); t.assert_eq(rc, 1)
  end,

  chat_serve_template_fallback = function()
    local chat = require("lfl.cmd.chat")
    local notes = {}
    local function note(l) notes[#notes + 1] = l end
    -- a registered checkpoint: its template, with a note
    local m = {path = "/x/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/abc", config = {model_type = "qwen2"}}
    t.assert_eq(chat.default_template(m, note), "qwen")
    t.assert_eq(#notes, 1)
    t.assert(notes[1]:find("Qwen2.5-0.5B-Instruct", 1, true), notes[1])
    -- a stand-in template is never chosen
    t.assert_eq(chat.default_template({path = "/x/internlm2-chat-7b", config = {model_type = "internlm2"}}, note), nil)
    -- unregistered folder: the tokenizer's chat_template wins over the family's
    local dir = tmpdir()
    write(dir .. "/config.json", '{"model_type": "qwen3"}')
    t.assert_eq(chat.default_template({path = dir, config = {model_type = "qwen3"}}, note), "qwen3",
      "no chat_template: the family's template")
    write(dir .. "/tokenizer_config.json", '{"chat_template": "{{ messages }}"}')
    t.assert_eq(chat.default_template({path = dir, config = {model_type = "qwen3"}}, note), nil)
    os.execute(fmt("rm -rf '%s'", dir))
    t.assert_eq(chat.default_template({path = "/x/y", config = {model_type = "unknown_arch"}}, note), nil)
    -- a model_type shared by several families (llama) picks nothing: lfl.chat's "default"
    local n0 = #notes
    t.assert_eq(chat.default_template({path = "tests/golden/models/llama", config = {model_type = "llama"}}, note), nil)
    t.assert_eq(#notes, n0, "no note when nothing is chosen")
    local _, info = R.default_template("tests/golden/models/llama")
    t.assert(info.ambiguous, "llama by model_type is ambiguous")
    _, info = R.default_template("tests/golden/models/qwen2")
    t.assert(not info.ambiguous, "qwen2 by model_type is not")
  end,
})

-- ---------------------------------------------------------------- resize

local function col_mean(w) return lfl.mean(w, 1, true) end

t.suite("resize", {
  untied_rows_mean_and_padding = function()
    local m = lfl.model.load("tests/golden/models/llama")
    -- shifted so a wrong baseline (zero, or the other matrix's mean) shows
    m.params["model.embed_tokens.weight"] = m.params["model.embed_tokens.weight"] + 3
    m.params["lm_head.weight"] = m.params["lm_head.weight"] - 2
    local E0 = m.params["model.embed_tokens.weight"]:clone()
    local H0 = m.params["lm_head.weight"]:clone()
    local V, H = E0:size()[1], E0:size()[2]
    local a1, b1 = lfl.rng_state()
    local r = resize.embeddings(m, V + 6, {seed = 7})
    local a2, b2 = lfl.rng_state()
    t.assert(a1 == a2 and b1 == b2, "a seeded resize leaves the global RNG alone")
    t.assert_eq(r.old, V); t.assert_eq(r.new, 128); t.assert_eq(r.added, 128 - V)
    t.assert_eq(r.new % 64, 0, "a multiple of 64")
    t.assert_eq(m.config.vocab_size, 128); t.assert_eq(m.arch.vocab, 128)
    for name, old in pairs({["model.embed_tokens.weight"] = E0, ["lm_head.weight"] = H0}) do
      local w = m.params[name]
      t.assert_eq(w:size()[1], 128, name); t.assert_eq(w:size()[2], H, name)
      t.assert_eq(t.max_abs_diff(w:narrow(1, 1, V), old), 0, name .. ": old rows unchanged")
      local new = w:narrow(1, V + 1, 128 - V)
      -- mean of 64 rows of N(0, 1/H) noise: within a few std of the old mean
      local d = t.max_abs_diff(col_mean(new), col_mean(old))
      t.assert(d < 4 / math.sqrt(H) / math.sqrt(128 - V) * 1.5, fmt("%s: new rows' mean off by %.4f", name, d))
      local std = math.sqrt(lfl.mean((new - col_mean(old)) * (new - col_mean(old))):item())
      t.assert_close(std, 1 / math.sqrt(H), 0.2, name .. ": noise std 1/sqrt(hidden)")
    end
    t.assert(t.max_abs_diff(m.params["model.embed_tokens.weight"]:narrow(1, V + 1, 64),
      m.params["lm_head.weight"]:narrow(1, V + 1, 64)) > 0, "the untied head gets its own rows")
    -- the model runs with the new ids
    local logits = m:forward(lfl.tensor({{1, 5, V + 3, 127}}, "i64"))
    t.assert_eq(logits:size()[3], 128)
    t.assert(m:loss(lfl.tensor({{1, 5, V + 3, 127}}, "i64"), lfl.tensor({{1, 5, V + 3, 127}}, "i64")):item() > 0)
    -- the same seed gives the same rows
    local m2 = lfl.model.load("tests/golden/models/llama")
    m2.params["model.embed_tokens.weight"] = m2.params["model.embed_tokens.weight"] + 3
    m2.params["lm_head.weight"] = m2.params["lm_head.weight"] - 2
    resize.embeddings(m2, V + 6, {seed = 7})
    t.assert_eq(t.max_abs_diff(m2.params["lm_head.weight"], m.params["lm_head.weight"]), 0, "seeded")
    -- save + reload keeps the new size
    local dir = tmpdir()
    m:save(dir)
    local back = lfl.model.load(dir)
    t.assert_eq(back.arch.vocab, 128)
    t.assert_eq(back.config.vocab_size, 128)
    t.assert_eq(t.max_abs_diff(back.params["model.embed_tokens.weight"], m.params["model.embed_tokens.weight"]), 0)
    t.assert_tensor_close(back:forward(lfl.tensor({{1, 70, 100}}, "i64")), m:forward(lfl.tensor({{1, 70, 100}}, "i64")),
      1e-6, 1e-6)
    os.execute(fmt("rm -rf '%s'", dir))
  end,

  tied_and_no_op = function()
    local m = lfl.model.load("tests/golden/models/llama_tied_llama3rope")
    t.assert(m.arch.tied)
    local r = resize.embeddings(m, 64)
    t.assert_eq(r.added, 0, "nothing to do when the rows suffice")
    t.assert_eq(resize.embeddings(m, 10).new, 64)
    r = resize.embeddings(m, 129, {seed = 1})
    t.assert_eq(r.new, 192)
    t.assert_eq(m.params["lm_head.weight"], nil, "a tied model has no head to resize")
    t.assert_eq(m:forward(lfl.tensor({{1, 150}}, "i64")):size()[3], 192)
    r = resize.embeddings(m, 200, {seed = 1, pad_to_multiple_of = 1})
    t.assert_eq(r.new, 200, "pad_to_multiple_of = 1: exactly new_len")
    t.assert_error(function() resize.embeddings(m, 0) end, "positive integer")
  end,

  add_tokens_and_trainer_step = function()
    -- a model folder: the tiny llama with the 64-token BPE tokenizer
    local src = tmpdir()
    os.execute(fmt("cp tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors "
      .. "tests/golden/serve/tokenizer.json '%s/'", src))
    local out = tmpdir()
    local dir, ids, tok = resize.add_tokens(src, out, "<think>,</think>", {"<tool>", "<s>"})
    t.assert_eq(dir, out)
    t.assert_eq(#ids, 3, "<s> is already known and skipped")
    t.assert_eq(ids[1], 64); t.assert_eq(ids[3], 66)
    t.assert_eq(tok:vocab_size(), 67)
    t.assert_eq(tok:token_to_id("<tool>"), 66)
    t.assert(tok:is_special(66) and not tok:is_special(64), "special flags")
    local enc = tok:encode("<tool>", {add_special_tokens = false})
    t.assert_eq(#enc, 1); t.assert_eq(enc[1], 66)
    local j = lfl.json.decode(read(out .. "/tokenizer.json"))
    t.assert_eq(j.added_tokens[#j.added_tokens].content, "<tool>")
    -- the trainer's step: tokens added, embeddings grown, the tokenizer in output_dir
    local m = lfl.model.load(src)
    local a = {output_dir = out .. "/run", add_special_tokens = "<tool>", finetuning_type = "full", seed = 3}
    local tok2, path
    capture(function() tok2, path = resize.from_args(m, lfl.tokenizer.load(src), a) end)
    t.assert_eq(path, out .. "/run")
    t.assert_eq(tok2:vocab_size(), 65)
    t.assert_eq(m.arch.vocab, 128)
    t.assert_eq(m:forward(lfl.tensor({{1, 64}}, "i64")):size()[3], 128)
    -- LoRA cannot train the new rows (no modules_to_save): a clear error
    local m3 = lfl.model.load(src)
    t.assert_error(function()
      capture(function() resize.from_args(m3, lfl.tokenizer.load(src), {output_dir = out .. "/run2",
        add_tokens = "<x>", finetuning_type = "lora"}) end)
    end, "modules_to_save")
    os.execute(fmt("rm -rf '%s' '%s'", src, out))
  end,

  -- a whole (two-step) full fine-tune with an added special token that the data uses
  trainer_end_to_end = function()
    local src, data = tmpdir(), tmpdir()
    os.execute(fmt("cp tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors "
      .. "tests/golden/serve/tokenizer.json '%s/'", src))
    write(data .. "/dataset_info.json", '{"tooly": {"file_name": "tooly.json"}}')
    write(data .. "/tooly.json", '[{"instruction": "hi", "input": "", "output": "<tool> ok"},'
      .. '{"instruction": "yo", "input": "", "output": "<tool> no"}]')
    local a = lfl.args.resolve({model_name_or_path = src, stage = "sft", dataset = "tooly", dataset_dir = data,
      template = "default", finetuning_type = "full", add_special_tokens = "<tool>", cutoff_len = 32,
      per_device_train_batch_size = 2, max_steps = 2, logging_steps = 1, save_steps = 1000, learning_rate = 1e-3,
      output_dir = data .. "/run", disable_tqdm = true, overwrite_output_dir = true, seed = 1}, {}, "test")
    t.assert_eq(a.resize_vocab, true)
    local res
    local lines = capture(function() res = lfl.trainer.run(a) end)
    local text = table.concat(lines, "\n")
    t.assert(text:find("resized the token embeddings 64 -> 128", 1, true), text)
    t.assert_eq(res.tokenizer:token_to_id("<tool>"), 64)
    t.assert_eq(res.model.arch.vocab, 128)
    local saved = lfl.safetensors.load(data .. "/run/model.safetensors")
    t.assert_eq(saved["model.embed_tokens.weight"]:size()[1], 128)
    t.assert_eq(saved["lm_head.weight"]:size()[1], 128)
    t.assert_eq(lfl.tokenizer.load(data .. "/run"):token_to_id("<tool>"), 64, "the tokenizer is saved with the run")
    os.execute(fmt("rm -rf '%s' '%s'", src, data))
  end,

  args = function()
    local args = require("lfl.train.args")
    local a = args.resolve({model_name_or_path = "m", dataset = "d", add_tokens = "<a>,<b>"})
    t.assert_eq(a.resize_vocab, true, "added tokens imply resize_vocab")
    t.assert_eq(args.resolve({model_name_or_path = "m", dataset = "d"}).resize_vocab, false)
    t.assert_error(function()
      args.resolve({model_name_or_path = "m", dataset = "d", add_special_tokens = "<a>", quantization_bit = 4})
    end, "quantized")
  end,
})

t.run()
