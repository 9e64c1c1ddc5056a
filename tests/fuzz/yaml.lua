-- Harness of fuzz_yaml: the input as YAML text through lfl.yaml.decode under
-- both schemas (pyyaml, omegaconf): decode either fails with an error naming
-- the source ("fuzz.yaml:<line>:<column>: ..." or "fuzz.yaml: byte <n>: ..."),
-- or gives nil (an empty document) or a value whose tables hold only strings, numbers, booleans, null,
-- big integers and tables (walked once each: aliases may share or recurse).
local F = require("fuzzlib")

local function bug(msg, input) error("BUG: " .. msg .. "\ninput: " .. string.format("%q", input), 0) end

local function walk(v, seen, input)
  local ty = type(v)
  if v == nil or ty == "string" or ty == "number" or ty == "boolean" or v == lfl.yaml.null then return end
  if ty ~= "table" then bug("a decoded value of type " .. ty, input) end
  if getmetatable(v) == lfl.json.Int then return end
  if seen[v] then return end
  seen[v] = true
  for k, x in pairs(v) do
    if (type(k) == "table" and getmetatable(k) ~= lfl.json.Int) or k == lfl.yaml.null then
      bug("a collection or null key", input)
    end
    walk(x, seen, input)
  end
end

return function(input)
  for _, schema in ipairs({"pyyaml", "omegaconf"}) do
    local ok, v = F.guard("lfl.yaml.decode", lfl.yaml.decode, input, "fuzz.yaml", {schema = schema})
    if not ok then
      if v:find("fuzz.yaml", 1, true) ~= 1 then bug("a decode error that does not name the source: " .. v, input) end
    else
      walk(v, {}, input)
    end
  end
  collectgarbage("step", 200)
end
