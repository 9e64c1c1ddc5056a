-- Each efficient method trains the tiny llama (tests/golden/models/llama) for 20
-- steps on one fixed random batch through trainer.setup_method / make_optimizer,
-- as a recipe selects them, and the loss must fall.
local t = lfl.test
local args = require("lfl.train.args")
local trainer = require("lfl.train.trainer")
local optim = lfl.optim
local model_dir = lfl.home .. "/tests/golden/models/llama"

local function batch()
  math.randomseed(11)
  local ids = {}
  for b = 1, 4 do ids[b] = {}; for i = 1, 16 do ids[b][i] = math.random(3, 63) end end
  local x = lfl.tensor(ids, "i64")
  return x, x
end

-- trains 20 steps; returns the first and last losses and the optimizer
local function train(recipe)
  recipe.model_name_or_path, recipe.do_train = model_dir, false
  recipe.learning_rate = recipe.learning_rate or 1e-2
  local a = args.resolve(recipe)
  lfl.manual_seed(0)
  -- pure_bf16 (LlamaFactory's GaLore recipe): bf16 weights trained in bf16
  local model = lfl.model.load(model_dir, {dtype = recipe.pure_bf16 and "bf16" or nil})
  local names, params, groups = trainer.setup_method(model, a)
  local opt = trainer.make_optimizer(groups, a, model)
  local ids, labels = batch()
  local first, last
  for _ = 1, 20 do
    local loss = model:loss(ids, labels)
    local v = loss:item()
    first = first or v
    last = v
    loss:backward()
    if opt.before_clip then opt:before_clip() end
    optim.clip_grad_norm(params, 1.0)
    opt:step()
    opt:zero_grad()
  end
  return first, last, opt, model
end

local function falls(recipe, factor, label)
  local first, last, opt, model = train(recipe)
  t.assert(last < first * factor, string.format("%s: loss %.4f -> %.4f", label, first, last))
  if os.getenv("LFL_VERBOSE") then print(string.format("%s: loss %.4f -> %.4f", label, first, last)) end
  return opt, model
end

t.suite("methods_train", {
  galore = function()
    local opt = falls({finetuning_type = "full", use_galore = true, galore_rank = 4, galore_update_interval = 5,
      galore_scale = 1.0}, 0.9, "galore")
    t.assert_eq(opt.kind, "galore_adamw")
    local projected = 0
    for _, st in pairs(opt.state) do if st.refreshes then projected = projected + 1; t.assert_eq(st.refreshes, 4) end end
    t.assert_eq(projected, 14, "all 7 linears of both layers are projected")
  end,

  -- the optimizers step bf16 parameters through an f32 copy; they stay bf16
  galore_pure_bf16 = function()
    local opt, model = falls({finetuning_type = "full", use_galore = true, galore_rank = 4, galore_update_interval = 5,
      galore_scale = 1.0, pure_bf16 = true}, 0.9, "galore pure_bf16")
    t.assert_eq(opt.kind, "galore_adamw")
    t.assert_eq(model.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "bf16")
  end,

  badam_ratio_pure_bf16 = function()
    local opt, model = falls({finetuning_type = "full", use_badam = true, badam_mode = "ratio", badam_update_ratio = 0.3,
      learning_rate = 3e-2, pure_bf16 = true}, 0.98, "badam ratio pure_bf16")
    t.assert_eq(opt.kind, "badam_ratio")
    t.assert_eq(model.params["model.layers.0.mlp.up_proj.weight"]:dtype(), "bf16")
  end,

  badam_layer = function()
    local opt = falls({finetuning_type = "full", use_badam = true, badam_switch_interval = 5,
      badam_switch_mode = "descending"}, 0.95, "badam layer")
    t.assert_eq(opt.kind, "badam_layer")
    t.assert_eq(#opt.history, 5, "switched after steps 4, 9, 14, 19")
  end,

  badam_ratio = function()
    local opt = falls({finetuning_type = "full", use_badam = true, badam_mode = "ratio", badam_update_ratio = 0.3,
      learning_rate = 3e-2}, 0.98, "badam ratio")
    t.assert_eq(opt.kind, "badam_ratio")
  end,

  pissa = function()
    local _, model = falls({finetuning_type = "lora", pissa_init = true, pissa_iter = 4, lora_rank = 4}, 0.9, "pissa")
    t.assert(model.lora.pissa ~= nil)
  end,

  adamw_8bit = function()
    for _, name in ipairs({"adamw_8bit", "adamw_bnb_8bit"}) do
      local opt = falls({finetuning_type = "full", optim = name}, 0.9, name)
      t.assert_eq(opt.kind, "adamw_8bit")
    end
  end,
})

t.run()
