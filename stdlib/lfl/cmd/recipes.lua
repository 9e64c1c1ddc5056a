-- `lfl recipes [KIND] [--json]`: what lfl.recipes finds, kind by kind
-- (templates, models, datasets, approaches): each name, where its file comes
-- from (LFL_PATH, user = ~/.lfl/recipes, bundled) and which file it hides.
local fmt, concat = string.format, table.concat

local M = {help = "list the templates, model families, datasets and approaches found, and from where"}

M.usage = [[
usage: lfl recipes [KIND] [--json]
  KIND: templates, models, datasets or approaches (default: all four)
  --json   machine-readable output
Recipes are recipes/<kind>/<name>.lua files, searched in each LFL_PATH entry
(';'-separated), then ~/.lfl/recipes/, then the bundled recipes/; the first
file of a name wins and hides the others (shown as "overrides"). The current
directory is never searched.]]

local function print_kind(R, kind)
  local dirs, sources = R.dirs(kind)
  print(kind .. ":")
  for i, d in ipairs(dirs) do print(fmt("  searched %-8s %s", sources[i], d)) end
  local list = R.list(kind)
  local w = 0
  for _, e in ipairs(list) do w = math.max(w, #e.name) end
  for _, e in ipairs(list) do
    print(fmt("  %-" .. w .. "s  %-8s %s%s", e.name, e.source, e.path,
      e.overrides and ("  (overrides " .. e.overrides .. ")") or ""))
  end
  if #list == 0 then print("  (none)") end
  return #list
end

function M.run(args)
  local o, pos = {}, {}
  for _, a in ipairs(args) do
    if a == "--json" then o.json = true
    elseif a == "--help" or a == "-h" then o.help = true
    elseif a:match("^%-") then error(fmt("lfl recipes: unknown option %s\n%s", a, M.usage), 0)
    else pos[#pos + 1] = a end
  end
  if o.help then print(M.usage) return 0 end
  if #pos > 1 then error("lfl recipes: give at most one kind\n" .. M.usage, 0) end
  local R = require("lfl.recipes")
  local kinds = R.KINDS
  if pos[1] then
    local known = false
    for _, k in ipairs(R.KINDS) do known = known or k == pos[1] end
    if not known then
      io.stderr:write(fmt("lfl recipes: '%s' is not a recipe kind (kinds: %s)\n", pos[1], concat(R.KINDS, ", ")))
      return 2
    end
    kinds = {pos[1]}
  end
  if o.json then
    local out = {}
    for _, k in ipairs(kinds) do
      local list = {}
      for i, e in ipairs(R.list(k)) do
        list[i] = {name = e.name, path = e.path, source = e.source, overrides = e.overrides or lfl.json.null}
      end
      out[k] = {dirs = (R.dirs(k)), recipes = list}
    end
    print(lfl.json.encode(out, {indent = true}))
    return 0
  end
  for i, k in ipairs(kinds) do
    if i > 1 then print("") end
    print_kind(R, k)
  end
  return 0
end

return M
