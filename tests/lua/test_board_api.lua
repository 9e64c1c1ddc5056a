-- lfl board's JSON API (stdlib/lfl/board) without a browser: requests handed
-- to board:admit as stand-in objects (as tests/lua/test_serve.lua does), on
-- real folders: meta, static files, datasets and the masked preview (the real
-- SmolLM2 tokenizer), validation messages identical to the CLI's, the recipe
-- in YAML and Lua round-tripping through lfl.args, saved configurations, paths
-- that try to escape the allowed roots (.., absolute, symlinks), the access
-- token rule, and a training run that crashes (a corrupt model) reported as
-- failed while the board keeps answering. The browser test is
-- tests/sh/test_board_ui.sh.
local t = lfl.test
local fs, J = lfl.fs, lfl.json
local board_mod = require("lfl.board")

local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local GGUF = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not fs.exists(GGUF) then
  print("FAIL test_board_api: " .. GGUF .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end

local root = os.tmpname()
os.remove(root)
fs.mkdir(root)
root = fs.realpath(root)
local function P(rel) return root .. "/" .. rel end
fs.mkdir(P("data"))
fs.mkdir(P("models"))
fs.mkdir(P("saves"))
fs.mkdir(P("outside"))
for _, f in ipairs({"dataset_info.json", "identity.json", "alpaca_demo.json", "preference_demo.json"}) do
  fs.copy(lfl.home .. "/recipes/data/" .. f, P("data/" .. f))
end
-- a link from a model root to a file outside every root: neither listed nor accepted
fs.symlink("/etc/hostname", P("models/linked-out.gguf"))
-- a "model" that is not one: the run started on it must fail, not the board
fs.write(P("models/broken.gguf"), "this is not a GGUF file")
fs.symlink("/etc", P("data/escape"))
fs.symlink(P("outside"), P("saves/escape"))

local logs = {}
local function new_board(extra)
  local o = {port = false, dataset_dir = P("data"), output_dir = P("saves"), model_dirs = {P("models"), cache .. "/models"},
    log = function(l) logs[#logs + 1] = l end}
  for k, v in pairs(extra or {}) do o[k] = v end
  return board_mod.new(o)
end
local B = new_board()

-- a request stand-in recording the answer
local function call(b, method, path, body, auth)
  local r = {sent = {}}
  function r.info()
    return {method = method, path = path, body = body and J.encode(body) or "", authorization = auth}
  end
  function r.respond(_, status, ctype, text) r.status, r.ctype, r.text = status, ctype, text end
  function r.start(_, status, ctype) r.status, r.ctype, r.streaming = status, ctype, true end
  function r.send(_, s) r.sent[#r.sent + 1] = s; return true end
  function r.finish() r.finished = true end
  function r.gone() return false end
  b:admit(r)
  if r.text and r.ctype == "application/json" then r.json = J.decode(r.text) end
  return r
end
local function ok(b, method, path, body, auth)
  local r = call(b, method, path, body, auth)
  t.assert_eq(r.status, 200, method .. " " .. path .. ": " .. tostring(r.text))
  return r.json, r
end
local function refused(b, status, method, path, body, want)
  local r = call(b, method, path, body)
  t.assert_eq(r.status, status, method .. " " .. path .. ": " .. tostring(r.text))
  t.assert(r.json and type(r.json.error) == "string", "a JSON error")
  if want then t.assert(r.json.error:find(want, 1, true), "error '" .. r.json.error .. "' lacks '" .. want .. "'") end
  return r.json.error
end

local function has(list, v) for _, x in ipairs(list) do if x == v then return true end end return false end

local TINY = {model_name_or_path = GGUF, template = "smollm2",
  dataset = "identity", cutoff_len = 64, max_steps = 2, logging_steps = 1, per_device_train_batch_size = 1,
  gradient_accumulation_steps = 1, compute_type = "fp32"}
local function with(extra)
  local c = {}
  for k, v in pairs(TINY) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

t.suite("board_api", {
  meta_lists_models_templates_stages_languages = function()
    local m = ok(B, "GET", "/api/meta")
    local fam
    for _, f in ipairs(m.families) do if f.family == "smollm2" then fam = f end end
    t.assert(fam and fam.template == "smollm2", "smollm2 family with its template")
    local names = {}
    for _, x in ipairs(m.local_models) do names[x.name] = x end
    t.assert(names["SmolLM2-135M-Instruct.Q4_1.gguf"], "the local GGUF is listed")
    t.assert_eq(names["SmolLM2-135M-Instruct.Q4_1.gguf"].template, "smollm2", "its family's template")
    t.assert(names["broken.gguf"], "a .gguf in a model root is listed")
    t.assert(not names["linked-out.gguf"], "a link out of the roots is not listed")
    for _, s in ipairs({"pt", "sft", "rm", "ppo", "dpo", "kto", "orpo", "simpo"}) do t.assert(has(m.stages, s), s) end
    for _, s in ipairs({"lora", "freeze", "full", "oft"}) do t.assert(has(m.finetuning_types, s), s) end
    t.assert(has(m.templates, "smollm2"), "templates")
    t.assert_eq(m.defaults.learning_rate, 5e-5)
    t.assert_eq(m.defaults.gradient_accumulation_steps, 8)
    local codes = {}
    for _, l in ipairs(m.languages) do codes[#codes + 1] = l.code end
    table.sort(codes)
    t.assert_eq(table.concat(codes, ","), "en,ru,zh")
    t.assert_eq(m.token_required, false)
  end,

  locales_have_the_same_keys_and_cover_the_page = function()
    local dir = lfl.home .. "/stdlib/lfl/board/locales"
    local en = J.decode(fs.read(dir .. "/en.json"))
    local page = fs.read(lfl.home .. "/stdlib/lfl/board/www/index.html") .. fs.read(lfl.home .. "/stdlib/lfl/board/www/app.js")
    for key in page:gmatch('data%-i18n="([%w_]+)"') do t.assert(en[key], "en.json lacks " .. key) end
    for key in page:gmatch('tr%("([%w_]+)"%)') do t.assert(en[key], "en.json lacks " .. key) end
    for _, f in ipairs(fs.list(dir)) do
      local l = J.decode(fs.read(dir .. "/" .. f), f)
      for k in pairs(en) do t.assert(type(l[k]) == "string" and l[k] ~= "", f .. " lacks " .. k) end
      for k in pairs(l) do t.assert(en[k], f .. " has " .. k .. " that en.json lacks") end
    end
  end,

  static_files_and_no_escape = function()
    local _, r = ok(B, "GET", "/")
    t.assert(r.ctype:find("text/html", 1, true) and r.text:find("app.js", 1, true), "index")
    _, r = ok(B, "GET", "/static/app.js")
    t.assert(r.ctype:find("javascript", 1, true), "js type")
    _, r = ok(B, "GET", "/locales/ru.json")
    t.assert(r.text:find("Обучение", 1, true), "ru labels")
    refused(B, 404, "GET", "/static/../init.lua")
    refused(B, 404, "GET", "/static/%2e%2e/init.lua")
    refused(B, 404, "GET", "/locales/../../board/init.lua")
    refused(B, 404, "GET", "/api/nothing", nil, "no API route")
    refused(B, 405, "GET", "/api/runs/start", nil, "not allowed")
  end,

  datasets_and_escapes = function()
    local d = ok(B, "POST", "/api/datasets", {})
    local names = {}
    for _, x in ipairs(d.datasets) do names[x.name] = x end
    t.assert(names.identity and not names.identity.ranking, "identity")
    t.assert(names.dpo_en_demo == nil or names.dpo_en_demo.ranking, "ranking flag")
    refused(B, 403, "POST", "/api/datasets", {dataset_dir = "/etc"}, "outside the folders")
    refused(B, 403, "POST", "/api/datasets", {dataset_dir = P("data/../outside")}, "outside the folders")
    refused(B, 403, "POST", "/api/datasets", {dataset_dir = P("data/escape")}, "outside the folders")
    refused(B, 400, "POST", "/api/datasets", {dataset_dir = P("data/nothing/../../..")}, "'..' inside a path")
    refused(B, 404, "POST", "/api/datasets", {dataset_dir = P("data/nothing")}, "no dataset_info.json")
  end,

  preview_marks_trained_tokens = function()
    local r = ok(B, "POST", "/api/datasets/preview", {dataset = "identity", config = TINY})
    t.assert_eq(#r.examples, 2)
    local ex = r.examples[1]
    t.assert(#ex.segments >= 2, "masked and trained runs")
    local masked, trained = {}, {}
    for _, s in ipairs(ex.segments) do
      if s.trained then trained[#trained + 1] = s.text else masked[#masked + 1] = s.text end
    end
    masked, trained = table.concat(masked), table.concat(trained)
    t.assert(masked:find("Who are you?", 1, true), "the prompt is masked: " .. masked)
    t.assert(not trained:find("Who are you?", 1, true), "the prompt is not trained")
    t.assert(trained:find("<|im_end|>", 1, true), "the answer and its end token are trained: " .. trained)
    t.assert(ex.trained_tokens > 0 and ex.trained_tokens < ex.tokens, "counts")
    t.assert(ex.tokens <= 64, "cutoff_len applies")
    -- train_on_prompt: everything carries labels
    r = ok(B, "POST", "/api/datasets/preview", {dataset = "identity", page = 2, config = with({train_on_prompt = true})})
    t.assert_eq(r.page, 2)
    t.assert_eq(r.examples[1].index, 3)
    t.assert_eq(r.examples[1].trained_tokens, r.examples[1].tokens)
    refused(B, 400, "POST", "/api/datasets/preview", {dataset = "identity", config = {template = "smollm2"}},
      "choose a model")
    refused(B, 403, "POST", "/api/datasets/preview", {dataset = "identity", config = with({model_name_or_path = "/etc/passwd"})},
      "outside the folders")
  end,

  validation_messages_are_the_clis = function()
    local bad = with({lora_rank = 0})
    local err = refused(B, 400, "POST", "/api/validate", {config = bad})
    local cli = {}
    for k, v in pairs(board_mod.recipe_of(bad)) do cli[k] = v end
    cli.dataset_dir, cli.do_train = P("data"), true
    local ok2, want = pcall(lfl.args.resolve, cli, {}, "board")
    t.assert(not ok2, "lfl.args refuses lora_rank 0")
    t.assert_eq(err, want)
    t.assert(err:find("lora_rank", 1, true), err)
    err = refused(B, 400, "POST", "/api/validate", {config = with({lora_rnak = 4})})
    t.assert(err:find("did you mean 'lora_rank'", 1, true), err)
    refused(B, 400, "POST", "/api/validate", {config = with({compute_type = "int3"})}, "compute_type")
    refused(B, 400, "POST", "/api/validate", {config = with({dataset = "no_such_set"})}, "no_such_set")
    t.assert(ok(B, "POST", "/api/validate", {config = TINY}).ok, "a good config")
  end,

  val_size_evaluates_every_save_steps = function()
    local r = ok(B, "POST", "/api/command", {config = with({val_size = 0.1, save_steps = 3})})
    for _, line in ipairs({"eval_strategy: \"steps\"", "eval_steps: 3", "per_device_eval_batch_size: 1"}) do
      t.assert(r.yaml:find(line, 1, true), line .. " in\n" .. r.yaml)
    end
    r = ok(B, "POST", "/api/command", {config = TINY})
    t.assert(not r.yaml:find("eval_strategy", 1, true), "no evaluation without a validation split")
  end,

  command_yaml_and_lua_round_trip = function()
    local cfg = with({learning_rate = 5e-5, lora_target = "q_proj,v_proj", output_dir = P("saves/x"),
      default_system = 'say "hi"\nthen stop'})
    local r = ok(B, "POST", "/api/command", {config = cfg})
    t.assert_eq(r.command, "lfl train " .. P("saves/x") .. "/training_args.yaml")
    t.assert(r.yaml:find("learning_rate: 5.0e-05", 1, true), "a float PyYAML reads as float:\n" .. r.yaml)
    fs.write(P("r.yaml"), r.yaml)
    fs.write(P("r.lua"), r.lua)
    local want = board_mod.recipe_of(cfg)
    want.dataset_dir, want.do_train = P("data"), true
    for _, f in ipairs({"r.yaml", "r.lua"}) do
      local got = lfl.args.load_recipe(P(f))
      for k, v in pairs(want) do t.assert_eq(got[k], v, f .. " " .. k) end
      for k in pairs(got) do t.assert(want[k] ~= nil, f .. " has extra " .. k) end
    end
  end,

  predict_and_export_runs_are_checked_like_the_cli = function()
    local pcfg = {model_name_or_path = GGUF, template = "smollm2", eval_dataset = "identity", max_samples = 2,
      max_new_tokens = 4, output_dir = P("saves/pred")}
    local r = ok(B, "POST", "/api/command", {kind = "predict", config = pcfg})
    t.assert_eq(r.command, "lfl train " .. P("saves/pred") .. "/training_args.yaml")
    for _, line in ipairs({"do_predict: true", "do_train: false", "predict_with_generate: true", "eval_dataset: \"identity\""}) do
      t.assert(r.yaml:find(line, 1, true), line .. " in\n" .. r.yaml)
    end
    -- lfl.infer.predict's own refusal
    local bad = {model_name_or_path = GGUF, template = "smollm2", output_dir = P("saves/pred")}
    refused(B, 400, "POST", "/api/runs/start", {kind = "predict", config = bad}, "predict: do_predict needs eval_dataset")
    refused(B, 400, "POST", "/api/runs/start", {kind = "predict", config = with({eval_dataset = "identity", stage = "pt"})},
      "do_predict is implemented for stage sft")
    local x = {model_name_or_path = GGUF, template = "smollm2", export_dir = P("saves/exported"), export_size = 1}
    r = ok(B, "POST", "/api/command", {kind = "export", config = x})
    t.assert_eq(r.command, "lfl export " .. P("saves/exported") .. "/export_args.yaml")
    -- the export tab's "HF Hub ID" field: the recipe's export_hub_model_id (lfl export pushes the folder)
    x.export_hub_model_id = "me/tiny-exported"
    r = ok(B, "POST", "/api/command", {kind = "export", config = x})
    t.assert(r.yaml:find('export_hub_model_id: "me/tiny-exported"', 1, true), r.yaml)
    x.export_hub_model_id = nil
    refused(B, 400, "POST", "/api/runs/start", {kind = "export", config = {model_name_or_path = GGUF}}, "export_dir is required")
    refused(B, 403, "POST", "/api/runs/start", {kind = "export", config = {model_name_or_path = GGUF, export_dir = P("outside/x")}},
      "export_dir")
    refused(B, 400, "POST", "/api/runs/start", {kind = "export", config = {model_name_or_path = GGUF, export_dir = P("saves/e"),
      export_size = 0}}, "export_size")
    refused(B, 400, "POST", "/api/runs/start", {kind = "bake", config = TINY}, "kind: expected train, predict or export")
  end,

  configs_save_list_load = function()
    local cfg = with({lora_rank = 16, compute_type = "bf16"})
    ok(B, "POST", "/api/configs/save", {name = "mine", format = "yaml", config = cfg})
    ok(B, "POST", "/api/configs/save", {name = "mine", format = "lua", config = cfg})
    local l = ok(B, "GET", "/api/configs")
    t.assert(has(l.configs, "mine.yaml") and has(l.configs, "mine.lua"), "listed")
    for _, n in ipairs({"mine.yaml", "mine.lua"}) do
      local r = ok(B, "POST", "/api/configs/load", {name = n})
      t.assert_eq(r.config.lora_rank, 16, n)
      t.assert_eq(r.config.compute_type, "bf16", n .. ": bf16 comes back as the page's compute_type")
      t.assert_eq(r.config.model_name_or_path, TINY.model_name_or_path, n)
    end
    refused(B, 400, "POST", "/api/configs/save", {name = "../evil", format = "yaml", config = cfg}, "config name")
    refused(B, 400, "POST", "/api/configs/load", {name = "../../etc/passwd"}, "config name")
    refused(B, 403, "POST", "/api/configs/load", {path = "/etc/hosts"}, "outside the folders")
    refused(B, 400, "POST", "/api/configs/save", {name = "x", format = "toml", config = cfg}, "format")
    -- a key is never code in the saved Lua recipe
    local evil = with({})
    evil['x = (function() lfl.fs.write("' .. P("PWNED") .. '", "") end)(), y'] = 1
    refused(B, 400, "POST", "/api/configs/save", {name = "evil", format = "lua", config = evil}, "is not an argument name")
    t.assert(not fs.exists(P("saves/llamaboard_config/evil.lua")) and not fs.exists(P("PWNED")), "nothing written or run")
  end,

  run_paths_cannot_escape = function()
    refused(B, 403, "POST", "/api/runs/start", {config = with({output_dir = P("outside/run")})}, "output_dir")
    refused(B, 403, "POST", "/api/runs/start", {config = with({output_dir = P("saves/escape/run")})}, "outside the folders")
    refused(B, 403, "POST", "/api/runs/start", {config = with({output_dir = "/tmp/lfl-board-escape"})}, "outside the folders")
    refused(B, 400, "POST", "/api/runs/start", {config = with({output_dir = P("saves/new/../../outside")})},
      "'..' inside a path")
    refused(B, 403, "POST", "/api/runs/start", {config = with({model_name_or_path = P("outside/m.gguf")})},
      "model_name_or_path")
    refused(B, 403, "POST", "/api/runs/start", {config = with({model_name_or_path = "evil/unregistered"})},
      "model_name_or_path")
    refused(B, 403, "POST", "/api/runs/start", {config = with({model_name_or_path = P("models/linked-out.gguf")})},
      "outside the folders")
    refused(B, 403, "POST", "/api/runs/start", {config = with({adapter_name_or_path = "/etc"})}, "adapter_name_or_path")
    refused(B, 403, "POST", "/api/chat/load", {model = "/etc/passwd"}, "outside the folders")
    refused(B, 409, "POST", "/api/chat/stream", {messages = {{role = "user", content = "hi"}}}, "load a model first")
    t.assert(not fs.exists("/tmp/lfl-board-escape") and #fs.list(P("outside")) == 0, "nothing written outside")
    -- a registered hub id is a model name, not a path
    t.assert_eq(B:model_ref("HuggingFaceTB/SmolLM2-135M-Instruct"), "HuggingFaceTB/SmolLM2-135M-Instruct")
  end,

  token_rule = function()
    t.assert_error(function() new_board({host = "0.0.0.0"}) end, "refusing to listen on 0.0.0.0 without an access token")
    t.assert_error(function() new_board({host = "192.168.1.5", token = ""}) end, "without an access token")
    t.assert_error(function() new_board({host = "0.0.0.0", token = "short"}) end, "at least 8 characters")
    local tb = new_board({host = "0.0.0.0", token = "s3cret-token"})
    refused(tb, 401, "GET", "/api/meta", nil, "access token")
    t.assert_eq(call(tb, "GET", "/api/meta", nil, "Bearer wrong-token!").status, 401)
    t.assert_eq(call(tb, "GET", "/api/meta", nil, "s3cret-token").status, 401, "the Bearer scheme is required")
    local m = ok(tb, "GET", "/api/meta", nil, "Bearer s3cret-token")
    t.assert_eq(m.token_required, true)
    ok(tb, "GET", "/") -- the page itself holds no data; it asks for the token
    -- a token on loopback is honoured too
    local lb = new_board({token = "another-token"})
    t.assert_eq(call(lb, "GET", "/api/runs").status, 401)
  end,

  crashing_run_leaves_the_board_up = function()
    local cfg = with({model_name_or_path = P("models/broken.gguf"), output_dir = P("saves/broken")})
    local info = ok(B, "POST", "/api/runs/start", {config = cfg})
    t.assert_eq(info.status, "running")
    t.assert(info.pid > 1, "a child process")
    t.assert(fs.read(P("saves/broken/training_args.yaml")):find("broken.gguf", 1, true), "training_args.yaml written")
    local ev = call(B, "GET", "/api/runs/" .. info.id .. "/events")
    t.assert(ev.streaming and ev.ctype == "text/event-stream", "an event stream")
    -- a second start on the same output_dir while it runs is refused
    local again = call(B, "POST", "/api/runs/start", {config = cfg})
    t.assert(again.status == 409 or again.status == 200, "409 while running (or it already ended)")
    local t0 = lfl.sys.clock()
    local st
    repeat
      B:poll_runs()
      B:pump_all()
      st = B.runs[info.id].status
      local x = lfl.sys.clock() while lfl.sys.clock() - x < 0.1 do end
    until st ~= "running" or lfl.sys.clock() - t0 > 90
    t.assert_eq(st, "failed")
    for _ = 1, 3 do B:pump_all() end
    local all = table.concat(ev.sent)
    t.assert(all:find("event: out", 1, true), "the run's output was streamed")
    t.assert(all:find("broken.gguf", 1, true), "its error names the file: " .. all:sub(1, 400))
    t.assert(all:find("event: end", 1, true) and ev.finished, "the stream ended with the run")
    t.assert(fs.read(P("saves/broken/running_log.txt")):find("broken.gguf", 1, true), "running_log.txt")
    -- adapters saved under the output root are offered (a folder with adapter_config.json)
    fs.mkdir(P("saves/old/checkpoint-4"))
    fs.write(P("saves/old/checkpoint-4/adapter_config.json"), "{}")
    fs.mkdir(P("saves/old/checkpoint-6.tmp"))
    fs.write(P("saves/old/checkpoint-6.tmp/adapter_config.json"), "{}")
    local ad = ok(B, "GET", "/api/adapters").adapters
    t.assert(has(ad, P("saves/old/checkpoint-4")), "saved adapter listed")
    t.assert(not has(ad, P("saves/old/checkpoint-6.tmp")), "a half-written checkpoint is not")
    local runs = ok(B, "GET", "/api/runs")
    t.assert_eq(runs.runs[1].status, "failed")
    t.assert(runs.runs[1].code ~= 0, "its exit code")
    ok(B, "GET", "/api/meta") -- still answering
  end,
})

t.case("board_api.zz_cleanup", function() t.assert_eq(fs.remove(root), true) end)

-- lfl webchat (LlamaFactory's webchat): the board holding the chat of the
-- model its arguments name, loaded before it listens; the page shows only the
-- chat (meta.chat_only) and every other API answers 403; a reply streams
t.suite("webchat", {
  chat_only_board = function()
    local d, mdir = lfl.test.tiny_llama_dir("webchat")
    local webchat = require("lfl.cmd.webchat")
    local W = webchat.board({"--model", mdir, "--template", "empty", "--temperature", "0"}, {port = false})
    local meta = call(W, "GET", "/api/meta").json
    t.assert(meta.chat_only == true and meta.chat.template == "empty", "meta says chat only, with the model")
    t.assert_eq(call(W, "GET", "/api/chat").status, 200, "the chat state")
    refused(W, 403, "POST", "/api/runs/start", {config = TINY}, "lfl webchat serves only the chat")
    refused(W, 403, "POST", "/api/chat/load", {model = GGUF}, "lfl webchat serves only the chat")
    refused(W, 403, "GET", "/api/configs", nil, "lfl webchat serves only the chat")
    local r = call(W, "POST", "/api/chat/stream", {messages = {{role = "user", content = "hi"}}, max_new_tokens = 3})
    for _ = 1, 200 do
      if r.finished then break end
      W.chat:tick()
    end
    t.assert(r.streaming and r.finished and #r.sent > 0, "a streamed reply: " .. tostring(r.status) .. " " ..
      tostring(r.text) .. " " .. table.concat(r.sent))
    t.assert(table.concat(r.sent):find("data: [DONE]", 1, true), "the stream ends")
    t.assert(not fs.exists(lfl.fs.realpath(".") .. "/llamaboard_config"), "webchat writes no folder")
    fs.remove(d)
  end,
})

t.run()
