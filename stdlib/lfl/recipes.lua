-- lfl.recipes: the one resolver for the Lua files users may add or replace
-- without a rebuild: templates, model families, dataset descriptions and
-- training approaches, GRPO reward functions, each recipes/<kind>/<name>.lua. One precedence rule:
-- each LFL_PATH entry's recipes/<kind>/ (LFL_PATH is ';'-separated; an entry
-- may end in "?.lua", as package.path entries do), then ~/.lfl/recipes/<kind>/,
-- then the bundled <lfl.home>/recipes/<kind>/. The current directory is never
-- searched (a stray recipes/ folder next to a script must not change a run).
--
--   lfl.recipes.find("templates", "llama3")  -- path, dir, source (or nil)
--   lfl.recipes.load("approaches", "sft")    -- the module's value (cached by path)
--   lfl.recipes.list("models")               -- {{name =, path =, source =, overrides =}, ...}
--   lfl.recipes.dirs("datasets")             -- folders searched, first winning
--   lfl.recipes.bundled("models", "gemma")   -- the bundled one (for an override that extends it)
local lfl = lfl
local fmt = string.format

local M = {}

M.KINDS = {"templates", "models", "datasets", "approaches", "rewards"}
local KIND = {}
for _, k in ipairs(M.KINDS) do KIND[k] = true end

-- Tests point these at scratch folders: user_dir replaces ~/.lfl/recipes,
-- bundled_dir replaces <lfl.home>/recipes.
M.user_dir = nil
M.bundled_dir = nil

local function check_kind(kind, level)
  if not KIND[kind] then
    error(fmt("lfl.recipes: unknown recipe kind '%s' (kinds: %s)", tostring(kind), table.concat(M.KINDS, ", ")),
      level + 1)
  end
end

-- a recipe name: letters, digits, _ . - (no "/", no "..")
function M.valid_name(name)
  return type(name) == "string" and name:match("^[%w_][%w_%.%-]*$") ~= nil and not name:find("..", 1, true)
end

local function check_name(kind, name, level)
  if not M.valid_name(name) then
    error(fmt("lfl.recipes: bad %s name %s (letters, digits, _ . -; no '/' or '..')", kind:gsub("s$", ""),
      type(name) == "string" and ("'" .. name .. "'") or tostring(name)), level + 1)
  end
end

-- The recipe roots, first winning: {{root = "<dir>/recipes/", source =}, ...}
function M.roots()
  local out = {}
  for entry in (os.getenv("LFL_PATH") or ""):gmatch("[^;]+") do
    local d = entry:gsub("%?%.lua$", ""):gsub("/+$", "")
    if d ~= "" then out[#out + 1] = {root = d .. "/recipes/", source = "LFL_PATH"} end
  end
  local user = M.user_dir
  if not user then
    local home = os.getenv("HOME")
    if home and home ~= "" then user = home .. "/.lfl/recipes" end
  end
  if user then out[#out + 1] = {root = (user:gsub("/+$", "")) .. "/", source = "user"} end
  out[#out + 1] = {root = ((M.bundled_dir or (lfl.home .. "/recipes")):gsub("/+$", "")) .. "/", source = "bundled"}
  return out
end

-- dirs(kind) -> the folders searched for that kind, first winning (each ends
-- with "/"), and their sources ("LFL_PATH", "user", "bundled")
function M.dirs(kind)
  check_kind(kind, 2)
  local dirs, sources = {}, {}
  for i, r in ipairs(M.roots()) do dirs[i] = r.root .. kind .. "/"; sources[i] = r.source end
  return dirs, sources
end

local function exists(path)
  return lfl._hub.path_kind(path) == "file"
end

-- find(kind, name) -> path, dir, source of the winning <name>.lua, or nil
function M.find(kind, name)
  check_kind(kind, 2)
  check_name(kind, name, 2)
  local dirs, sources = M.dirs(kind)
  for i, d in ipairs(dirs) do
    local p = d .. name .. ".lua"
    if exists(p) then return p, d, sources[i] end
  end
  return nil
end

-- The names in a folder (sorted), none when it is not there
function M.list_dir(dir)
  if not lfl.fs.isdir(dir) then return {} end
  return lfl.fs.list(dir)
end

-- list(kind) -> every recipe of that kind, sorted by name:
-- {{name =, path =, source =, overrides = path of the file it hides or nil}, ...}
function M.list(kind)
  check_kind(kind, 2)
  local by, names = {}, {}
  local dirs, sources = M.dirs(kind)
  for i, d in ipairs(dirs) do
    for _, f in ipairs(M.list_dir(d)) do
      local n = f:match("^(.+)%.lua$")
      if n and M.valid_name(n) then
        local e = by[n]
        if not e then
          by[n] = {name = n, path = d .. f, source = sources[i]}
          names[#names + 1] = n
        elseif not e.overrides then
          e.overrides = d .. f
        end
      end
    end
  end
  table.sort(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = by[n] end
  return out
end

-- names(kind) -> the sorted names alone
function M.names(kind)
  local out = {}
  for i, e in ipairs(M.list(kind)) do out[i] = e.name end
  return out
end

local loaded = {} -- path -> value

-- run(path) -> the value of the recipe file at path (cached by path); errors name the file
function M.run(path)
  local v = loaded[path]
  if v ~= nil then return v end
  local chunk, err = loadfile(path)
  if not chunk then
    -- Lua shortens long chunk names ("...tail.lua:3:"): name the whole path
    local line, msg = tostring(err):match(":(%d+): (.*)$")
    error(line and fmt("%s:%s: %s", path, line, msg) or fmt("%s: %s", path, tostring(err)), 0)
  end
  local ok, val = pcall(chunk)
  if not ok then
    local msg = tostring(val)
    if not msg:find(path, 1, true) then msg = path .. ": " .. msg end
    error(msg, 0)
  end
  if val == nil then error(fmt("%s: a recipe must return a value (a table)", path), 0) end
  loaded[path] = val
  return val
end

-- load(kind, name) -> the value of the winning recipe file, or an error naming
-- where it was looked for; second result: its path
function M.load(kind, name)
  check_kind(kind, 2)
  check_name(kind, name, 2)
  local path = M.find(kind, name)
  if not path then
    local dirs = M.dirs(kind)
    error(fmt("no %s recipe '%s' (looked for %s.lua in %s)", kind:gsub("s$", ""), name, name,
      table.concat(dirs, ", ")), 0)
  end
  return M.run(path), path
end

-- bundled(kind, name) -> a shallow copy of the bundled recipe's value, for a
-- user file that overrides a bundled one and changes only part of it:
--   local base = lfl.recipes.bundled("models", "gemma")
--   base.title = "my gemma"; return base
function M.bundled(kind, name)
  check_kind(kind, 2)
  check_name(kind, name, 2)
  local roots = M.roots()
  local path = roots[#roots].root .. kind .. "/" .. name .. ".lua"
  if not exists(path) then error(fmt("no bundled %s recipe '%s' (%s)", kind:gsub("s$", ""), name, path), 2) end
  local v = M.run(path)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = x end
  return out
end

-- forget the loaded recipe files (after editing one)
function M.reload() loaded = {} end

return M
