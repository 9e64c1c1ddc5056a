-- lfl train <recipe.lua|recipe.yaml> [key=value ...]: runs a training recipe
-- (LlamaFactory YAML files run unchanged), then prediction when do_predict
-- (lfl.predict: generated_predictions.jsonl, BLEU-4 / ROUGE; for stage rm the
-- pairs' reward scores). do_train=false do_predict=true predicts only, with the
-- model (+ adapter_name_or_path).
local lfl = lfl
local M = {help = "fine-tune a model from a recipe (.lua or LlamaFactory .yaml) with key=value overrides",
           usage = "lfl train <recipe.lua|recipe.yaml> [key=value ...]  |  lfl train --key value ... (LlamaFactory's flags)"}

function M.run(args)
  local path = args[1]
  if not path then error("usage: " .. M.usage, 0) end
  -- llamafactory-cli train --stage sft --model_name_or_path ... (flags, no recipe file)
  if path:match("^%-%-[%a_]") then return M.run_table({}, lfl.args.from_flags(args), "command line") end
  local overrides = {}
  for i = 2, #args do overrides[#overrides + 1] = args[i] end
  local recipe = lfl.args.load_recipe(path)
  return M.run_table(recipe, overrides, path)
end

-- the value a key gets from the recipe and the key=value overrides (the last wins)
local function given(recipe, overrides, key)
  local v = recipe and recipe[key]
  for _, kv in ipairs(overrides or {}) do
    local k, s = kv:match("^([%w_]+)=(.*)$")
    if k == key then v = lfl.args.parse_value(s) end
  end
  return v
end

function M.run_table(recipe, overrides, source)
  overrides = overrides or {}
  -- a prediction recipe without do_train and without a training dataset (as
  -- LlamaFactory's *_predict.yaml, where do_train defaults to false) predicts only
  if given(recipe, overrides, "do_train") == nil and given(recipe, overrides, "do_predict")
     and given(recipe, overrides, "dataset") == nil then
    local o = {"do_train=false"}
    for _, kv in ipairs(overrides) do o[#o + 1] = kv end
    overrides = o
  end
  -- every argument, the template and the datasets are checked before a model loads
  local a = lfl.args.resolve(recipe, overrides, source)
  lfl.args.preflight(a)
  if a.do_predict then require("lfl.infer.predict").check(a) end
  local result
  if a.do_train then result = require("lfl.train.trainer").run(a) end
  if a.do_predict then
    local loaded = result and {model = result.model, tokenizer = result.tokenizer, template = result.template,
      value_head = result.state and result.state.value_head}
    local p = require("lfl.infer.predict").run(a, loaded)
    result = result or {}
    result.predict = p
    result.metrics = result.metrics or {}
    for k, v in pairs(p.metrics) do result.metrics[k] = v end
  end
  if not a.do_train and not a.do_predict then
    print("[lfl] nothing to do: do_train and do_predict are both false")
  end
  return result
end

return M
