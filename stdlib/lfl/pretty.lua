-- Pretty printing of REPL results: tensors, nested tables (sorted keys, cycles
-- marked), and plain values. lfl.pretty(...) prints each argument.
local lfl = lfl
local fmt, concat, sort = string.format, table.concat, table.sort

local function is_ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function render(v, indent, seen, depth)
  local tv = type(v)
  if tv == "string" then return fmt("%q", v) end
  if lfl.is_tensor(v) then return tostring(v) end
  if tv ~= "table" then return tostring(v) end
  if seen[v] then return "<cycle>" end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  if depth > 6 then return "{...}" end
  seen[v] = true
  local keys, n = {}, #v
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then keys[#keys + 1] = k end
  end
  sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  local parts, inner = {}, indent .. "  "
  for i = 1, n do parts[#parts + 1] = render(v[i], inner, seen, depth + 1) end
  for i = 1, #keys do
    local k = keys[i]
    local ks = is_ident(k) and k or "[" .. render(k, inner, seen, depth + 1) .. "]"
    parts[#parts + 1] = ks .. " = " .. render(v[k], inner, seen, depth + 1)
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  local one = "{" .. concat(parts, ", ") .. "}"
  if #one <= 72 and not one:find("\n") then return one end
  return "{\n" .. inner .. concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

local function pretty(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = render((select(i, ...)), "", {}, 0) end
  print(concat(out, "\t"))
end

return setmetatable({render = function(v) return render(v, "", {}, 0) end}, {
  __call = function(_, ...) return pretty(...) end,
})
