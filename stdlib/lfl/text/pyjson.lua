-- JSON with Python's semantics, for everything that must match the reference
-- stack byte for byte (chat templates' tojson, LlamaFactory's tool formatters):
-- decoding keeps object key order (Python dicts are ordered), null is a
-- sentinel (so it survives in tables), integral floats ("1.0") stay floats,
-- integers stay exact (beyond 2^53 they are lfl.json.Int values, see
-- lfl.text.pyint, and print digit for digit);
-- encoding follows json.dumps (separators, indent, ensure_ascii, sort_keys,
-- float repr). It also owns the value model shared with lfl.jinja: lists and
-- dicts are plain Lua tables whose kind and key order are remembered on the side.
local fmt, byte, char, concat = string.format, string.byte, string.char, table.concat
local floor, huge = math.floor, math.huge

local M = {}

local Int = require("lfl.text.pyint").Int
M.Int = Int
function M.is_int(x) return getmetatable(x) == Int end

-- ---- the value model ----

-- Python None / JSON null (a table, so it can live inside Lua tables)
M.null = setmetatable({}, {__tostring = function() return "None" end, __name = "None"})

-- A float whose value is integral (Python's 1.0) is boxed so that it prints
-- as "1.0"; non-integral floats are plain Lua numbers.
local Float = {__name = "float"}
Float.__tostring = function(f) return M.float_repr(f.v) end
M.Float = Float
function M.float(v)
  if v ~= v or v == huge or v == -huge or v ~= floor(v) then return v end
  return setmetatable({v = v}, Float)
end
function M.is_float(x)
  if type(x) == "number" then return x ~= floor(x) or x ~= x or x == huge or x == -huge end
  return getmetatable(x) == Float
end
-- the numeric value of a number or a boxed float (nil for anything else)
function M.num(x)
  if type(x) == "number" then return x end
  local mt = getmetatable(x)
  if mt == Float then return x.v end
  if mt == Int then return tonumber(x.digits) end
  return nil
end

-- kinds[t] = "list" for lists, or the ordered key list for dicts
local kinds = setmetatable({}, {__mode = "k"})

function M.list(t)
  t = t or {}
  kinds[t] = "list"
  return t
end

-- dict(t, keys): t's keys in the order given (keys missing from `keys` follow, sorted)
function M.dict(t, keys)
  t = t or {}
  if not keys then
    keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      return a < b
    end)
  end
  kinds[t] = keys
  return t
end

-- Ordered dict from alternating key, value arguments: M.odict("type", "function", "function", {...})
function M.odict(...)
  local t, keys = {}, {}
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      if t[k] == nil then keys[#keys + 1] = k end
      t[k] = v
    end
  end
  kinds[t] = keys
  return t
end

-- set a key and remember insertion order
function M.set(t, k, v)
  local ks = kinds[t]
  if type(ks) ~= "table" then ks = {}; for key in pairs(t) do ks[#ks + 1] = key end; kinds[t] = ks end
  if v == nil then
    t[k] = nil
    return
  end
  if t[k] == nil then ks[#ks + 1] = k end
  t[k] = v
end

local function plain(t) return getmetatable(t) == nil end

-- A table is a list when marked so, or (unmarked and plain) when empty or t[1] ~= nil.
function M.is_list(t)
  if type(t) ~= "table" then return false end
  local k = kinds[t]
  if k == "list" then return true end
  if k then return false end
  if not plain(t) then return false end
  return rawget(t, 1) ~= nil or next(t) == nil
end

function M.is_dict(t)
  if type(t) ~= "table" then return false end
  local k = kinds[t]
  if k == "list" then return false end
  if k then return true end
  if not plain(t) then return false end
  return rawget(t, 1) == nil and next(t) ~= nil
end

local function key_lt(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  return a < b
end

-- keys of a dict in insertion order (known order first, then any others sorted)
function M.keys(t)
  local ks = kinds[t]
  local out, seen = {}, {}
  if type(ks) == "table" then
    for _, k in ipairs(ks) do
      if t[k] ~= nil and not seen[k] then out[#out + 1] = k; seen[k] = true end
    end
  end
  local rest
  for k in pairs(t) do
    if not seen[k] then rest = rest or {}; rest[#rest + 1] = k end
  end
  if rest then
    table.sort(rest, key_lt)
    for _, k in ipairs(rest) do out[#out + 1] = k end
  end
  return out
end

-- a shallow copy keeping kind and order
function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  local k = kinds[t]
  if k == "list" then kinds[c] = "list" elseif k then kinds[c] = M.keys(t) end
  return c
end

-- ---- UTF-8 ----

function M.utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- code point at byte i of s, and the byte length of its encoding
function M.utf8_at(s, i)
  local c = byte(s, i)
  if c < 0x80 then return c, 1 end
  if c >= 0xF0 then
    local b2, b3, b4 = byte(s, i + 1, i + 3)
    if b4 then return (c - 0xF0) * 262144 + (b2 - 0x80) * 4096 + (b3 - 0x80) * 64 + (b4 - 0x80), 4 end
  elseif c >= 0xE0 then
    local b2, b3 = byte(s, i + 1, i + 2)
    if b3 then return (c - 0xE0) * 4096 + (b2 - 0x80) * 64 + (b3 - 0x80), 3 end
  elseif c >= 0xC0 then
    local b2 = byte(s, i + 1)
    if b2 then return (c - 0xC0) * 64 + (b2 - 0x80), 2 end
  end
  return c, 1 -- invalid byte: pass it through as itself
end

-- ---- float repr (Python's shortest round-trip repr) ----

function M.float_repr(x)
  if x ~= x then return "nan" end
  if x == huge then return "inf" end
  if x == -huge then return "-inf" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  local s
  for p = 1, 17 do
    s = fmt("%." .. (p - 1) .. "e", x)
    if tonumber(s) == x then break end
  end
  local sign, d1, rest, e = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (d1 .. rest):gsub("0+$", "")
  if digits == "" then digits = "0" end
  local exp = tonumber(e)
  if exp >= -4 and exp < 16 then -- Python's repr uses fixed notation for 1e-4 <= |x| < 1e16
    local intpart, frac
    if exp >= 0 then
      if #digits <= exp + 1 then
        intpart = digits .. string.rep("0", exp + 1 - #digits); frac = "0"
      else
        intpart = digits:sub(1, exp + 1); frac = digits:sub(exp + 2)
      end
    else
      intpart = "0"; frac = string.rep("0", -exp - 1) .. digits
    end
    return sign .. intpart .. "." .. frac
  end
  local mant = digits:sub(1, 1)
  if #digits > 1 then mant = mant .. "." .. digits:sub(2) end
  local es = exp < 0 and "-" or "+"
  local ae = math.abs(exp)
  return sign .. mant .. "e" .. es .. (ae < 10 and "0" .. ae or tostring(ae))
end

-- an integral number as Python prints it
function M.int_repr(x)
  if x >= -2 ^ 53 and x <= 2 ^ 53 then return fmt("%d", x) end
  return fmt("%.0f", x)
end

function M.number_repr(x)
  if type(x) == "table" then
    if getmetatable(x) == Int then return x.digits end
    return M.float_repr(x.v)
  end
  if x == floor(x) and x == x and x ~= huge and x ~= -huge then return M.int_repr(x) end
  return M.float_repr(x)
end

-- ---- decode ----

local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}

local function decode_error(s, i, what)
  local line, col = 1, 1
  for j = 1, math.min(i - 1, #s) do
    if byte(s, j) == 10 then line = line + 1; col = 1 else col = col + 1 end
  end
  error(fmt("json: %s at line %d column %d (char %d)", what, line, col, i - 1), 0)
end

local decode_value

local function skip_ws(s, i)
  local _, e = s:find("^[ \t\r\n]*", i)
  return e + 1
end

-- byte index of the first malformed UTF-8 sequence in s[k, stop) (a bad lead
-- or continuation byte, a cut or overlong sequence, past U+10FFFF), or nil;
-- encoded surrogates count as well formed, as the encoder writes lone ones
-- (Python's str holds them)
local function utf8_bad(s, k, stop)
  k = s:find("[\128-\255]", k)
  while k and k < stop do
    local c, n, lo, hi = byte(s, k), 0, 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then n = 1
    elseif c >= 0xE0 and c <= 0xEF then n = 2; if c == 0xE0 then lo = 0xA0 end
    elseif c >= 0xF0 and c <= 0xF4 then n = 3; if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else return k end
    if k + n >= stop then return k end
    local b = byte(s, k + 1)
    if b < lo or b > hi then return k end
    for m = 2, n do
      b = byte(s, k + m)
      if b < 0x80 or b > 0xBF then return k end
    end
    k = s:find("[\128-\255]", k + n + 1)
  end
  return nil
end

-- true when s is well-formed UTF-8 (encoded surrogates allowed, as above)
function M.utf8_valid(s) return utf8_bad(s, 1, #s + 1) == nil end

-- s with each malformed UTF-8 byte replaced by U+FFFD (Python's
-- errors="replace"), for text from outside that goes into JSON
function M.utf8_repair(s)
  local bad = utf8_bad(s, 1, #s + 1)
  if not bad then return s end
  local out, i = {}, 1
  while bad do
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
    bad = utf8_bad(s, i, #s + 1)
  end
  out[#out + 1] = s:sub(i)
  return concat(out)
end

local function decode_string(s, i)
  -- s[i] == '"'
  local parts, j = {}, i + 1
  while true do
    -- JSON forbids the control characters U+0000..U+001F in strings, not DEL
    -- (%c would also match 0x7F)
    local a, b = s:find('["\\%z\1-\31]', j)
    if not a then decode_error(s, i, "unterminated string") end
    if a > j then
      -- Python decodes JSON text from UTF-8 before parsing it: malformed bytes
      -- never reach a string (checked on the piece: a search of s would run to its end)
      local piece = s:sub(j, a - 1)
      local bad = utf8_bad(piece, 1, #piece + 1)
      if bad then decode_error(s, j + bad - 1, "invalid UTF-8") end
      parts[#parts + 1] = piece
    end
    local c = s:sub(a, a)
    if c == '"' then return concat(parts), a + 1 end
    if c ~= "\\" then decode_error(s, a, "invalid control character in string") end
    local e = s:sub(a + 1, a + 1)
    if e == "u" then
      local hex = s:match("^%x%x%x%x", a + 2)
      if not hex then decode_error(s, a, "invalid \\u escape") end
      local cp = tonumber(hex, 16)
      local nxt = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", nxt)
        local l = lo and tonumber(lo, 16)
        if l and l >= 0xDC00 and l <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 1024 + (l - 0xDC00)
          nxt = nxt + 6
        end
      end
      parts[#parts + 1] = M.utf8_char(cp)
      j = nxt
    else
      local r = escapes[e]
      if not r then decode_error(s, a, "invalid escape \\" .. e) end
      parts[#parts + 1] = r
      j = a + 2
    end
  end
end

local function decode_number(s, i)
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not num or num == "-" then decode_error(s, i, "expecting value") end
  local v = tonumber(num)
  if not v then decode_error(s, i, "invalid number " .. num) end
  if num:find("[.eE]") then return M.float(v), i + #num end
  -- past 15 digits a double may round it: keep it exact (lfl.json.int gives a
  -- number up to 2^53, else the Int)
  if #num > 15 and num:match("^-?[1-9]%d*$") then return lfl.json.int(num), i + #num end
  return v, i + #num
end

decode_value = function(s, i, depth)
  i = skip_ws(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    if depth > 1000 then decode_error(s, i, "nesting too deep") end
    local t, keys = {}, {}
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "}" then kinds[t] = keys; return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expecting property name enclosed in double quotes") end
      local k; k, i = decode_string(s, i)
      i = skip_ws(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expecting ':' delimiter") end
      local v; v, i = decode_value(s, i + 1, depth + 1)
      if t[k] == nil then keys[#keys + 1] = k end
      t[k] = v
      i = skip_ws(s, i)
      c = s:sub(i, i)
      if c == "}" then kinds[t] = keys; return t, i + 1 end
      if c ~= "," then decode_error(s, i, "expecting ',' delimiter") end
      i = skip_ws(s, i + 1)
    end
  elseif c == "[" then
    if depth > 1000 then decode_error(s, i, "nesting too deep") end
    local t, n = {}, 0
    kinds[t] = "list"
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      local v; v, i = decode_value(s, i, depth + 1)
      n = n + 1; t[n] = v
      i = skip_ws(s, i)
      c = s:sub(i, i)
      if c == "]" then return t, i + 1 end
      if c ~= "," then decode_error(s, i, "expecting ',' delimiter") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "t" and s:sub(i, i + 3) == "true" then return true, i + 4
  elseif c == "f" and s:sub(i, i + 4) == "false" then return false, i + 5
  elseif c == "n" and s:sub(i, i + 3) == "null" then return M.null, i + 4
  elseif c == "N" and s:sub(i, i + 2) == "NaN" then return 0 / 0, i + 3
  elseif c == "I" and s:sub(i, i + 7) == "Infinity" then return huge, i + 8
  elseif c == "-" and s:sub(i, i + 8) == "-Infinity" then return -huge, i + 9
  elseif c:match("[-%d]") then return decode_number(s, i)
  end
  decode_error(s, i, "expecting value")
end

-- json.loads: objects keep key order, null -> M.null, "1.0" -> boxed float
function M.decode(s)
  if type(s) ~= "string" then error("json: decode expects a string, got " .. type(s), 2) end
  local v, i = decode_value(s, 1, 0)
  i = skip_ws(s, i)
  if i <= #s then decode_error(s, i, "extra data") end
  return v
end
M.loads = M.decode

-- ---- encode (json.dumps) ----

local short_esc = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f"}

local function esc_ctl(c) return short_esc[c] or fmt("\\u%04x", byte(c)) end

function M.quote(s, ensure_ascii)
  local q = s:gsub('[%z\1-\31"\\]', esc_ctl)
  if ensure_ascii and q:find("[\128-\255]") then
    local out, i, n = {}, 1, #q
    while i <= n do
      local c = byte(q, i)
      if c < 0x80 then
        local a, b = q:find("^[\1-\127]+", i)
        out[#out + 1] = q:sub(a, b); i = b + 1
      else
        local cp, len = M.utf8_at(q, i)
        if cp >= 0x10000 then
          local v = cp - 0x10000
          out[#out + 1] = fmt("\\u%04x\\u%04x", 0xD800 + floor(v / 1024), 0xDC00 + v % 1024)
        else
          out[#out + 1] = fmt("\\u%04x", cp)
        end
        i = i + len
      end
    end
    q = concat(out)
  end
  return '"' .. q .. '"'
end

local function key_string(k, ensure_ascii)
  local tk = type(k)
  if tk == "string" then return M.quote(k, ensure_ascii) end
  if tk == "number" or getmetatable(k) == Float or getmetatable(k) == Int then
    return '"' .. M.number_repr(k) .. '"'
  end
  if tk == "boolean" then return k and '"true"' or '"false"' end
  if k == M.null then return '"null"' end
  error("json: keys must be str, int, float, bool or None, not " .. tk, 0)
end

-- json.dumps(v, opts): opts.ensure_ascii (default true, like Python), opts.indent
-- (number or string), opts.separators = {item, key}, opts.sort_keys, opts.default
-- (called for values JSON cannot hold; it returns a replacement or raises).
function M.encode(v, opts)
  opts = opts or {}
  local ensure_ascii = opts.ensure_ascii ~= false
  local indent = opts.indent
  if type(indent) == "number" then indent = string.rep(" ", indent) end
  if getmetatable(indent) == Float then indent = string.rep(" ", indent.v) end
  local item_sep, key_sep
  if opts.separators then
    item_sep, key_sep = opts.separators[1], opts.separators[2]
  else
    item_sep, key_sep = indent and "," or ", ", ": "
  end
  local sort_keys, default = opts.sort_keys, opts.default
  local out, n = {}, 0
  local seen = {}
  local function put(s) n = n + 1; out[n] = s end
  local function enc(x, level)
    local tx = type(x)
    if tx == "string" then put(M.quote(x, ensure_ascii))
    elseif tx == "number" then
      if x ~= x then put("NaN") elseif x == huge then put("Infinity") elseif x == -huge then put("-Infinity")
      else put(M.number_repr(x)) end
    elseif tx == "boolean" then put(x and "true" or "false")
    elseif x == M.null then put("null")
    elseif getmetatable(x) == Float then put(M.float_repr(x.v))
    elseif getmetatable(x) == Int then put(x.digits)
    elseif tx == "table" and (M.is_list(x) or M.is_dict(x)) then
      if seen[x] then error("json: circular reference detected", 0) end
      seen[x] = true
      local islist = M.is_list(x)
      local keys
      if not islist then
        keys = M.keys(x)
        if sort_keys then table.sort(keys, key_lt) end
      end
      local count = islist and #x or #keys
      if count == 0 then
        put(islist and "[]" or "{}")
      else
        put(islist and "[" or "{")
        local nl
        if indent then nl = "\n" .. string.rep(indent, level + 1); put(nl) end
        for i = 1, count do
          if i > 1 then put(item_sep); if nl then put(nl) end end
          if islist then
            enc(x[i], level + 1)
          else
            local k = keys[i]
            put(key_string(k, ensure_ascii)); put(key_sep)
            enc(x[k], level + 1)
          end
        end
        if indent then put("\n" .. string.rep(indent, level)) end
        put(islist and "]" or "}")
      end
      seen[x] = nil
    else
      if default then return enc(default(x), level) end
      local tn = (getmetatable(x) or {}).__name or tx
      error(fmt("json: Object of type %s is not JSON serializable", tn), 0)
    end
  end
  enc(v, 0)
  return concat(out)
end
M.dumps = M.encode

return M
