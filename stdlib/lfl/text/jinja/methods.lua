-- The str / dict / list methods Jinja templates may call (what transformers'
-- sandbox allows: no mutating list/dict methods), with Python's semantics on
-- code points. Loading this module fills pyvalue's method tables, which
-- getattr() looks names up in; the helpers filters share are returned.
local J = require "lfl.text.pyjson"
local P = require "lfl.text.jinja.pyvalue"
local concat, sub, find, floor = table.concat, string.sub, string.find, math.floor
local null, is_list, dkeys = J.null, J.is_list, J.keys
local arg, as_str, brace_format, case_map, case_op = P.arg, P.as_str, P.brace_format, P.case_map, P.case_op
local dict_methods, eq, is_ascii, is_space_char = P.dict_methods, P.eq, P.is_ascii, P.is_space_char
local iter_list, list_methods, numv, repr, rt_error = P.iter_list, P.list_methods, P.numv, P.repr, P.rt_error
local str_methods, strip_impl, truthy, tuple = P.str_methods, P.strip_impl, P.truthy, P.tuple
local uchars, ulen = P.uchars, P.ulen
local U = lfl._unicode

local M = {}
-- ---------------------------------------------------------------------------
-- str / dict / list methods (what the sandbox lets templates call)
-- ---------------------------------------------------------------------------

local function split_ws(s, maxsplit)
  local out = {}
  local cs = uchars(s)
  local i, n = 1, #cs
  while i <= n do
    while i <= n and is_space_char(cs[i]) do i = i + 1 end
    if i > n then break end
    if maxsplit >= 0 and #out >= maxsplit then
      local j = n
      while j >= i and is_space_char(cs[j]) do j = j - 1 end
      out[#out + 1] = concat(cs, "", i, j)
      break
    end
    local j = i
    while j <= n and not is_space_char(cs[j]) do j = j + 1 end
    out[#out + 1] = concat(cs, "", i, j - 1)
    i = j
  end
  return J.list(out)
end

local function split_sep(s, sep, maxsplit)
  if sep == "" then rt_error("empty separator") end
  local out, pos = {}, 1
  while maxsplit < 0 or #out < maxsplit do
    local a, b = find(s, sep, pos, true)
    if not a then break end
    out[#out + 1] = sub(s, pos, a - 1)
    pos = b + 1
  end
  out[#out + 1] = sub(s, pos)
  return J.list(out)
end

local function rsplit_sep(s, sep, maxsplit)
  if maxsplit < 0 then return split_sep(s, sep, -1) end
  local parts = split_sep(s, sep, -1)
  if #parts - 1 <= maxsplit then return parts end
  local keep = #parts - maxsplit
  local out = {concat(parts, sep, 1, keep)}
  for i = keep + 1, #parts do out[#out + 1] = parts[i] end
  return J.list(out)
end

local function py_replace(s, old, new, count)
  count = count or -1
  if old == "" then
    local cs = uchars(s)
    local out, n = {}, 0
    for i = 1, #cs + 1 do
      if count < 0 or n < count then out[#out + 1] = new; n = n + 1 end
      if cs[i] then out[#out + 1] = cs[i] end
    end
    return concat(out)
  end
  local out, pos, n = {}, 1, 0
  while count < 0 or n < count do
    local a, b = find(s, old, pos, true)
    if not a then break end
    out[#out + 1] = sub(s, pos, a - 1)
    out[#out + 1] = new
    pos = b + 1
    n = n + 1
  end
  out[#out + 1] = sub(s, pos)
  return concat(out)
end

local function prefix_test(s, p, at_end)
  local function one(x)
    x = as_str(x, at_end and "endswith arg" or "startswith arg")
    if at_end then return x == "" or sub(s, -#x) == x end
    return sub(s, 1, #x) == x
  end
  if type(p) == "table" and getmetatable(p) == nil and is_list(p) then
    for i = 1, #p do if one(p[i]) then return true end end
    return false
  end
  return one(p)
end

local function cp_index(s, bytepos) -- 0-based code point index of a 1-based byte position
  if is_ascii(s) then return bytepos - 1 end
  return ulen(sub(s, 1, bytepos - 1))
end

-- Python's str.title / str.capitalize (the first character title-cased, as
-- Python 3.8+ does; full Unicode mappings through utf8proc)
local function title_case(s) return case_op(s, "title") end
local function capitalize(s) return case_op(s, "capitalize") end

local function pad_center(s, width, fillc)
  local n = ulen(s)
  if width <= n then return s end
  local total = width - n
  local left = floor(total / 2) + ((total % 2 == 1 and width % 2 == 1) and 1 or 0)
  return fillc:rep(left) .. s .. fillc:rep(total - left)
end

str_methods.strip = function(s, a) local c = a[1]; if c == null then c = nil end return strip_impl(s, c, true, true) end
str_methods.lstrip = function(s, a) local c = a[1]; if c == null then c = nil end return strip_impl(s, c, true, false) end
str_methods.rstrip = function(s, a) local c = a[1]; if c == null then c = nil end return strip_impl(s, c, false, true) end
str_methods.split = function(s, a, kw)
  local sep, maxs = arg(a, kw, 1, "sep", null), numv(arg(a, kw, 2, "maxsplit", -1))
  if sep == null then return split_ws(s, maxs) end
  return split_sep(s, as_str(sep, "separator"), maxs)
end
str_methods.rsplit = function(s, a, kw)
  local sep, maxs = arg(a, kw, 1, "sep", null), numv(arg(a, kw, 2, "maxsplit", -1))
  if sep == null then
    if maxs < 0 then return split_ws(s, -1) end
    local parts = split_ws(s, -1)
    if #parts - 1 <= maxs then return parts end
    -- rare: rebuild the head with its original spacing
    local keep = #parts - maxs
    local head = s
    for i = #parts, keep + 1, -1 do
      local a2 = head:find(parts[i], 1, true)
      local last = a2
      while a2 do last = a2; a2 = head:find(parts[i], a2 + 1, true) end
      head = head:sub(1, last - 1)
    end
    local out = {strip_impl(head, nil, false, true)}
    for i = keep + 1, #parts do out[#out + 1] = parts[i] end
    return J.list(out)
  end
  return rsplit_sep(s, as_str(sep, "separator"), maxs)
end
str_methods.splitlines = function(s, a, kw)
  local keep = truthy(arg(a, kw, 1, "keepends", false))
  local out, pos = {}, 1
  while pos <= #s do
    local a2, b2 = find(s, "\r?\n", pos)
    local a3 = find(s, "\r", pos, true)
    if a3 and (not a2 or a3 < a2) then a2, b2 = a3, a3 end
    if not a2 then out[#out + 1] = sub(s, pos); break end
    out[#out + 1] = sub(s, pos, keep and b2 or a2 - 1)
    pos = b2 + 1
  end
  return J.list(out)
end
str_methods.startswith = function(s, a) return prefix_test(s, a[1], false) end
str_methods.endswith = function(s, a) return prefix_test(s, a[1], true) end
str_methods.upper = function(s) return case_map(s, true) end
str_methods.lower = function(s) return case_map(s, false) end
str_methods.casefold = function(s) return case_op(s, "casefold") end
str_methods.title = function(s) return title_case(s) end
str_methods.capitalize = function(s) return capitalize(s) end
str_methods.swapcase = function(s) return case_op(s, "swapcase") end
str_methods.replace = function(s, a, kw)
  local cnt = arg(a, kw, 3, "count", -1)
  return py_replace(s, as_str(a[1], "replace arg 1"), as_str(a[2], "replace arg 2"), numv(cnt))
end
str_methods.find = function(s, a)
  local p = find(s, as_str(a[1]), 1, true)
  return p and cp_index(s, p) or -1
end
str_methods.index = function(s, a)
  local p = find(s, as_str(a[1]), 1, true)
  if not p then rt_error("substring not found") end
  return cp_index(s, p)
end
str_methods.rfind = function(s, a)
  local x, last, p = as_str(a[1]), nil, 0
  while true do
    p = find(s, x, p + 1, true)
    if not p then break end
    last = p
    if x == "" then break end
  end
  if x == "" then return ulen(s) end
  return last and cp_index(s, last) or -1
end
str_methods.rindex = function(s, a)
  local r = str_methods.rfind(s, a)
  if r < 0 then rt_error("substring not found") end
  return r
end
str_methods.count = function(s, a)
  local x = as_str(a[1])
  if x == "" then return ulen(s) + 1 end
  local n, p = 0, 1
  while true do
    local a2, b2 = find(s, x, p, true)
    if not a2 then return n end
    n = n + 1; p = b2 + 1
  end
end
str_methods.join = function(s, a)
  local items = iter_list(a[1])
  local parts = {}
  for i = 1, #items do parts[i] = as_str(items[i], "sequence item " .. (i - 1)) end
  return concat(parts, s)
end
str_methods.format = function(s, a, kw) return brace_format(s, a, kw) end
-- character classes per code point as Python decides them (false for ""):
-- isalpha by category (L*), isdecimal/isdigit/isnumeric by Numeric_Type
local function all_chars(s, ok)
  if s == "" then return false end
  for _, c in ipairs(uchars(s)) do
    if not ok((J.utf8_at(c, 1))) then return false end
  end
  return true
end
local function alpha(cp) return sub(U.category(cp), 1, 1) == "L" end
str_methods.isdecimal = function(s) return all_chars(s, function(cp) return U.numeric(cp) == 3 end) end
str_methods.isdigit = function(s) return all_chars(s, function(cp) return U.numeric(cp) >= 2 end) end
str_methods.isnumeric = function(s) return all_chars(s, function(cp) return U.numeric(cp) >= 1 end) end
str_methods.isalpha = function(s) return all_chars(s, alpha) end
str_methods.isalnum = function(s) return all_chars(s, function(cp) return alpha(cp) or U.numeric(cp) > 0 end) end
str_methods.isspace = function(s)
  if s == "" then return false end
  for _, c in ipairs(uchars(s)) do if not is_space_char(c) then return false end end
  return true
end
-- Python: some cased character and none of the other case (titlecase counts
-- against both)
local function case_pred(s, want_lower)
  local cased = false
  for _, c in ipairs(uchars(s)) do
    local lo, up, ti = U.casing((J.utf8_at(c, 1)))
    if ti or (want_lower and up) or (not want_lower and lo) then return false end
    if (want_lower and lo) or (not want_lower and up) then cased = true end
  end
  return cased
end
str_methods.islower = function(s) return case_pred(s, true) end
str_methods.isupper = function(s) return case_pred(s, false) end
str_methods.zfill = function(s, a)
  local w = numv(a[1]); local n = ulen(s)
  if n >= w then return s end
  local sign = s:match("^[-+]") or ""
  return sign .. ("0"):rep(w - n) .. s:sub(#sign + 1)
end
str_methods.center = function(s, a) return pad_center(s, numv(a[1]), a[2] or " ") end
str_methods.ljust = function(s, a) local p = numv(a[1]) - ulen(s); return p > 0 and s .. (a[2] or " "):rep(p) or s end
str_methods.rjust = function(s, a) local p = numv(a[1]) - ulen(s); return p > 0 and (a[2] or " "):rep(p) .. s or s end
str_methods.partition = function(s, a)
  local sep = as_str(a[1]); local p, e = find(s, sep, 1, true)
  if not p then return tuple({s, "", ""}) end
  return tuple({sub(s, 1, p - 1), sep, sub(s, e + 1)})
end
str_methods.rpartition = function(s, a)
  local sep = as_str(a[1]); local last, lastE, p = nil, nil, 0
  while true do
    local e; p, e = find(s, sep, p + 1, true)
    if not p then break end
    last, lastE = p, e
  end
  if not last then return tuple({"", "", s}) end
  return tuple({sub(s, 1, last - 1), sep, sub(s, lastE + 1)})
end
str_methods.removeprefix = function(s, a)
  local p = as_str(a[1]); if p ~= "" and sub(s, 1, #p) == p then return sub(s, #p + 1) end return s
end
str_methods.removesuffix = function(s, a)
  local p = as_str(a[1]); if p ~= "" and sub(s, -#p) == p then return sub(s, 1, #s - #p) end return s
end

dict_methods.get = function(d, a)
  local v = d[a[1]]
  if v == nil then
    if a[2] ~= nil then return a[2] end
    return null
  end
  return v
end
dict_methods.items = function(d)
  local out = {}
  for i, k in ipairs(dkeys(d)) do out[i] = tuple({k, d[k]}) end
  return J.list(out)
end
dict_methods.keys = function(d) return J.list(dkeys(d)) end
dict_methods.values = function(d)
  local out = {}
  for i, k in ipairs(dkeys(d)) do out[i] = d[k] end
  return J.list(out)
end
dict_methods.copy = function(d) return J.copy(d) end

list_methods.index = function(l, a)
  for i = 1, #l do if eq(l[i], a[1]) then return i - 1 end end
  rt_error(repr(a[1]) .. " is not in list")
end
list_methods.count = function(l, a)
  local n = 0
  for i = 1, #l do if eq(l[i], a[1]) then n = n + 1 end end
  return n
end
list_methods.copy = function(l) return J.copy(l) end

-- for the other parts of the interpreter
M.capitalize, M.pad_center, M.py_replace, M.title_case = capitalize, pad_center, py_replace, title_case

return M
