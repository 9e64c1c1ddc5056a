-- A small JSON decoder for reading golden files in tests (objects, arrays,
-- strings with \u escapes and surrogate pairs, numbers, true/false/null).
-- null decodes to the sentinel M.null so arrays keep their length.
local M = {}
M.null = setmetatable({}, {__tostring = function() return "null" end})

local byte, sub, char, find, tonumber = string.byte, string.sub, string.char, string.find, tonumber
local concat = table.concat

local function utf8(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
              0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}

function M.decode(s)
  local pos = 1
  local function fail(msg) error(string.format("json: %s at byte %d", msg, pos), 0) end
  local function ws()
    local _, e = find(s, "^[ \t\r\n]*", pos)
    pos = e + 1
  end
  local value
  local function str()
    pos = pos + 1
    local parts = {}
    while true do
      local a, b = find(s, '["\\]', pos)
      if not a then fail("unterminated string") end
      parts[#parts + 1] = sub(s, pos, a - 1)
      if sub(s, a, a) == '"' then pos = b + 1; break end
      local e = sub(s, a + 1, a + 1)
      if e == "u" then
        local cp = tonumber(sub(s, a + 2, a + 5), 16) or fail("bad \\u escape")
        pos = a + 6
        if cp >= 0xD800 and cp <= 0xDBFF and sub(s, pos, pos + 1) == "\\u" then
          local lo = tonumber(sub(s, pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        parts[#parts + 1] = utf8(cp)
      else
        parts[#parts + 1] = escapes[e] or fail("bad escape")
        pos = a + 2
      end
    end
    return concat(parts)
  end
  function value()
    ws()
    local c = sub(s, pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      ws()
      if sub(s, pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if sub(s, pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if sub(s, pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = sub(s, pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t, n = {}, 0
      ws()
      if sub(s, pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        n = n + 1
        t[n] = value()
        ws()
        local d = sub(s, pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif find(s, "^true", pos) then pos = pos + 4; return true
    elseif find(s, "^false", pos) then pos = pos + 5; return false
    elseif find(s, "^null", pos) then pos = pos + 4; return M.null
    else
      local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not a then fail("unexpected character") end
      pos = b + 1
      return tonumber(sub(s, a, b))
    end
  end
  local v = value()
  ws()
  if pos <= #s then fail("trailing data") end
  return v
end

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return M.decode(s)
end

return M
