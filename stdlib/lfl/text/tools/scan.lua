-- Plain-string scanners that give the same matches as the regular expressions
-- of LlamaFactory's XML-style tool extractors (tool_utils.py, re.DOTALL), for
-- the tool formats in this folder. Python's \s is taken as ASCII whitespace.
local find, sub, max = string.find, string.sub, math.max

local M = {}

local function is_ws(s, i)
  local c = sub(s, i, i)
  return c ~= "" and find(c, "^%s") ~= nil
end

-- the first index at or after i that is not whitespace
function M.ws_end(s, i)
  while is_ws(s, i) do i = i + 1 end
  return i
end

-- the start of the whitespace run that ends just before j, not below floor
local function ws_start(s, j, floor)
  while j - 1 >= floor and is_ws(s, j - 1) do j = j - 1 end
  return j
end

-- re.search(open \s*(.+?)\s* close, s): start, end, group (nil when no match)
function M.search_wrapped(s, open, close)
  local pos = 1
  while true do
    local a, b = find(s, open, pos, true)
    if not a then return nil end
    -- the leading \s* is greedy; it gives characters back only when (.+?) finds
    -- no close after at least one character
    for gs = M.ws_end(s, b + 1), b + 1, -1 do
      local c, d = find(s, close, gs + 1, true)
      if c then
        local e = max(gs + 1, ws_start(s, c, gs + 1))
        return a, d, sub(s, gs, e - 1)
      end
    end
    pos = a + 1
  end
end

-- At i, match  \s*<function=\s*(NAME+)\s*(.*?)\s*close1\s*close2  where NAME is
-- the Lua character class name_class: name, inner text, index of the last
-- character matched (nil when it does not match there).
function M.function_block(s, i, name_class, close1, close2)
  i = M.ws_end(s, i)
  local tag = "<function="
  if sub(s, i, i + #tag - 1) ~= tag then return nil end
  i = M.ws_end(s, i + #tag)
  local j = i
  while j <= #s and find(sub(s, j, j), "^" .. name_class) do j = j + 1 end
  if j == i then return nil end
  local name = sub(s, i, j - 1)
  local gs = M.ws_end(s, j)
  local pos = gs
  while true do
    local c, d = find(s, close1, pos, true)
    if not c then return nil end
    local e2 = M.ws_end(s, d + 1)
    if sub(s, e2, e2 + #close2 - 1) == close2 then
      local e = max(gs, ws_start(s, c, gs))
      return name, sub(s, gs, e - 1), e2 + #close2 - 1
    end
    pos = c + 1
  end
end

-- findall(open (.*?) mid (.*?) close, s) -> {{first, second}, ...}
function M.findall_pairs(s, open, mid, close)
  local out, pos = {}, 1
  while true do
    local a, b = find(s, open, pos, true)
    if not a then break end
    local g, h = find(s, mid, b + 1, true)
    if not g then break end
    local c, d = find(s, close, h + 1, true)
    if not c then break end
    out[#out + 1] = {sub(s, b + 1, g - 1), sub(s, h + 1, c - 1)}
    pos = d + 1
  end
  return out
end

return M
