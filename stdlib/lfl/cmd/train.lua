-- lfl train <recipe.lua|recipe.yaml> [key=value ...]: runs a training recipe
-- (LlamaFactory YAML files run unchanged).
local lfl = lfl
local M = {help = "fine-tune a model from a recipe (.lua or LlamaFactory .yaml) with key=value overrides",
           usage = "lfl train <recipe.lua|recipe.yaml> [key=value ...]"}

function M.run(args)
  local path = args[1]
  if not path then error("usage: " .. M.usage, 0) end
  local overrides = {}
  for i = 2, #args do overrides[#overrides + 1] = args[i] end
  local recipe = lfl.args.load_recipe(path)
  return M.run_table(recipe, overrides, path)
end

function M.run_table(recipe, overrides, source)
  local a = lfl.args.resolve(recipe, overrides, source)
  return require("lfl.trainer").run(a)
end

return M
