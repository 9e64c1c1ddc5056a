-- LlamaBoard for lfl (`lfl board`): a single-page web UI served through
-- lua/l_http.c, with a small JSON API (documented at M.ROUTES) that the page
-- and the tests call. Training runs are CHILD `lfl train` processes
-- (lfl.sys.spawn, no shell) writing training_args.yaml, running_log.txt and
-- trainer_log.jsonl into their output_dir; the board follows those files and
-- pushes them to the page as server-sent events, so a crashing run never takes
-- the board down. Chat runs in this process through lfl.infer.serve's batcher
-- (OpenAI-style streamed chunks), one decode step per loop turn, so a reply
-- being generated never blocks other requests.
-- Security: every path a request names (dataset_dir, output_dir, model,
-- adapter, config files) must resolve (links followed) inside the allowed
-- roots; with a token every /api/ request needs "Authorization: Bearer TOKEN";
-- bound to a non-loopback address the board refuses to start without a token.
local lfl = lfl
local fmt, concat = string.format, table.concat
local J = lfl.json

local M = {}

local Board = {}
Board.__index = Board
M._Board = Board

-- LlamaFactory's LlamaBoard defaults for the fields of its Train tab (webui/components/train.py)
M.UI_DEFAULTS = {
  stage = "sft", finetuning_type = "lora", learning_rate = 5e-5, num_train_epochs = 3.0, max_grad_norm = 1.0,
  max_samples = 100000, compute_type = "bf16", cutoff_len = 2048, per_device_train_batch_size = 2,
  gradient_accumulation_steps = 8, val_size = 0, lr_scheduler_type = "cosine", logging_steps = 5, save_steps = 100,
  warmup_steps = 0, max_steps = -1, lora_rank = 8, lora_alpha = 16, lora_dropout = 0, lora_target = "all",
  loraplus_lr_ratio = 0, use_rslora = false, use_dora = false, pissa_init = false, freeze_trainable_layers = 2,
  freeze_trainable_modules = "all", oft_block_size = 32, pref_beta = 0.1, pref_ftx = 0, pref_loss = "sigmoid",
  packing = false, train_on_prompt = false, mask_history = false, seed = 42,
}

local LOOPBACK = {["127.0.0.1"] = true, localhost = true, ["::1"] = true}

-- an error a handler raises to answer with status and {error = message}
local Reject = {}
local function reject(status, msg) error(setmetatable({status = status, message = msg}, Reject), 0) end
M.reject = reject

local function encode(v) return J.encode(v) end

local function list_of(t) return setmetatable(t, nil) end

---------------------------------------------------------------- paths

-- absolute form of a path (relative to the board's working directory), "."
-- and ".." removed textually after the links of its existing part are resolved
local function resolve_path(p)
  if type(p) ~= "string" or p == "" then return nil, "empty path" end
  if p:find("%z") then return nil, "path contains a NUL byte" end
  if p:sub(1, 1) ~= "/" then p = lfl.fs.realpath(".") .. "/" .. p end
  -- the longest existing prefix is resolved by the kernel; the rest may not exist yet
  local parts = {}
  for seg in p:gmatch("[^/]+") do parts[#parts + 1] = seg end
  for cut = #parts, 0, -1 do
    local head = "/" .. concat(parts, "/", 1, cut)
    local real = lfl.fs.realpath(head)
    if real then
      local out = {}
      for seg in real:gmatch("[^/]+") do out[#out + 1] = seg end
      for i = cut + 1, #parts do
        local seg = parts[i]
        if seg == ".." then
          -- ".." after a part that does not exist: refuse, it could climb anywhere
          return nil, "'..' inside a path that does not exist yet"
        elseif seg ~= "." then
          out[#out + 1] = seg
        end
      end
      return "/" .. concat(out, "/")
    end
  end
  return nil, "cannot resolve"
end
M.resolve_path = resolve_path

local function under(path, root) return path == root or path:sub(1, #root + 1) == root .. "/" end

-- the resolved path when it lies inside one of the roots of the given kinds,
-- else a 403 naming the field and the roots
function Board:check_path(p, kinds, field)
  local real, why = resolve_path(p)
  if not real then reject(400, fmt("%s: '%s' is not a usable path (%s)", field, tostring(p), why)) end
  local names = {}
  for _, kind in ipairs(kinds) do
    for _, root in ipairs(self.roots[kind] or {}) do
      if under(real, root) then return real end
      names[#names + 1] = root
    end
  end
  reject(403, fmt("%s: '%s' is outside the folders this board may use (%s)", field, p, concat(names, ", ")))
end

---------------------------------------------------------------- YAML / Lua recipe text

local function yaml_scalar(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return fmt("%d", v) end
    local s = fmt("%.10g", v)
    -- PyYAML (YAML 1.1) reads 5e-05 as a string; 5.0e-05 is a float there and here
    if s:find("e") and not s:find("%.") then s = s:gsub("e", ".0e", 1) end
    return s
  end
  return J.encode(tostring(v)) -- a JSON string is a valid double-quoted YAML scalar
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- LlamaFactory's training_args.yaml form of a config (flat key: value)
function M.to_yaml(cfg)
  local out = {}
  for _, k in ipairs(sorted_keys(cfg)) do out[#out + 1] = k .. ": " .. yaml_scalar(cfg[k]) end
  return concat(out, "\n") .. "\n"
end

local function lua_scalar(v)
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return fmt("%d", v) end
    return fmt("%.17g", v)
  end
  if type(v) == "boolean" then return tostring(v) end
  return fmt("%q", tostring(v)):gsub("\\\n", "\\n")
end

-- the same config as a Lua recipe (`lfl train recipe.lua` runs it)
function M.to_lua(cfg, title)
  local out = {"-- " .. (title or "saved by lfl board"), "return {"}
  for _, k in ipairs(sorted_keys(cfg)) do out[#out + 1] = fmt("  %s = %s,", k, lua_scalar(cfg[k])) end
  out[#out + 1] = "}"
  return concat(out, "\n") .. "\n"
end

---------------------------------------------------------------- config from the page

-- The page's form -> recipe keys. compute_type (bf16 / fp16 / fp32 /
-- pure_bf16) becomes bf16 / fp16 / pure_bf16 as LlamaBoard's runner does;
-- empty fields and nulls are left out so LlamaFactory's defaults apply.
function M.recipe_of(form)
  if type(form) ~= "table" then reject(400, "config: expected a JSON object of recipe keys") end
  local cfg = {}
  for k, v in pairs(form) do
    -- keys become Lua and YAML source (saved configurations): names only, never code
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      reject(400, fmt("config: '%s' is not an argument name (letters, digits and _)", tostring(k)))
    end
    if v ~= J.null and v ~= "" then
      if type(v) == "table" then
        local parts = {}
        for i, x in ipairs(v) do parts[i] = tostring(x) end
        v = concat(parts, ",")
        if v == "" then v = nil end
      end
      cfg[k] = v
    end
  end
  local ct = cfg.compute_type
  cfg.compute_type = nil
  if ct == "bf16" then cfg.bf16 = true
  elseif ct == "fp16" then cfg.fp16 = true
  elseif ct == "pure_bf16" then cfg.pure_bf16 = true
  elseif ct ~= nil and ct ~= "fp32" then reject(400, fmt("compute_type: expected bf16, fp16, fp32 or pure_bf16, got '%s'",
    tostring(ct))) end
  return cfg
end

-- validation through lfl.args (the CLI's own code and messages); returns the resolved args
function Board:validate(cfg, training)
  local ok, a = pcall(function()
    local r = {}
    for k, v in pairs(cfg) do r[k] = v end
    if training and r.do_train == nil then r.do_train = true end
    local args = lfl.args.resolve(r, {}, "board")
    lfl.args.preflight(args)
    return args
  end)
  if not ok then
    if getmetatable(a) == Reject then error(a, 0) end
    reject(400, tostring(a))
  end
  return a
end

-- the paths a config names must be inside the roots
function Board:check_config_paths(cfg)
  if cfg.dataset_dir then cfg.dataset_dir = self:check_path(cfg.dataset_dir, {"data"}, "dataset_dir") end
  if cfg.output_dir then cfg.output_dir = self:check_path(cfg.output_dir, {"output"}, "output_dir") end
  if cfg.model_name_or_path then cfg.model_name_or_path = self:model_ref(cfg.model_name_or_path) end
  if cfg.adapter_name_or_path then
    local list = {}
    for d in tostring(cfg.adapter_name_or_path):gmatch("[^,]+") do
      list[#list + 1] = self:check_path(d, {"output", "model"}, "adapter_name_or_path")
    end
    cfg.adapter_name_or_path = concat(list, ",")
  end
end

-- a model is a registered hub id (downloaded into the hub cache) or a path inside the model/output roots
function Board:model_ref(m)
  if type(m) ~= "string" or m == "" then reject(400, "model_name_or_path: give a model") end
  if m:sub(1, 1) ~= "/" and m:sub(1, 1) ~= "." and self.hub_ids[m:lower()] then return m end
  return self:check_path(m, {"model", "output"}, "model_name_or_path")
end

---------------------------------------------------------------- meta

local function basename(p) return p:match("([^/]+)/*$") or p end

-- the registry checkpoint whose name starts a file or folder name (a GGUF of it)
function Board:checkpoint_of_path(path)
  local ok, f, ck = pcall(require("lfl.model.registry").lookup, path)
  if ok and f then return f, ck end
  local base = basename(path):lower()
  local best, bestf
  for _, fam in ipairs(self.families) do
    for _, c in ipairs(fam.checkpoints) do
      local n = c.name:lower()
      if base:sub(1, #n) == n and (base:len() == #n or base:sub(#n + 1, #n + 1):match("[%.%-_]"))
        and (not best or #n > #best.name) then best, bestf = c, fam end
    end
  end
  return bestf, best
end

-- model files and folders in the model roots: *.gguf, and folders with a config.json
function Board:local_models()
  local out = {}
  for _, root in ipairs(self.roots.model) do
    if lfl.fs.isdir(root) then
      for _, name in ipairs(lfl.fs.list(root)) do
        local p = root .. "/" .. name
        local real = lfl.fs.realpath(p)
        local inside = false
        for _, kind in ipairs({"model", "output"}) do
          for _, r in ipairs(self.roots[kind]) do inside = inside or (real and under(real, r)) end
        end
        -- a link out of the roots is not offered (and would be refused if sent)
        if inside and ((name:match("%.gguf$") and not lfl.fs.isdir(p)) or lfl.fs.exists(p .. "/config.json")) then
          local fam, ck = self:checkpoint_of_path(p)
          out[#out + 1] = {name = name, path = p, family = fam and fam.family or J.null,
            template = ck and (ck.template or fam.template) or (fam and fam.template) or J.null}
        end
      end
    end
  end
  return out
end

function Board:meta()
  local fams = {}
  for _, f in ipairs(self.families) do
    local cks = {}
    for i, c in ipairs(f.checkpoints) do cks[i] = {name = c.name, hub = c.hub, template = c.template or f.template} end
    fams[#fams + 1] = {family = f.family, title = f.title, template = f.template, checkpoints = cks}
  end
  local spec = lfl.args.SPEC
  local defaults = {}
  for k, v in pairs(M.UI_DEFAULTS) do defaults[k] = v end
  defaults.dataset_dir = self.dataset_dir
  return {
    families = fams, local_models = self:local_models(),
    templates = require("lfl.recipes").names("templates"),
    stages = require("lfl.train.approach").stages(),
    finetuning_types = spec.finetuning_type.values,
    schedulers = spec.lr_scheduler_type.lfl,
    pref_losses = spec.pref_loss and spec.pref_loss.lfl or spec.pref_loss and spec.pref_loss.values or {"sigmoid"},
    compute_types = {"bf16", "fp16", "fp32", "pure_bf16"},
    chat_only = self.chat_only or nil, chat = self.chat_only and self.chat_info or nil,
    defaults = defaults, output_root = self.roots.output[1], dataset_dir = self.dataset_dir,
    languages = self:languages(), token_required = self.token ~= nil,
  }
end

function Board:languages()
  local out = {}
  for _, f in ipairs(lfl.fs.list(self.locales)) do
    local code = f:match("^([%w_%-]+)%.json$")
    if code then
      local ok, t = pcall(J.decode, lfl.fs.read(self.locales .. "/" .. f), f)
      out[#out + 1] = {code = code, name = ok and type(t) == "table" and t._name or code}
    end
  end
  return out
end

---------------------------------------------------------------- datasets

-- the datasets of dataset_info.json in a folder: name, ranking, formatting
function Board:datasets(dir)
  dir = self:check_path(dir or self.dataset_dir, {"data"}, "dataset_dir")
  local path = dir .. "/dataset_info.json"
  local text, err = lfl.fs.read(path)
  if not text then reject(404, fmt("dataset_dir: %s has no dataset_info.json (%s)", dir, tostring(err))) end
  local ok, info = pcall(J.decode, text, path)
  if not ok or type(info) ~= "table" then reject(400, tostring(info)) end
  local out = {}
  for _, name in ipairs(sorted_keys(info)) do
    local d = info[name]
    if type(d) == "table" then
      out[#out + 1] = {name = name, ranking = d.ranking == true, formatting = d.formatting or "alpaca",
        kto = type(d.columns) == "table" and d.columns.kto_tag ~= nil or false,
        file_name = d.file_name or d.hf_hub_url or J.null}
    end
  end
  return {dataset_dir = dir, datasets = out}
end

-- tokenizer of a model path or hub id, kept for later previews
function Board:tokenizer(model)
  self.tok_cache = self.tok_cache or {}
  local tok = self.tok_cache[model]
  if not tok then
    local path = model
    if model:sub(1, 1) ~= "/" then path = lfl.hub.resolve(model) end
    tok = lfl.tokenizer.load(path)
    self.tok_cache[model] = tok
  end
  return tok
end

-- ids / labels -> runs of text, each {text, trained}
local function segments(tok, ids, labels)
  local IGNORE = require("lfl.data.preprocess").IGNORE
  local out, run, trained = {}, {}, nil
  local function flush()
    if #run > 0 then out[#out + 1] = {text = tok:decode(run, {skip_special_tokens = false}), trained = trained} end
    run = {}
  end
  for i, id in ipairs(ids) do
    local tr = labels[i] ~= IGNORE
    if tr ~= trained then flush(); trained = tr end
    run[#run + 1] = id
  end
  flush()
  return out
end

-- Rendered examples of one dataset (a page of `size`), with the tokens that
-- carry labels (trained) marked, as the sft/pt preprocessing makes them: the
-- model's tokenizer, the template, cutoff_len, train_on_prompt, mask_history.
-- Preference data shows the prompt with its chosen answer.
function Board:preview(body)
  local size = math.min(tonumber(body.size) or 2, 10)
  local page = math.max(tonumber(body.page) or 1, 1)
  local cfg = M.recipe_of(body.config or {})
  cfg.dataset_dir = cfg.dataset_dir or self.dataset_dir
  if type(body.dataset) ~= "string" or body.dataset == "" then reject(400, "preview: give a dataset") end
  cfg.dataset = body.dataset
  cfg.output_dir = nil
  self:check_config_paths(cfg)
  if not cfg.model_name_or_path then reject(400, "preview: choose a model first (its tokenizer renders the examples)") end
  cfg.max_samples = page * size
  local a = self:validate(cfg, false)
  local data = require("lfl.data")
  local stats = {skipped = {}, total = 0, kept = 0, per_dataset = {}}
  local desc = data.describe_for(body.dataset, a)
  local exs = data.align(desc, a, stats)
  local tok = self:tokenizer(a.model_name_or_path)
  local tpl = require("lfl.data.preprocess").data_template(lfl.template.get(a.template or "default"), a)
  local prep = require("lfl.data.preprocess")
  local eos_id = prep.eos_id(tok, tpl)
  local sft = require("lfl.recipes").load("approaches", "sft")
  local rows = {}
  for i = (page - 1) * size + 1, math.min(#exs, page * size) do
    local ex = exs[i]
    local ids, labels
    if a.stage == "pt" then
      local text = {}
      for _, m in ipairs(ex.prompt or {}) do text[#text + 1] = m.content end
      for _, m in ipairs(ex.response or {}) do text[#text + 1] = m.content end
      ids = tok:encode(concat(text, "\n"), {add_special_tokens = false})
      if eos_id then ids[#ids + 1] = eos_id end
      while #ids > a.cutoff_len do ids[#ids] = nil end
      labels = ids
    else
      local one = ex
      if #ex.response > 1 then
        one = {prompt = ex.prompt, response = {ex.response[1]}, system = ex.system, tools = ex.tools}
      end
      ids, labels = sft.encode(one, tok, tpl, a, eos_id, a.cutoff_len)
    end
    if ids then
      local trained = 0
      for _, l in ipairs(labels) do if l ~= prep.IGNORE then trained = trained + 1 end end
      rows[#rows + 1] = {index = i, tokens = #ids, trained_tokens = trained, segments = segments(tok, ids, labels),
        chosen_only = #ex.response > 1 or nil}
    end
  end
  return {dataset = body.dataset, page = page, size = size, total = stats.kept, template = a.template or "default",
    examples = rows}
end

---------------------------------------------------------------- runs

local function now_stamp() return os.date("!%Y-%m-%d-%H-%M-%S") end

local function read_text(path) return (lfl.fs.read(path)) end

-- current RSS of a process in MB (the run's memory), or nil
local function rss_mb(pid)
  local s = read_text("/proc/" .. pid .. "/status")
  local kb = s and s:match("VmRSS:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or nil
end

-- metrics a finished predict run wrote (predict_results.json), or the files of an export
local function results_of(r)
  if r.kind == "predict" then
    local text = read_text(r.output_dir .. "/predict_results.json")
    local ok, m = pcall(J.decode, text or "")
    return ok and type(m) == "table" and m or nil
  elseif r.kind == "export" and r.status == "finished" then
    return {files = lfl.fs.list(r.output_dir)}
  end
  return nil
end

function Board:run_info(r)
  return {id = r.id, kind = r.kind or "train", output_dir = r.output_dir, status = r.status, pid = r.pid,
    code = r.code or J.null, results = results_of(r) or J.null,
    signal = r.signal or J.null, started = r.started, ended = r.ended or J.null,
    model = r.cfg.model_name_or_path or J.null, stage = r.cfg.stage or "sft",
    finetuning_type = r.cfg.finetuning_type or "lora", memory_mb = r.rss or J.null,
    checkpoints = r.kind == "train" and self:checkpoints(r.output_dir) or {}}
end

-- adapter folders of a run: the output_dir itself once saved, and each checkpoint-N
function Board:checkpoints(dir)
  local out = {}
  if not lfl.fs.isdir(dir) then return out end
  local steps = {}
  for _, name in ipairs(lfl.fs.list(dir)) do
    local n = name:match("^checkpoint%-(%d+)$")
    if n and lfl.fs.isdir(dir .. "/" .. name) then steps[#steps + 1] = tonumber(n) end
  end
  table.sort(steps)
  for _, n in ipairs(steps) do out[#out + 1] = fmt("%s/checkpoint-%d", dir, n) end
  if lfl.fs.exists(dir .. "/adapter_config.json") then out[#out + 1] = dir end
  return out
end

-- What a run of each kind is: the recipe file it writes, the lfl command the
-- child runs, and the settings it forces. "train" is the Train tab; "predict"
-- the Evaluate & Predict tab (do_predict with generation, LlamaFactory's
-- predict_with_generate; metrics in predict_results.json); "export" merges the
-- adapter into the base and writes an HF folder (lfl export) to export_dir.
local KINDS = {
  train = {file = "training_args.yaml", command = "train", force = {do_train = true}},
  predict = {file = "training_args.yaml", command = "train", force = {do_train = false, do_predict = true}},
  export = {file = "export_args.yaml", command = "export", force = {do_train = false}},
}
M.KINDS = KINDS

-- the config of a run of `kind` from the page's form, its paths checked
function Board:run_config(body)
  local kind = body.kind or "train"
  local k = KINDS[kind]
  if not k then reject(400, fmt("kind: expected train, predict or export, got '%s'", tostring(kind))) end
  local cfg = M.recipe_of(body.config)
  if kind == "export" then
    if not cfg.export_dir then reject(400, "export: export_dir is required (the folder the merged model goes to)") end
    cfg.export_dir = self:check_path(cfg.export_dir, {"output"}, "export_dir")
    cfg.output_dir = nil
  else
    if not cfg.output_dir then
      local model = basename(tostring(cfg.model_name_or_path or "model")):gsub("%.gguf$", "")
      cfg.output_dir = fmt("%s/%s/%s/%s_%s", self.roots.output[1], model, cfg.finetuning_type or "lora",
        kind == "train" and "train" or "eval", now_stamp())
    end
    cfg.dataset_dir = cfg.dataset_dir or self.dataset_dir
  end
  self:check_config_paths(cfg)
  for key, v in pairs(k.force) do cfg[key] = v end
  -- LlamaBoard's runner: with a validation split, evaluate every save_steps
  if kind == "train" and (tonumber(cfg.val_size) or 0) > 0 and cfg.eval_strategy == nil and cfg.eval_steps == nil then
    cfg.eval_strategy, cfg.eval_steps = "steps", cfg.save_steps or 100
    cfg.per_device_eval_batch_size = cfg.per_device_eval_batch_size or cfg.per_device_train_batch_size
  end
  -- sft predicts by generating; rm scores the pairs (predict_with_generate is sft's only)
  if kind == "predict" and (cfg.stage or "sft") == "sft" then cfg.predict_with_generate = true end
  return cfg, kind
end

-- adapter folders under the output root (earlier runs, also of earlier boards):
-- each folder holding an adapter_config.json, newest run first
function Board:saved_adapters()
  local root = self.roots.output[1]
  local out, seen = {}, {}
  local ok, files = pcall(lfl.fs.walk, root)
  if not ok then return out end
  for _, rel in ipairs(files) do
    local dir = rel:match("^(.*)/adapter_config%.json$")
    if dir and not seen[dir] and not dir:find("%.tmp$") and not dir:find("%.tmp/") then
      seen[dir] = true
      local full = root .. "/" .. dir
      local st = lfl.fs.stat(full)
      out[#out + 1] = {path = full, mtime = st and st.mtime or 0}
    end
  end
  table.sort(out, function(x, y) if x.mtime ~= y.mtime then return x.mtime > y.mtime end return x.path < y.path end)
  local paths = {}
  for i, x in ipairs(out) do paths[i] = x.path end
  return paths
end

-- validates the config, writes the recipe (training_args.yaml) into the run's
-- folder and starts `lfl train|export` on it with stdout and stderr in
-- running_log.txt there
function Board:start_run(body)
  local cfg, kind = self:run_config(body)
  local dir = kind == "export" and cfg.export_dir or cfg.output_dir
  for _, r in ipairs(self.runs) do
    if r.status == "running" and r.output_dir == dir then
      reject(409, fmt("%s: run %d is already writing to %s", kind == "export" and "export_dir" or "output_dir", r.id, dir))
    end
  end
  local a = self:validate(cfg, kind == "train")
  if kind == "predict" then
    local ok, err = pcall(require("lfl.infer.predict").check, a)
    if not ok then reject(400, tostring(err)) end
  end
  lfl.fs.mkdir(dir)
  local yaml = dir .. "/" .. KINDS[kind].file
  lfl.fs.write(yaml, M.to_yaml(cfg))
  local log = dir .. "/running_log.txt"
  lfl.fs.write(log, "")
  local pid = lfl.sys.spawn({self.exe, KINDS[kind].command, yaml}, {stdout = log, stderr = log, cwd = self.cwd,
    env = {LFL_BOARD_RUN = "1"}})
  local r = {id = #self.runs + 1, kind = kind, pid = pid, output_dir = dir, cfg = cfg, status = "running",
    started = os.time(), yaml = yaml, log = log}
  self.runs[#self.runs + 1] = r
  self.log(fmt("run %d (%s): pid %d, %s", r.id, kind, pid, dir))
  return self:run_info(r)
end

function Board:find_run(id)
  local r = self.runs[tonumber(id) or -1]
  if not r then reject(404, fmt("no run %s", tostring(id))) end
  return r
end

-- Stop: SIGINT first (the trainer stops between steps, as Ctrl-C does), then
-- SIGKILL if it still runs 10 s later. Checkpoints are written to a temporary
-- name and renamed, so whatever was saved stays whole either way.
function Board:stop_run(id)
  local r = self:find_run(id)
  if r.status ~= "running" then return self:run_info(r) end
  r.stopping = lfl.sys.clock()
  lfl.sys.kill(r.pid, "INT")
  return self:run_info(r)
end

-- reaps ended runs; escalates a stop that is not honoured
function Board:poll_runs()
  for _, r in ipairs(self.runs) do
    if r.status == "running" then
      local st = lfl.sys.wait(r.pid)
      if st then
        r.code, r.signal, r.ended = st.code, st.signal, os.time()
        if r.stopping then r.status = "stopped"
        elseif st.code == 0 then r.status = "finished"
        else r.status = "failed" end
        r.rss = nil
        self.log(fmt("run %d: %s (%s)", r.id, r.status, st.code and ("exit " .. st.code) or ("signal " .. tostring(st.signal))))
      else
        r.rss = rss_mb(r.pid)
        if r.stopping and lfl.sys.clock() - r.stopping > 10 and not r.killed then
          r.killed = true
          lfl.sys.kill(r.pid, "KILL")
        end
      end
    end
  end
end

-- Server-sent events of one run: "log" (each trainer_log.jsonl record),
-- "out" (new running_log.txt text), "status" (run_info, on change and every
-- second while it runs). The stream ends after the run has ended and its files
-- are drained.
function Board:open_events(req, id)
  local r = self:find_run(id)
  req:start(200, "text/event-stream")
  local s = {req = req, run = r, off_log = 0, off_out = 0, partial = "", last_status = nil, last_sent = 0}
  self.streams[#self.streams + 1] = s
  self:pump(s)
  return "stream"
end

local function sse(event, data) return "event: " .. event .. "\ndata: " .. data .. "\n\n" end

-- sends what is new for one stream; false when the stream is done
function Board:pump(s)
  local r = s.run
  if s.req:gone() then return false end
  local ended = r.status ~= "running"
  local buf = {}
  local chunk = lfl.fs.read_at(r.output_dir .. "/trainer_log.jsonl", s.off_log, 1048576)
  if chunk and #chunk > 0 then
    local text = s.partial .. chunk
    s.off_log = s.off_log + #chunk
    local last = 1
    for line, e in text:gmatch("([^\n]*)\n()") do
      if line ~= "" then buf[#buf + 1] = sse("log", line) end
      last = e
    end
    s.partial = text:sub(last)
  end
  local out = lfl.fs.read_at(r.log, s.off_out, 256 * 1024)
  if out and #out > 0 then
    s.off_out = s.off_out + #out
    buf[#buf + 1] = sse("out", encode({text = out}))
  end
  local info = self:run_info(r)
  local key = r.status .. ":" .. tostring(r.rss and math.floor(r.rss) or "")
  if key ~= s.last_status or lfl.sys.clock() - s.last_sent > 1 then
    buf[#buf + 1] = sse("status", encode(info))
    s.last_status, s.last_sent = key, lfl.sys.clock()
  end
  if #buf > 0 and not s.req:send(concat(buf)) then return false end
  if ended and (not out or #out == 0) and (not chunk or #chunk == 0) then
    s.req:send(sse("end", encode(info)))
    s.req:finish()
    return false
  end
  return true
end

function Board:pump_all()
  local keep = {}
  for _, s in ipairs(self.streams) do
    local ok, more = pcall(self.pump, self, s)
    if ok and more then keep[#keep + 1] = s
    elseif not ok then self.log("events: " .. tostring(more)); pcall(function() s.req:finish() end) end
  end
  self.streams = keep
end

---------------------------------------------------------------- chat

function Board:chat_load(body)
  local o = {}
  o.model = self:model_ref(body.model)
  if body.adapter and body.adapter ~= "" and body.adapter ~= J.null then
    o.adapter = self:check_path(body.adapter, {"output", "model"}, "adapter")
  end
  if body.template and body.template ~= "" and body.template ~= J.null then
    local ok, err = pcall(lfl.template.get, body.template)
    if not ok then reject(400, "template: " .. tostring(err)) end
    o.template = body.template
  end
  return self:chat_start(o)
end

-- loads the chat model from checked options (chat_load's, or lfl webchat's recipe)
function Board:chat_start(o)
  self.chat = nil
  collectgarbage()
  local chat = require("lfl.cmd.chat")
  local ok, model = pcall(chat.load, o)
  if not ok then reject(400, tostring(model)) end
  local ichat = require("lfl.infer.chat")
  local tok = ichat.tokenizer(model)
  local tname = o.template or chat.default_template(model, function() end)
  local tpl = ichat.template(model, tok, tname)
  self.chat = require("lfl.infer.serve").new({model = model, tokenizer = tok, template = tpl, port = false,
    max_new_tokens = 512, max_batch = 4})
  self.chat_info = {model = o.model, adapter = o.adapter or J.null, template = tname or "chat_template of the tokenizer"}
  return {loaded = true, model = self.chat_info.model, adapter = self.chat_info.adapter,
    template = self.chat_info.template}
end

-- a streamed reply: the OpenAI chunks of lfl.infer.serve, decoded a step per loop turn
function Board:chat_stream(req, body)
  if not self.chat then reject(409, "chat: load a model first") end
  if type(body.messages) ~= "table" or #body.messages == 0 then reject(400, "chat: messages must be a non-empty list") end
  local msgs = {}
  if type(body.system) == "string" and body.system ~= "" then msgs[1] = {role = "system", content = body.system} end
  for _, m in ipairs(body.messages) do msgs[#msgs + 1] = m end
  local o = {messages = msgs, stream = true}
  for _, k in ipairs({"temperature", "top_p", "top_k", "repetition_penalty", "seed"}) do
    if body[k] ~= nil and body[k] ~= J.null then o[k] = body[k] end
  end
  if body.max_new_tokens ~= nil and body.max_new_tokens ~= J.null then o.max_tokens = body.max_new_tokens end
  local text = encode(o)
  local proxy = setmetatable({}, {__index = function(_, k)
    if k == "info" then
      return function() return {method = "POST", path = "/v1/chat/completions", body = text} end
    end
    return function(_, ...) return req[k](req, ...) end
  end})
  self.chat:admit(proxy)
  return "stream"
end

---------------------------------------------------------------- saved configurations

local function config_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w_%-%.]*$") or name:find("..", 1, true) then
    reject(400, fmt("config name '%s': use letters, digits, '-', '_' and '.'", tostring(name)))
  end
  return name
end

function Board:config_save(body)
  local name = config_name(body.name)
  local format = body.format or "yaml"
  local cfg = M.recipe_of(body.config or {})
  lfl.fs.mkdir(self.config_dir)
  local path
  if format == "yaml" then
    path = self.config_dir .. "/" .. name .. ".yaml"
    lfl.fs.write(path, M.to_yaml(cfg))
  elseif format == "lua" then
    path = self.config_dir .. "/" .. name .. ".lua"
    lfl.fs.write(path, M.to_lua(cfg, "lfl board configuration " .. name))
  else
    reject(400, "format: expected yaml or lua")
  end
  return {path = path}
end

function Board:config_list()
  local out = {}
  if lfl.fs.isdir(self.config_dir) then
    for _, f in ipairs(lfl.fs.list(self.config_dir)) do
      if f:match("%.ya?ml$") or f:match("%.lua$") then out[#out + 1] = f end
    end
  end
  return {config_dir = self.config_dir, configs = out}
end

-- a saved configuration (or a YAML / Lua recipe inside the roots) as recipe keys
function Board:config_load(body)
  local path
  if body.path then path = self:check_path(body.path, {"output", "data", "config"}, "path")
  else
    local name = config_name(body.name)
    path = self.config_dir .. "/" .. name
  end
  if not (path:match("%.ya?ml$") or path:match("%.lua$")) then reject(400, "path: a .yaml, .yml or .lua recipe") end
  if not lfl.fs.exists(path) then reject(404, fmt("no configuration %s", path)) end
  local ok, cfg = pcall(lfl.args.load_recipe, path)
  if not ok then reject(400, tostring(cfg)) end
  for k, v in pairs(cfg) do
    if type(v) == "function" or type(v) == "userdata" then cfg[k] = nil end
  end
  if cfg.bf16 then cfg.compute_type, cfg.bf16 = "bf16", nil
  elseif cfg.fp16 then cfg.compute_type, cfg.fp16 = "fp16", nil
  elseif cfg.pure_bf16 then cfg.compute_type, cfg.pure_bf16 = "pure_bf16", nil end
  return {path = path, config = cfg}
end

-- what the page's "preview command" shows: the recipe in both forms and the command
function Board:command(body)
  local cfg, kind = self:run_config(body)
  local a = self:validate(cfg, kind == "train")
  if kind == "predict" then
    local ok, err = pcall(require("lfl.infer.predict").check, a)
    if not ok then reject(400, tostring(err)) end
  end
  local dir = kind == "export" and cfg.export_dir or cfg.output_dir
  return {yaml = M.to_yaml(cfg), lua = M.to_lua(cfg), command = fmt("lfl %s %s/%s", KINDS[kind].command, dir,
    KINDS[kind].file)}
end

---------------------------------------------------------------- HTTP

local TYPES = {html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8",
  css = "text/css; charset=utf-8", json = "application/json", svg = "image/svg+xml", png = "image/png"}

function Board:static(req, path)
  local rel = path == "/" and "index.html" or path:match("^/static/([%w_%-]+%.[%w]+)$")
  local dir = self.www
  if not rel then
    rel = path:match("^/locales/([%w_%-]+%.json)$")
    dir = self.locales
  end
  if not rel then return false end
  local text = lfl.fs.read(dir .. "/" .. rel)
  if not text then return false end
  req:respond(200, TYPES[rel:match("%.(%w+)$")] or "application/octet-stream", text)
  return true
end

local function body_of(info)
  if info.method ~= "POST" then return {} end
  if not info.body or info.body == "" then return {} end
  local ok, b = pcall(J.decode, info.body, "request body")
  if not ok or type(b) ~= "table" then reject(400, "the request body must be a JSON object") end
  return b
end

-- constant-time comparison of the Authorization header with the token
local function token_ok(auth, token)
  local want = "Bearer " .. token
  auth = auth or ""
  local diff = #auth == #want and 0 or 1
  for i = 1, #want do
    if auth:byte(i) ~= want:byte(i) then diff = 1 end
  end
  return diff == 0
end

-- the API (the page's and the tests'); POST bodies are JSON objects
M.ROUTES = {
  {"GET", "^/api/meta$", function(self) return self:meta() end},
  {"POST", "^/api/datasets$", function(self, b) return self:datasets(b.dataset_dir) end},
  {"POST", "^/api/datasets/preview$", function(self, b) return self:preview(b) end},
  {"POST", "^/api/validate$", function(self, b)
    self:command(b)
    return {ok = true}
  end},
  {"POST", "^/api/command$", function(self, b) return self:command(b) end},
  {"GET", "^/api/configs$", function(self) return self:config_list() end},
  {"POST", "^/api/configs/save$", function(self, b) return self:config_save(b) end},
  {"POST", "^/api/configs/load$", function(self, b) return self:config_load(b) end},
  {"GET", "^/api/runs$", function(self)
    local out = {}
    for i = #self.runs, 1, -1 do out[#out + 1] = self:run_info(self.runs[i]) end
    return {runs = out}
  end},
  {"GET", "^/api/adapters$", function(self) return {adapters = self:saved_adapters()} end},
  {"POST", "^/api/runs/start$", function(self, b) return self:start_run(b) end},
  {"POST", "^/api/runs/(%d+)/stop$", function(self, b, id) return self:stop_run(id) end},
  {"GET", "^/api/runs/(%d+)/events$", function(self, b, id, req) return self:open_events(req, id) end},
  {"POST", "^/api/chat/load$", function(self, b) return self:chat_load(b) end},
  {"POST", "^/api/chat/unload$", function(self)
    self.chat, self.chat_info = nil, nil
    collectgarbage()
    return {loaded = false}
  end},
  {"GET", "^/api/chat$", function(self)
    return self.chat_info and {loaded = true, model = self.chat_info.model, adapter = self.chat_info.adapter,
      template = self.chat_info.template} or {loaded = false}
  end},
  {"POST", "^/api/chat/stream$", function(self, b, _, req) return self:chat_stream(req, b) end},
}

function Board:route(req, info)
  local path = info.path:gsub("%?.*$", "")
  if not path:match("^/api/") then
    if info.method == "GET" and self:static(req, path) then return end
    reject(404, fmt("no page %s", path))
  end
  if self.token and not token_ok(info.authorization, self.token) then
    reject(401, "this board needs its access token (Authorization: Bearer TOKEN)")
  end
  -- lfl webchat: the chat of the model it was started with, nothing else
  if self.chat_only and not (path == "/api/meta" or path == "/api/chat" or path == "/api/chat/stream") then
    reject(403, fmt("%s: lfl webchat serves only the chat of its model; training, evaluation, export and other "
      .. "models are lfl board's", path))
  end
  local known = false
  for _, rt in ipairs(M.ROUTES) do
    local caps = {path:match(rt[2])}
    if #caps > 0 then
      known = true
      if info.method == rt[1] then
        local b = body_of(info)
        local cap = caps[1] ~= path and caps[1] or nil
        local res = rt[3](self, b, cap, req)
        if res ~= "stream" then req:respond(200, "application/json", encode(res)) end
        return
      end
    end
  end
  if known then reject(405, fmt("%s is not allowed on %s", info.method, path)) end
  reject(404, fmt("no API route %s", path))
end

function Board:admit(req)
  local info = req:info()
  local ok, err = pcall(self.route, self, req, info)
  if not ok and tostring(err):find("^interrupted") then error(err, 0) end
  if not ok then
    local status, msg = 500, tostring(err)
    if getmetatable(err) == Reject then status, msg = err.status, err.message end
    if status == 500 then self.log(fmt("%s %s -> 500: %s", info.method, info.path, msg)) end
    pcall(function() req:respond(status, "application/json", encode({error = msg})) end)
  end
end

-- one turn of the loop: requests waiting (a bounded number, so the decode and
-- the run streams keep their turn), one decode step of the chat, the runs
function Board:step(timeout)
  local busy = self.chat and self.chat.batch:size() > 0
  local req = self.http:next(busy and 0 or timeout or 0.05)
  local n = 0
  while req do
    self:admit(req)
    n = n + 1
    if n >= 8 then break end
    req = self.http:next(0)
  end
  if self.chat and self.chat.batch:size() > 0 then
    local ok, err = pcall(self.chat.tick, self.chat)
    if not ok then
      if tostring(err):find("interrupted", 1, true) then error(err, 0) end
      self.log("chat: " .. tostring(err))
    end
  end
  local now = lfl.sys.clock()
  if now - self.last_poll >= 0.25 then
    self.last_poll = now
    self:poll_runs()
    self:pump_all()
  end
end

function Board:run(until_fn)
  self.running = true
  while self.running do
    self:step(0.05)
    if until_fn and until_fn() then break end
  end
end

function Board:port() return self.http:port() end

-- stops the server; runs still going are stopped too (their checkpoints stay)
function Board:stop()
  self.running = false
  for _, r in ipairs(self.runs) do
    if r.status == "running" then
      lfl.sys.kill(r.pid, "INT")
      local t0 = lfl.sys.clock()
      while not lfl.sys.wait(r.pid) do
        if lfl.sys.clock() - t0 > 5 then lfl.sys.kill(r.pid, "KILL"); lfl.sys.wait(r.pid, true); break end
        local x = lfl.sys.clock() while lfl.sys.clock() - x < 0.05 do end
      end
      r.status = "stopped"
    end
  end
  for _, s in ipairs(self.streams) do pcall(function() s.req:finish() end) end
  self.streams = {}
  if self.http then self.http:stop() end
end

-- the folder this module's data files sit in
local function data_dir()
  local p = package.searchpath("lfl.board", package.path)
  if not p then error("lfl board: cannot find stdlib/lfl/board on package.path", 0) end
  return (p:gsub("/init%.lua$", ""))
end

-- opts: host, port (false: no socket), token, dataset_dir, output_dir (the output root), model_dirs
-- (list), config_dir, allowed_hosts, exe (the lfl to run), log (function(line))
function M.new(opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  local token = opts.token
  if token == "" then token = nil end
  if not LOOPBACK[host] and not token then
    error(fmt("lfl board: refusing to listen on %s without an access token: give --token TOKEN (or set "
      .. "LFL_BOARD_TOKEN); only 127.0.0.1 / localhost may go without one", host), 0)
  end
  if token and #token < 8 then error("lfl board: the access token must be at least 8 characters", 0) end
  local b = setmetatable({}, Board)
  b.token = token
  b.chat_only = opts.chat_only -- lfl webchat
  b.log = opts.log or function() end
  b.cwd = lfl.fs.realpath(".")
  local function root(p, label, make)
    if make then lfl.fs.mkdir(p) end
    local r = lfl.fs.realpath(p)
    if not r then error(fmt("lfl board: %s '%s' does not exist", label, p), 0) end
    return r
  end
  b.dataset_dir = root(opts.dataset_dir or (lfl.home .. "/recipes/data"), "--dataset-dir")
  -- lfl webchat writes nothing: no output or config folder is made for it
  local out = opts.chat_only and not opts.output_dir and b.cwd or root(opts.output_dir or "saves", "--output-dir", true)
  local models = {}
  for _, m in ipairs(opts.model_dirs or {}) do
    if lfl.fs.isdir(m) then models[#models + 1] = root(m, "--model-dir") end
  end
  b.config_dir = opts.config_dir or (out .. "/llamaboard_config")
  b.roots = {data = {b.dataset_dir}, output = {out}, model = models,
             config = opts.chat_only and {} or {root(b.config_dir, "config dir", true)}}
  b.host = host
  b.exe = opts.exe or lfl.sys.exe()
  local dir = data_dir()
  b.www, b.locales = dir .. "/www", dir .. "/locales"
  b.families = require("lfl.model.registry").families()
  b.hub_ids = {}
  for _, f in ipairs(b.families) do for _, c in ipairs(f.checkpoints) do b.hub_ids[c.hub:lower()] = true end end
  b.runs, b.streams, b.last_poll = {}, {}, 0
  if opts.port ~= false then -- port = false: no socket (tests hand requests to board:admit)
    b.http = lfl.http.server{host = host, port = opts.port or 7860, max_queue = 64, max_body = 4 * 1048576,
      allowed_hosts = opts.allowed_hosts, log_refused = opts.log ~= nil}
  end
  return b
end

return M
