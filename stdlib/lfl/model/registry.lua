-- The model registry: one recipe per family in recipes/models/<name>.lua
-- (LlamaFactory's register_model_group), each returning
--   {family =, title =, model_type =, template =, lora_target = {...},
--    checkpoints = {{name =, hub =, size = [, template =]}, ...}}
-- A family whose file defines an architecture also holds an `arch` table (the
-- decoder traits and special cases, GGUF names, weight conversion) for the
-- config.json model_type it names; see README "Extending lfl". Files are found
-- by lfl.recipes: each LFL_PATH entry's recipes/models/, then
-- ~/.lfl/recipes/models/, then the bundled recipes/models/; a file hides the
-- later ones of the same name, so dropping one in ~/.lfl/recipes/models/
-- needs no rebuild.
--
--   local R = require "lfl.model.registry"
--   R.families()                          -- every family, sorted by name
--   R.lookup("Qwen/Qwen2.5-0.5B-Instruct") -- family, checkpoint, how
--   R.default_template(model_or_path)     -- "qwen", info
--   R.lora_targets(model_or_path)         -- {"q_proj", ...} or nil
--   R.arch("llama")                       -- the architecture a model_type loads with
--   R.model_types()                       -- every model_type some family defines
local lfl = lfl
local fmt, concat, lower = string.format, table.concat, string.lower

local M = {}
local normalize_arch

local recipes = require("lfl.recipes")

-- folders searched, first winning (lfl.recipes.dirs("models"))
function M.dirs() return (recipes.dirs("models")) end

local read_file = lfl.read_file

local function template_exists(name)
  local ok = pcall(require("lfl.text.template").get, name)
  return ok
end

local function list_of_names(v, where)
  if type(v) == "string" then
    local t = {}
    for n in v:gmatch("[^,%s]+") do t[#t + 1] = n end
    v = t
  end
  if type(v) ~= "table" or #v == 0 then error(fmt("%s: expected a non-empty list of names", where), 0) end
  local out = {}
  for i, n in ipairs(v) do
    if type(n) ~= "string" or not n:match("^[%w_%.]+$") then
      error(fmt("%s[%d]: expected a layer name (letters, digits, _), got %s", where, i, tostring(n)), 0)
    end
    out[i] = n
  end
  return out
end

local ARCH_KEYS = {model_type = "string", traits = "table", resolve = "function", window = "function",
                   gguf = "table", to_decoder = "function", from_decoder = "function", peft_module = "function"}
local GGUF_KEYS = {arch = "string", hf_class = "string", permuted = "boolean", names = "table",
                   config = "function", norm_offset = "number", tensors = "function"}

-- checks a family's arch table: {model_type =, traits = {...}, resolve = fn,
-- window = fn, gguf = {...}, to_decoder = fn, from_decoder = fn, peft_module =
-- fn(module, "out" | "in"): a decoder module path as the checkpoint's model
-- names it (PEFT's adapter keys) and back}
normalize_arch = function(a, model_type, path)
  local function bad(key, msg) error(fmt("%s: arch.%s: %s", path, key, msg), 0) end
  if type(a) ~= "table" then bad("", "expected a table") end
  for k, v in pairs(a) do
    if not ARCH_KEYS[k] then bad(tostring(k), "unknown key (known: " .. concat(M.sorted_keys(ARCH_KEYS), ", ") .. ")") end
    if type(v) ~= ARCH_KEYS[k] then bad(k, "expected a " .. ARCH_KEYS[k] .. ", got a " .. type(v)) end
  end
  if a.model_type ~= model_type then
    bad("model_type", fmt("'%s' differs from the family's model_type '%s'", tostring(a.model_type), model_type))
  end
  if (a.to_decoder == nil) ~= (a.from_decoder == nil) then
    bad("to_decoder", "to_decoder and from_decoder come together (a saved model must load again)")
  end
  if a.gguf then
    for k, v in pairs(a.gguf) do
      if not GGUF_KEYS[k] then bad("gguf." .. tostring(k), "unknown key") end
      if type(v) ~= GGUF_KEYS[k] then bad("gguf." .. k, "expected a " .. GGUF_KEYS[k] .. ", got a " .. type(v)) end
    end
    if not a.gguf.arch then bad("gguf.arch", "expected the GGUF general.architecture name") end
  end
  local out = {source = path}
  for k, v in pairs(a) do out[k] = v end
  out.traits = a.traits or {}
  return out
end

-- checks a family recipe and puts it in the canonical shape
local function normalize(spec, stem, path)
  local function bad(key, msg) error(fmt("%s: %s: %s", path, key, msg), 0) end
  if type(spec) ~= "table" then error(fmt("%s: a model family recipe must return a table", path), 0) end
  local f = {source = path}
  f.family = spec.family or stem
  if type(f.family) ~= "string" or not f.family:match("^[%w_%.%-]+$") then bad("family", "expected a name") end
  f.title = spec.title or f.family
  if type(spec.model_type) ~= "string" or spec.model_type == "" then
    bad("model_type", "expected the config.json model_type this family loads as (e.g. \"llama\")")
  end
  f.model_type = spec.model_type
  if spec.arch ~= nil then f.arch = normalize_arch(spec.arch, f.model_type, path) end
  if type(spec.template) ~= "string" then bad("template", "expected a template name from recipes/templates/") end
  if not template_exists(spec.template) then
    bad("template", fmt("no template '%s' (recipes/templates/%s.lua)", spec.template, spec.template))
  end
  f.template = spec.template
  f.lf_template = spec.lf_template
  -- a family whose Hub checkpoints lfl cannot load yet says why instead of listing them
  if spec.no_checkpoints ~= nil and type(spec.no_checkpoints) ~= "string" then
    bad("no_checkpoints", "expected the reason the family lists no checkpoints")
  end
  f.no_checkpoints = spec.no_checkpoints
  f.lora_target = list_of_names(spec.lora_target, path .. ": lora_target")
  -- checkpoints: a list of {name, hub, size[, template]} or a map name -> hub id / {hub =, size =}
  local cks = {}
  local raw = spec.checkpoints or {}
  if type(raw) ~= "table" then bad("checkpoints", "expected a list of {name =, hub =, size =}") end
  if #raw > 0 then
    for i, c in ipairs(raw) do cks[i] = c end
  else
    local names = {}
    for k in pairs(raw) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = raw[k]
      if type(v) == "string" then v = {hub = v} end
      if type(v) ~= "table" then bad("checkpoints." .. tostring(k), "expected a hub id or {hub =, size =}") end
      local c = {name = k}
      for kk, vv in pairs(v) do c[kk] = vv end
      cks[#cks + 1] = c
    end
  end
  f.checkpoints = {}
  for i, c in ipairs(cks) do
    local where = fmt("checkpoints[%d]", i)
    if type(c) ~= "table" then bad(where, "expected {name =, hub =, size =}") end
    if type(c.name) ~= "string" or c.name == "" then bad(where .. ".name", "expected a display name") end
    if type(c.hub) ~= "string" or not c.hub:match("^[%w_%.%-]+/[%w_%.%-]+$") then
      bad(where .. ".hub", fmt("expected a hub id \"org/name\", got %s", tostring(c.hub)))
    end
    if c.template ~= nil then
      if type(c.template) ~= "string" or not template_exists(c.template) then
        bad(where .. ".template", fmt("no template '%s' in recipes/templates/", tostring(c.template)))
      end
    end
    f.checkpoints[i] = {name = c.name, hub = c.hub, size = c.size and tostring(c.size) or nil,
                        template = c.template or f.template, family = f.family}
  end
  return f
end

local cache -- {key =, list =, by_name =, by_hub =, by_repo =, by_type =, arch =}

-- which folders are searched (a change of LFL_PATH, HOME or the test override reloads)
local function roots_key()
  local parts = {}
  for i, r in ipairs(recipes.roots()) do parts[i] = r.root end
  return table.concat(parts, ";")
end

local function load_all()
  local key = roots_key()
  if cache and cache.key == key then return cache end
  local c = {key = key, list = {}, by_name = {}, by_hub = {}, by_repo = {}, by_type = {}, arch = {}}
  for _, e in ipairs(recipes.list("models")) do
    local path = e.path
    local ok, spec = pcall(recipes.run, path)
    if not ok then error(fmt("model registry: %s", tostring(spec)), 0) end
    local f = normalize(spec, e.name, path)
    if c.by_name[f.family] then
      error(fmt("model registry: family '%s' is defined by both %s and %s", f.family, c.by_name[f.family].source,
        path), 0)
    end
    c.by_name[f.family] = f
    c.list[#c.list + 1] = f
    if f.arch then
      local prev = c.arch[f.arch.model_type]
      if prev then
        error(fmt("model registry: model_type '%s' is defined by both %s and %s", f.arch.model_type, prev.source,
          path), 0)
      end
      c.arch[f.arch.model_type] = f.arch
    end
  end
  table.sort(c.list, function(a, b) return a.family < b.family end)
  for _, f in ipairs(c.list) do
    if not c.arch[f.model_type] then
      error(fmt("model registry: %s: model_type '%s' is not defined by any family's arch (known: %s)", f.source,
        f.model_type, concat(M.sorted_keys(c.arch), ", ")), 0)
    end
    for _, ck in ipairs(f.checkpoints) do
      local hub = lower(ck.hub)
      c.by_hub[hub] = c.by_hub[hub] or ck
      local repo = hub:match("/(.+)$")
      c.by_repo[repo] = c.by_repo[repo] or ck
      c.by_repo[lower(ck.name)] = c.by_repo[lower(ck.name)] or ck
    end
    local l = c.by_type[f.model_type] or {}
    l[#l + 1] = f
    c.by_type[f.model_type] = l
  end
  cache = c
  return c
end

function M.sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- every config.json model_type some family module defines, sorted
function M.model_types() return M.sorted_keys(load_all().arch) end

-- arch(model_type[, where]) -> the architecture table of the family module
-- defining that model_type; an unknown one is an error (prefixed by `where`,
-- e.g. the config.json path) listing the known ones
function M.arch(model_type, where)
  local a = type(model_type) == "string" and load_all().arch[model_type]
  if not a then
    error(fmt("%s: model_type '%s' is not supported: no model family module defines it (known: %s; add one " ..
      "as ~/.lfl/recipes/models/<family>.lua with an arch table)", where or "config.json", tostring(model_type),
      concat(M.model_types(), ", ")), 0)
  end
  return a
end

-- the GGUF architecture name -> the arch table whose gguf.arch it is, or nil
function M.arch_of_gguf(name)
  for _, a in pairs(load_all().arch) do
    if a.gguf and a.gguf.arch == name then return a end
  end
  return nil
end

-- the GGUF architectures some family module reads, sorted
function M.gguf_archs()
  local out = {}
  for _, a in pairs(load_all().arch) do if a.gguf then out[#out + 1] = a.gguf.arch end end
  table.sort(out)
  return out
end

-- forget the loaded recipes (after adding or editing one)
function M.reload() cache = nil; recipes.reload() end

-- every family, sorted by name
function M.families()
  local out = {}
  for i, f in ipairs(load_all().list) do out[i] = f end
  return out
end

function M.family(name) return load_all().by_name[name] end

-- the family a config.json model_type loads as: the family named like the
-- model_type (llama for "llama"), else the only one, else the first by name
function M.family_of_type(model_type)
  local l = load_all().by_type[model_type]
  if not l then return nil end
  for _, f in ipairs(l) do if f.family == model_type then return f end end
  return l[1]
end

local function is_dir(p)
  return lfl and lfl._hub and lfl._hub.path_kind and lfl._hub.path_kind(p) == "directory"
end

-- checkpoint of a hub id or local path: exact hub id, a Hugging Face cache
-- snapshot (.../models--org--name/snapshots/<rev>), or a folder named like
-- the repo (or the display name)
local function checkpoint_of(s)
  local c = load_all()
  local key = lower(s):gsub("/+$", "")
  if c.by_hub[key] then return c.by_hub[key] end
  local org, name = key:match("models%-%-(.-)%-%-([^/]+)/snapshots/")
  if org and c.by_hub[org .. "/" .. name] then return c.by_hub[org .. "/" .. name] end
  local base = key:match("([^/]+)$")
  if base and c.by_repo[base] then return c.by_repo[base] end
  return nil
end

local function model_type_of_path(p)
  local s = read_file(p .. "/config.json")
  if not s then return nil end
  local ok, cfg = pcall(lfl.json.decode, s, p .. "/config.json")
  if ok and type(cfg) == "table" and type(cfg.model_type) == "string" then
    -- a vision-language checkpoint lfl reads the language model of: that model's type
    if require("lfl.model.wrapper").WRAPPERS[cfg.model_type] then
      local okw, text = pcall(require("lfl.model.wrapper").unwrap, cfg)
      if okw then return text.model_type end
    end
    return cfg.model_type
  end
  return nil
end

-- lookup(x) -> family, checkpoint (or nil), how ("family" | "checkpoint" | "model_type")
-- x: a family name, a hub id, a model folder, or a loaded Model
function M.lookup(x)
  local c = load_all()
  local path, model_type
  if type(x) == "table" or type(x) == "userdata" then
    path = x.path
    model_type = x.config and x.config.model_type
    if type(model_type) ~= "string" then model_type = x.arch and x.arch.name end
  elseif type(x) == "string" then
    if c.by_name[x] then return c.by_name[x], nil, "family" end
    path = x
  else
    error(fmt("registry.lookup: expected a model, a path or a hub id, got %s", type(x)), 2)
  end
  if type(path) == "string" then
    local ck = checkpoint_of(path)
    if ck then return c.by_name[ck.family], ck, "checkpoint" end
    if not model_type and is_dir(path) then model_type = model_type_of_path(path) end
  end
  if type(model_type) == "string" then
    local f = M.family_of_type(model_type)
    if f then return f, nil, "model_type" end
  end
  return nil
end

-- default_template(x) -> template name and {family =, checkpoint =, how =,
-- stand_in = LlamaFactory's template when the name is only a stand-in,
-- ambiguous = true when found by a model_type several families share}; nil
-- when x is not in the registry
function M.default_template(x)
  local f, ck, how = M.lookup(x)
  if not f then return nil end
  local name = ck and ck.template or f.template
  local stand_in = (name == f.template) and f.lf_template or nil
  -- a model_type several families share (llama: llama, smollm2, yi, ...) says little about the template
  local ambiguous = how == "model_type" and #load_all().by_type[f.model_type] > 1 or nil
  return name, {family = f.family, checkpoint = ck and ck.name, how = how, stand_in = stand_in, ambiguous = ambiguous}
end

-- lora_targets(x) -> the linear layer names lora_target "all" covers, or nil
function M.lora_targets(x)
  local f = M.lookup(x)
  if not f then return nil end
  local out = {}
  for i, n in ipairs(f.lora_target) do out[i] = n end
  return out
end

-- a one-line description of a family
function M.describe(f)
  return fmt("%s (%s): model_type %s, template %s%s, lora_target all = %s, %d checkpoints", f.family, f.title,
    f.model_type, f.template, f.lf_template and fmt(" (LlamaFactory: %s, not bundled)", f.lf_template) or "",
    concat(f.lora_target, ","), #f.checkpoints)
end

return M
