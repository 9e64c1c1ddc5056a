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

-- Is this argument list LlamaFactory's form, `<recipe.yaml|.yml|.lua|.json>
-- [key=value ...]` or key=value alone, rather than --options?
function M.is_recipe_form(args)
  local first = args[1]
  if not first or first:match("^%-") then return false end
  return first:find("=", 1, true) ~= nil or first:match("%.ya?ml$") ~= nil or first:match("%.lua$") ~= nil
    or first:match("%.json$") ~= nil
end

-- where a command's notes go (one line each)
function M.note(line) io.stderr:write(line, "\n") end

-- The inference back-ends of LlamaFactory's infer_backend; lfl's generation is
-- the huggingface one (its own engine), the others are not built in.
local BACKENDS = {huggingface = true}

-- Options of a command given as LlamaFactory gives them to llamafactory-cli
-- chat / api / eval: a recipe file and key=value overrides. The keys go through
-- lfl.args.resolve (LlamaFactory's names and defaults; an unknown key is refused
-- with a "did you mean"), except the command's own ones (spec.recipe_own: name ->
-- "string" | "number" | "whole"), and spec.recipe maps recipe keys onto the
-- command's options (spec.recipe = {model_name_or_path = "model", ...}; a
-- function(value, o, a) sets options itself), for the keys the recipe or the
-- overrides set. A key the recipe sets that the
-- command does not use is reported once on stderr (training keys in an
-- inference recipe). Returns the options table parse_options would.
function M.parse_recipe(spec, args)
  local recipe, overrides = {}, {}
  local source = "command line"
  for i, x in ipairs(args) do
    if x:match("^%-%-") then
      error(fmt("%s: '%s': after a recipe, give settings as key=value (LlamaFactory's form), not --options\n%s",
        spec.name, x, spec.usage), 0)
    elseif x:find("=", 1, true) then
      overrides[#overrides + 1] = x
    elseif i == 1 then
      recipe = lfl.args.load_recipe(x)
      source = x
    else
      error(fmt("%s: unexpected argument '%s' (one recipe file, then key=value)\n%s", spec.name, x, spec.usage), 0)
    end
  end
  -- the command's own keys (not recipe arguments) come out before resolve
  local own, given = {}, {}
  local kinds = spec.recipe_own or {}
  local rest = {}
  for k, v in pairs(recipe) do
    if kinds[k] then own[k] = v else rest[k] = v; given[k] = true end
  end
  local rest_over = {}
  for _, kv in ipairs(overrides) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if k and kinds[k] then own[k] = lfl.args.parse_value(v)
    else
      rest_over[#rest_over + 1] = kv
      if k then given[k] = true end
    end
  end
  for k, kind in pairs(kinds) do
    local v = own[k]
    if v ~= nil then
      if kind == "string" then own[k] = tostring(v)
      elseif type(v) ~= "number" or (kind == "whole" and (v ~= math.floor(v) or v < 0)) then
        error(fmt("%s: %s expects %s, got '%s'", spec.name, k, kind == "whole" and "a whole number" or "a number",
          tostring(v)), 0)
      end
    end
  end
  rest.do_train = false
  local a = lfl.args.resolve(rest, rest_over, source)
  local backend = own.infer_backend
  if backend ~= nil and not BACKENDS[backend] then
    error(fmt("%s: infer_backend '%s' is not available: lfl generates with its own engine (infer_backend: "
      .. "huggingface)", spec.name, tostring(backend)), 0)
  end
  local o = {}
  for k, v in pairs(own) do o[k] = v end
  o.infer_backend = nil
  local used = {do_train = true, trust_remote_code = true}
  -- only what the recipe sets: the command's own defaults are LlamaFactory's
  for key, opt in pairs(spec.recipe or {}) do
    used[key] = true
    local v = a[key]
    if given[key] and v ~= nil then
      if type(opt) == "function" then opt(v, o, a) else o[opt] = v end
    end
  end
  for _, key in ipairs(spec.recipe_ignored or {}) do used[key] = true end
  local unused = {}
  for k in pairs(given) do if not used[k] then unused[#unused + 1] = k end end
  if #unused > 0 then
    table.sort(unused)
    M.note(fmt("[lfl] note: %s does not use %s", spec.name, table.concat(unused, ", ")))
  end
  o.recipe = a
  return o
end

-- Is this LlamaFactory's flag form (llamafactory-cli chat --model_name_or_path X
-- --template Y: HfArgumentParser's flags, no recipe file)? Yes when a flag names a
-- recipe argument that is not one of the command's own options.
function M.is_flag_form(spec, args)
  if not (args[1] and args[1]:match("^%-%-")) then return false end
  local own = {help = true}
  for _, field in ipairs({"numbers", "whole", "strings", "flags"}) do
    for _, k in ipairs(spec[field] or {}) do own[k] = true end
  end
  for _, x in ipairs(args) do
    local k = x:match("^%-%-([%w_%-]+)")
    if k then
      k = k:gsub("%-", "_")
      if not own[k] and lfl.args.DEFAULTS[k] ~= nil then return true end
    end
  end
  return false
end

-- a command's options from --options or from LlamaFactory's recipe or flag form
function M.parse_command(spec, args)
  if M.is_recipe_form(args) then return M.parse_recipe(spec, args) end
  if M.is_flag_form(spec, args) then return M.parse_recipe(spec, lfl.args.from_flags(args)) end
  return M.parse_options(spec, args)
end

-- recipe keys every inference command reads (chat, serve, eval): the model, its
-- adapters and dtype, the template and system prompt, and the generation settings
-- (LlamaFactory's GeneratingArguments; do_sample false = greedy)
M.INFER_RECIPE = {
  model_name_or_path = "model", adapter_name_or_path = "adapter", template = "template",
  device = "device", -- lfl: cuda[:N] runs the model on a CUDA device
  rope_scaling = "rope_scaling", -- LlamaFactory's inference scaling: factor 2 (lfl.model.rope.apply_recipe_scaling)
  default_system = "system", infer_dtype = function(v, o)
    local dt = ({bfloat16 = "bf16", bf16 = "bf16", float16 = "f16", fp16 = "f16", float32 = "f32"})[v]
    if dt then o.dtype = dt end
  end,
}
M.GENERATE_RECIPE = {
  temperature = "temperature", top_p = "top_p", top_k = "top_k", repetition_penalty = "repetition_penalty",
  max_new_tokens = "max_new_tokens", seed = "seed",
  do_sample = function(v, o) if v == false then o.temperature = 0 end end,
}

-- the union of tables of recipe keys
function M.recipe_keys(...)
  local out = {}
  for _, t in ipairs({...}) do for k, v in pairs(t) do out[k] = v end end
  return out
end

-- `lfl recipe.lua [key=value ...]` where the script returns its arguments
function M.run_recipe(recipe, source, overrides)
  return require("lfl.cmd.train").run_table(recipe, overrides or {}, source)
end

return M
