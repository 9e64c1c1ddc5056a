-- `lfl <command> [args...]`: dispatch to stdlib/lfl/cmd/<command>.lua, each a
-- module returning {help = "one line", usage = "...", run = function(args) end}.
-- A YAML recipe given as the first argument runs as `lfl train <file>`.
local M = {}

local function list_commands()
  local names, seen = {}, {}
  for dir in package.path:gmatch("([^;]+)") do
    local root = dir:match("^(.*)/%?%.lua$")
    if root then
      local p = io.popen('ls "' .. root .. '/lfl/cmd" 2>/dev/null')
      if p then
        for f in p:lines() do
          local n = f:match("^([%w_%-]+)%.lua$")
          if n and not seen[n] then seen[n] = true; names[#names + 1] = n end
        end
        p:close()
      end
    end
  end
  table.sort(names)
  return names
end
M.list_commands = list_commands

function M.main(argv)
  local name = argv[0]
  local args = {}
  for i = 1, #argv do args[i] = argv[i] end
  if name:match("%.ya?ml$") then
    table.insert(args, 1, name)
    name = "train"
  end
  if name == "help" then
    local cmds = list_commands()
    print("lfl commands:")
    for _, n in ipairs(cmds) do
      local ok, mod = pcall(require, "lfl.cmd." .. n)
      print(string.format("  %-10s %s", n, ok and mod.help or "(fails to load: " .. tostring(mod) .. ")"))
    end
    return
  end
  local ok, mod = pcall(require, "lfl.cmd." .. name)
  if not ok then
    if tostring(mod):find("module 'lfl.cmd." .. name .. "' not found", 1, true) then
      local cmds = list_commands()
      error(string.format("'%s' is neither a file nor a command (commands: %s; try 'lfl --help')",
        name, #cmds > 0 and table.concat(cmds, ", ") or "none yet"), 0)
    end
    error(mod, 0)
  end
  return mod.run(args)
end

return M
