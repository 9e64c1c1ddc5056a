-- `lfl <command> [args...]`: dispatch to stdlib/lfl/cmd/<command>.lua, each a
-- module returning {help = "one line", usage = "...", run = function(args) end}
-- (run may return an exit status). A YAML recipe given as the first argument
-- runs as `lfl train <file>`. `lfl help [command]` lists the commands or shows
-- one's usage. main(arg) returns the process exit status.
local M = {}
local fmt = string.format

-- command names: lfl/cmd/*.lua under every "<dir>/?.lua" of package.path
local function list_commands()
  local names, seen = {}, {}
  for tmpl in package.path:gmatch("([^;]+)") do
    local root = tmpl:match("^(.*)/%?%.lua$")
    if root then
      for _, f in ipairs(require("lfl.recipes").list_dir(root .. "/lfl/cmd")) do
        local n = f:match("^([%w_%-]+)%.lua$")
        if n and n ~= "init" and not seen[n] then seen[n] = true; names[#names + 1] = n end
      end
    end
  end
  table.sort(names)
  return names
end
M.list_commands = list_commands

-- the command module, or nil and a message
local function load_command(name)
  if not name:match("^[%w_%-]+$") then return nil, "not a command name" end
  local ok, mod = pcall(require, "lfl.cmd." .. name)
  if ok then
    if type(mod) ~= "table" or type(mod.run) ~= "function" then
      return nil, fmt("stdlib/lfl/cmd/%s.lua does not return a table with a run function", name)
    end
    return mod
  end
  if tostring(mod):find("module 'lfl.cmd." .. name .. "' not found", 1, true) then return nil end
  return nil, tostring(mod)
end

local function help(name)
  if name then
    local mod, err = load_command(name)
    if not mod then
      io.stderr:write(fmt("lfl: %s\n", err or fmt("unknown command '%s'", name)))
      return 2
    end
    print(mod.usage or fmt("lfl %s: %s", name, mod.help or "(no description)"))
    return 0
  end
  local cmds = list_commands()
  print("usage: lfl <command> [args...]   (lfl --help for the options, lfl help <command> for one command)")
  print("commands:")
  print(fmt("  %-10s %s", "help", "list the commands, or show one command's usage"))
  for _, n in ipairs(cmds) do
    local mod, err = load_command(n)
    local line = mod and (mod.help or "") or "(fails to load: " .. tostring(err):gsub("\n.*", "") .. ")"
    print(fmt("  %-10s %s", n, line))
  end
  return 0
end

function M.main(argv)
  local name, recipe = argv[0], nil
  local args = {}
  for i = 1, #argv do args[i] = argv[i] end
  if name:match("%.ya?ml$") then
    recipe = name
    table.insert(args, 1, name)
    name = "train"
  end
  if name == "help" then return help(args[1]) end
  local mod, err = load_command(name)
  if not mod then
    if err then error(err, 0) end
    if recipe then
      io.stderr:write(fmt("lfl: running the recipe %s needs the 'train' command (stdlib/lfl/cmd/train.lua), "
        .. "which this installation lacks\n", recipe))
      return 2
    end
    local cmds = list_commands()
    table.insert(cmds, 1, "help")
    io.stderr:write(fmt("lfl: '%s' is neither a file nor a command (commands: %s; try 'lfl help')\n",
      name, table.concat(cmds, ", ")))
    return 2
  end
  local status = mod.run(args)
  return type(status) == "number" and status or 0
end

-- Options of a command: "--key value", "--key=value" and bare flags. Keys may
-- be written with - or _; the result uses _. spec = {name = "lfl chat", usage =,
-- numbers = {...}, whole = {...} (non-negative integers), strings = {...},
-- flags = {...}, rules = {key = lfl.args rule}} with keys in _ form. A number
-- is also checked against its rule: spec.rules[key], else the recipe
-- argument of the same name (lfl.args.SPEC: --top-p in (0, 1], ...).
function M.parse_options(spec, args)
  local function set(list) local t = {} for _, k in ipairs(list or {}) do t[k] = true end return t end
  local numbers, whole, strings, flags = set(spec.numbers), set(spec.whole), set(spec.strings), set(spec.flags)
  flags.help = true
  local o, i = {}, 1
  while i <= #args do
    local a = args[i]
    local given, inline = a:match("^%-%-([%w_%-]+)=(.*)$")
    given = given or a:match("^%-%-([%w_%-]+)$")
    if not given then error(string.format("%s: unexpected argument '%s'\n%s", spec.name, a, spec.usage), 0) end
    local k = given:gsub("%-", "_")
    if flags[k] and inline == nil then
      o[k] = true
    elseif numbers[k] or whole[k] or strings[k] then
      local v = inline
      if v == nil then i = i + 1; v = args[i] end
      if v == nil then error(string.format("%s: --%s needs a value", spec.name, given), 0) end
      if whole[k] then
        local n = tonumber(v)
        if not n or n ~= math.floor(n) or n < 0 then
          error(string.format("%s: --%s expects a whole number, got '%s'", spec.name, given, v), 0)
        end
        v = n
      elseif numbers[k] then
        local n = tonumber(v)
        if not n then error(string.format("%s: --%s expects a number, got '%s'", spec.name, given, v), 0) end
        v = n
      end
      if whole[k] or numbers[k] then
        local rule = spec.rules and spec.rules[k] or require("lfl.train.args").SPEC[k]
        if rule then v = require("lfl.train.args").check(k, v, spec.name, {rule = rule, label = "--" .. given}) end
      end
      o[k] = v
    else
      error(string.format("%s: unknown option --%s\n%s", spec.name, given, spec.usage), 0)
    end
    i = i + 1
  end
  return o
end

-- `lfl recipe.lua [key=value ...]` where the script returns its arguments
function M.run_recipe(recipe, source, overrides)
  return require("lfl.cmd.train").run_table(recipe, overrides or {}, source)
end

return M
