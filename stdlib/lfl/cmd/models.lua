-- `lfl models [FAMILY | PATH | HUB_ID] [--json]`: the model registry
-- (recipes/models/*.lua): families with their architecture, default chat
-- template, what lora_target "all" covers and their checkpoints; one family
-- in full; or which family a model folder / hub id belongs to.
local fmt, concat = string.format, table.concat

local M = {help = "list the model families, checkpoints and default templates (recipes/models/)"}

M.usage = [[
usage: lfl models                 every family and its checkpoints
       lfl models FAMILY          one family (e.g. qwen2)
       lfl models PATH|HUB_ID     the family, checkpoint and template of a model
  --json                          machine-readable output
Families are recipes/models/<name>.lua files; add one by dropping a file in
recipes/models/ or ~/.lfl/recipes/models/ (no rebuild).]]

local function family_json(f)
  local cks = {}
  for i, c in ipairs(f.checkpoints) do cks[i] = {name = c.name, hub = c.hub, size = c.size, template = c.template} end
  return {family = f.family, title = f.title, model_type = f.model_type, template = f.template,
          lf_template = f.lf_template, lora_target = f.lora_target, checkpoints = cks, source = f.source,
          no_checkpoints = f.no_checkpoints}
end

local function print_family(f)
  print(fmt("%s  (%s)", f.family, f.title))
  print(fmt("  model_type %s, template %s%s", f.model_type, f.template,
    f.lf_template and fmt(" (stand-in: LlamaFactory's %s is not bundled)", f.lf_template) or ""))
  print("  lora_target all = " .. concat(f.lora_target, ","))
  if f.no_checkpoints then print("    no checkpoints: " .. f.no_checkpoints) end
  local w = 0
  for _, c in ipairs(f.checkpoints) do w = math.max(w, #c.name) end
  for _, c in ipairs(f.checkpoints) do
    print(fmt("    %-" .. w .. "s  %-45s %6s%s", c.name, c.hub, c.size or "",
      c.template ~= f.template and ("  template " .. c.template) or ""))
  end
end

function M.run(args)
  local o, pos = {}, {}
  for _, a in ipairs(args) do
    if a == "--json" then o.json = true
    elseif a == "--help" or a == "-h" then o.help = true
    elseif a:match("^%-%-") then error(fmt("lfl models: unknown option %s\n%s", a, M.usage), 0)
    else pos[#pos + 1] = a end
  end
  if o.help then print(M.usage) return 0 end
  if #pos > 1 then error("lfl models: give at most one family, path or hub id\n" .. M.usage, 0) end
  local reg = require("lfl.model.registry")
  if pos[1] then
    local f, ck, how = reg.lookup(pos[1])
    if not f then
      local names = {}
      for _, x in ipairs(reg.families()) do names[#names + 1] = x.family end
      io.stderr:write(fmt("lfl models: '%s' is not a family, a registered checkpoint or a model folder of a known "
        .. "model_type (families: %s)\n", pos[1], concat(names, ", ")))
      return 1
    end
    if o.json then
      print(lfl.json.encode({family = family_json(f), checkpoint = ck and ck.name or lfl.json.null, how = how,
        template = ck and ck.template or f.template}, {indent = true}))
      return 0
    end
    if how ~= "family" then
      print(fmt("%s: family %s%s (matched by %s), default template %s", pos[1], f.family,
        ck and (", checkpoint " .. ck.name) or "", how == "checkpoint" and "the checkpoint list" or "config.json model_type",
        ck and ck.template or f.template))
    end
    print_family(f)
    return 0
  end
  local fams = reg.families()
  if o.json then
    local out = {}
    for i, f in ipairs(fams) do out[i] = family_json(f) end
    print(lfl.json.encode(out, {indent = true}))
    return 0
  end
  local n = 0
  for i, f in ipairs(fams) do
    if i > 1 then print("") end
    print_family(f)
    n = n + #f.checkpoints
  end
  print(fmt("\n%d families, %d checkpoints (recipes/models/; `lfl models PATH|HUB_ID` tells which family a model is)",
    #fams, n))
  return 0
end

return M
