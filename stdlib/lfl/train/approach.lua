-- Training approaches: recipes/approaches/<stage>.lua found by lfl.recipes
-- (LFL_PATH entries, ~/.lfl/recipes/approaches/, bundled), one module per
-- `stage`. The valid stages are the approach modules found. A module declares
--   name     = the stage (defaults to the file name)
--   kind     = the data kind its rows are made from: "supervised", "pretrain",
--              "pairwise", "kto" or "unsupervised"
--   prepare(examples, ctx) -> rows, dropped   (ctx = {tokenizer, template, args})
--   collate(rows) -> batch                     (input_ids, labels, ... tensors)
--   c_collate(ds, args) -> kind[, opts]        optional: the C collator (lfl.Dataset's
--              ds:collate kinds "pack", "stack_packed", "pairwise", "kto") that
--              makes the same batches from a Dataset without Lua row tables
--   loss(model, batch, state) -> loss[, metrics]
--   metrics  = nil or function(batch, outputs) -> {name = value} for evaluation
--              (the loss's second result, {name = number}, is logged in
--              training, averaged over the logging window, and in evaluation
--              with the prefix eval_)
--   needs    = {reference_model =, reward_model =, value_head =, generation =}
--              (booleans, or functions of the recipe arguments returning one;
--              the trainer refuses what it cannot provide yet). The trainer
--              puts what it provides on the Trainer: t.reference ({kind =
--              "adapter_off" | "model" | "frozen", model =}), t.value_head
--              ({weight, bias, names, params}), t.reward_model ({kind = "lora" |
--              "full", head, adapter | model}, lfl.train.ppo.setup_reward)
-- optional:
--   check_args(args)   validates (and completes) the arguments the approach reads,
--                      when the recipe is resolved
--   preflight(args)    checks the files the arguments name when training
--                      starts, before the model loads
--   setup(trainer)     once the model, method and data are set up
--   micro_batches_per_step(args) -> n   the micro-batches of rows one step takes
--                      (default gradient_accumulation_steps)
--   train_step(trainer, rows, lr_factor) -> loss, metrics, ntokens, grad_norm
--                      the approach makes the step's optimizer updates itself
--                      from all its rows (PPO: rollouts, then ppo_epochs passes);
--                      the trainer still owns the schedule, logging and saving
--   plot     = the log keys plot_loss draws (default {"loss", "eval_loss"})
local fmt, concat = string.format, table.concat

local M = {}

M.KINDS = {"supervised", "pretrain", "pairwise", "kto", "unsupervised"}
M.NEEDS = {"reference_model", "reward_model", "value_head", "generation"}
-- what the trainer provides today
M.PROVIDED = {reference_model = true, reward_model = true, value_head = true, generation = true}
-- LlamaFactory's stages that have no bundled approach yet (none since ppo)
M.LLAMAFACTORY = {}

local function set(list) local t = {} for _, k in ipairs(list) do t[k] = true end return t end
local KIND, NEED = set(M.KINDS), set(M.NEEDS)

-- the stages found (the approach modules' names), sorted
function M.stages() return require("lfl.recipes").names("approaches") end

-- check_stage(stage) -> true, or nil and a message saying what is valid
function M.check_stage(stage)
  local R = require("lfl.recipes")
  if R.valid_name(stage) and R.find("approaches", stage) then return true end
  local found = concat(M.stages(), ", ")
  if set(M.LLAMAFACTORY)[stage] then
    return nil, fmt("stage '%s' is a LlamaFactory stage lfl does not implement yet (stages found: %s; an " ..
      "approach module recipes/approaches/%s.lua, e.g. in ~/.lfl/recipes/approaches/, would add it)", stage, found, stage)
  end
  return nil, fmt("stage '%s' (stages found: %s; add ~/.lfl/recipes/approaches/<stage>.lua for a new one)",
    tostring(stage), found)
end

-- checks a module's declarations; returns it
function M.validate(ap, stage, path)
  local function bad(key, msg) error(fmt("%s: %s: %s", path, key, msg), 0) end
  if type(ap) ~= "table" then error(fmt("%s: an approach module must return a table", path), 0) end
  if not KIND[ap.kind] then
    bad("kind", fmt("expected the data kind (%s), got %s", concat(M.KINDS, ", "), tostring(ap.kind)))
  end
  for _, k in ipairs({"prepare", "collate", "loss"}) do
    if type(ap[k]) ~= "function" then bad(k, "expected a function") end
  end
  if ap.metrics ~= nil and type(ap.metrics) ~= "function" then bad("metrics", "expected a function or nil") end
  if ap.c_collate ~= nil and type(ap.c_collate) ~= "function" then bad("c_collate", "expected a function or nil") end
  if type(ap.needs) ~= "table" then bad("needs", "expected {reference_model =, reward_model =, value_head =, generation =}") end
  for k, v in pairs(ap.needs) do
    if not NEED[k] then bad("needs." .. tostring(k), "unknown need (known: " .. concat(M.NEEDS, ", ") .. ")") end
    if type(v) ~= "boolean" and type(v) ~= "function" then
      bad("needs." .. k, "expected true, false or a function of the arguments")
    end
  end
  for _, k in ipairs({"check_args", "preflight", "setup", "micro_batches_per_step", "train_step"}) do
    if ap[k] ~= nil and type(ap[k]) ~= "function" then bad(k, "expected a function or nil") end
  end
  if ap.plot ~= nil then
    if type(ap.plot) ~= "table" then bad("plot", "expected a list of log keys") end
    for i, k in ipairs(ap.plot) do
      if type(k) ~= "string" then bad(fmt("plot[%d]", i), "expected a log key (string)") end
    end
  end
  if ap.name ~= nil and ap.name ~= stage then
    bad("name", fmt("'%s' differs from the file name '%s'", tostring(ap.name), stage))
  end
  return ap
end

-- load(stage) -> the checked approach module, its path
function M.load(stage)
  local ok, msg = M.check_stage(stage)
  if not ok then error("arguments: " .. msg, 0) end
  local ap, path = require("lfl.recipes").load("approaches", stage)
  return M.validate(ap, stage, path), path
end

-- needs(ap, key, args) -> whether the approach needs `key` with these arguments
function M.needs(ap, key, args)
  local v = ap.needs[key]
  if type(v) == "function" then return v(args or {}) == true end
  return v == true
end

-- for_training(stage[, args]) -> the module, after refusing needs the trainer cannot meet
function M.for_training(stage, args)
  local ap, path = M.load(stage)
  for _, k in ipairs(M.NEEDS) do
    if M.needs(ap, k, args) and not M.PROVIDED[k] then
      error(fmt("%s: approach '%s' needs %s, which the trainer does not provide yet", path, stage,
        (k:gsub("_", " "))), 0)
    end
  end
  return ap, path
end

return M
