-- A Jinja2 interpreter covering what Hugging Face chat templates use, with the
-- environment transformers sets up (ImmutableSandboxedEnvironment with
-- trim_blocks, lstrip_blocks, loopcontrols; tojson = json.dumps(ensure_ascii=False),
-- raise_exception, strftime_now, namespace, dict). Templates are lexed, parsed and
-- compiled once to a tree of Lua closures; render() then only runs closures.
-- Values follow Python: lists/dicts are Lua tables (order kept by lfl.pyjson),
-- None is pyjson.null, integral floats are boxed, strings are UTF-8 and measured,
-- indexed and sliced in code points. Errors name the template and line.
local J = require "lfl.text.pyjson"
local fmt, concat, byte, sub, find = string.format, table.concat, string.byte, string.sub, string.find
local floor, huge = math.floor, math.huge
local null, Float = J.null, J.Float
local is_list, is_dict, dkeys, num = J.is_list, J.is_dict, J.keys, J.num

local M = {}
M.null = null

-- ---------------------------------------------------------------------------
-- runtime state and errors
-- ---------------------------------------------------------------------------

local cur_name, cur_line = "template", 0

local function rt_error(msg) error(fmt("jinja: %s:%d: %s", cur_name, cur_line, msg), 0) end
M.error = rt_error

-- Undefined: a missing variable, attribute or item. Printing gives "", truth is
-- false, iterating gives nothing; anything else (attribute, arithmetic, call)
-- raises, as jinja2's default Undefined does.
local Undefined = {__name = "Undefined"}
Undefined.__index = Undefined
local function undef(name, obj) return setmetatable({name = name, obj = obj}, Undefined) end
local function is_undef(v) return getmetatable(v) == Undefined end
M.undefined = undef

local function undef_fail(u)
  if u.hint then rt_error(u.hint) end
  if u.obj ~= nil then rt_error(fmt("'%s' has no attribute '%s'", u.obj, tostring(u.name))) end
  rt_error(fmt("'%s' is undefined", tostring(u.name or "value")))
end

-- tuples print with () but otherwise behave as lists
local tuples = setmetatable({}, {__mode = "k"})
local function tuple(t) J.list(t); tuples[t] = true; return t end

-- namespace() objects and the loop variable
local Namespace = {__name = "Namespace"}
local Loop = {__name = "LoopContext"}
-- strings produced by |safe / |escape (only their type differs)
local Markup = {__name = "Markup"}

local function pytype(v)
  local t = type(v)
  if t == "string" then return "str" end
  if t == "number" then return (v == floor(v) and v == v and v ~= huge and v ~= -huge) and "int" or "float" end
  if t == "boolean" then return "bool" end
  if t == "function" then return "function" end
  if v == null then return "NoneType" end
  local mt = getmetatable(v)
  if mt == Float then return "float" end
  if mt == Undefined then return "Undefined" end
  if mt == Namespace then return "Namespace" end
  if mt == Loop then return "LoopContext" end
  if t == "table" then
    if tuples[v] then return "tuple" end
    if is_list(v) then return "list" end
    if is_dict(v) then return "dict" end
  end
  return t
end
M.pytype = pytype

-- numeric value (bools count as ints, as in Python), or nil
local function numv(v)
  local t = type(v)
  if t == "number" then return v end
  if t == "boolean" then return v and 1 or 0 end
  if getmetatable(v) == Float then return v.v end
  return nil
end

local function isfloat(v) return J.is_float(v) end

local function mknum(v, float)
  if float then return J.float(v) end
  return v
end

-- ---------------------------------------------------------------------------
-- UTF-8 helpers (Python strings are sequences of code points)
-- ---------------------------------------------------------------------------

local function is_ascii(s) return not find(s, "[\128-\255]") end

local function ulen(s)
  if is_ascii(s) then return #s end
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function uchars(s)
  local out = {}
  if is_ascii(s) then
    for i = 1, #s do out[i] = sub(s, i, i) end
  else
    for c in s:gmatch("[%z\1-\127\192-\255][\128-\191]*") do out[#out + 1] = c end
  end
  return out
end

-- Python's str.isspace for one character
local uspace = {["\194\133"] = true, ["\194\160"] = true, ["\225\154\128"] = true, ["\226\128\168"] = true,
  ["\226\128\169"] = true, ["\226\128\175"] = true, ["\226\129\159"] = true, ["\227\128\128"] = true}
for cp = 0x2000, 0x200A do uspace[J.utf8_char(cp)] = true end
local function is_space_char(c)
  if #c == 1 then
    local b = byte(c)
    return b == 32 or (b >= 9 and b <= 13) or (b >= 28 and b <= 31)
  end
  return uspace[c] == true
end

local function strip_impl(s, chars, left, right)
  if chars == nil and is_ascii(s) then
    if left then s = s:gsub("^[ \t\n\r\v\f\28-\31]+", "") end
    if right then s = s:gsub("[ \t\n\r\v\f\28-\31]+$", "") end
    return s
  end
  local cs = uchars(s)
  local set
  if chars ~= nil then
    set = {}
    for _, c in ipairs(uchars(chars)) do set[c] = true end
  end
  local function strip_this(c) if set then return set[c] end return is_space_char(c) end
  local i, j = 1, #cs
  if left then while i <= j and strip_this(cs[i]) do i = i + 1 end end
  if right then while j >= i and strip_this(cs[j]) do j = j - 1 end end
  return concat(cs, "", i, j)
end

-- upper/lower: ASCII plus Latin-1, Greek and Cyrillic (the common non-ASCII cases)
local function case_map(s, up)
  if is_ascii(s) then return up and s:upper() or s:lower() end
  local out = {}
  for _, c in ipairs(uchars(s)) do
    if #c == 1 then
      out[#out + 1] = up and c:upper() or c:lower()
    else
      local cp = J.utf8_at(c, 1)
      local m = cp
      if up then
        if (cp >= 0xE0 and cp <= 0xFE and cp ~= 0xF7) or (cp >= 0x3B1 and cp <= 0x3C9 and cp ~= 0x3C2)
          or (cp >= 0x430 and cp <= 0x44F) then m = cp - 32
        elseif cp >= 0x450 and cp <= 0x45F then m = cp - 80 end
      else
        if (cp >= 0xC0 and cp <= 0xDE and cp ~= 0xD7) or (cp >= 0x391 and cp <= 0x3A9)
          or (cp >= 0x410 and cp <= 0x42F) then m = cp + 32
        elseif cp >= 0x400 and cp <= 0x40F then m = cp + 80 end
      end
      out[#out + 1] = m == cp and c or J.utf8_char(m)
    end
  end
  return concat(out)
end

-- ---------------------------------------------------------------------------
-- str() and repr() as Python prints them
-- ---------------------------------------------------------------------------

local tostr

local function str_repr(s)
  local q = "'"
  if find(s, "'", 1, true) and not find(s, '"', 1, true) then q = '"' end
  local r = s:gsub("[%z\1-\31\\\127" .. q .. "]", function(c)
    if c == "\\" then return "\\\\" end
    if c == q then return "\\" .. q end
    if c == "\n" then return "\\n" end
    if c == "\r" then return "\\r" end
    if c == "\t" then return "\\t" end
    return fmt("\\x%02x", byte(c))
  end)
  return q .. r .. q
end

local function repr(v)
  local t = type(v)
  if t == "string" then return str_repr(v) end
  if t == "table" and getmetatable(v) == nil then
    if is_list(v) then
      local parts = {}
      for i = 1, #v do parts[i] = repr(v[i]) end
      if tuples[v] then
        if #v == 1 then return "(" .. parts[1] .. ",)" end
        return "(" .. concat(parts, ", ") .. ")"
      end
      return "[" .. concat(parts, ", ") .. "]"
    end
    local parts = {}
    for _, k in ipairs(dkeys(v)) do parts[#parts + 1] = repr(k) .. ": " .. repr(v[k]) end
    return "{" .. concat(parts, ", ") .. "}"
  end
  if is_undef(v) then return "Undefined" end
  return tostr(v)
end
M.repr = repr

tostr = function(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return J.number_repr(v) end
  if t == "boolean" then return v and "True" or "False" end
  if v == null then return "None" end
  if t == "function" then return "<function>" end
  local mt = getmetatable(v)
  if mt == Undefined then return "" end
  if mt == Float then return J.float_repr(v.v) end
  if mt == Markup then return v.s end
  if mt == Namespace then return "<Namespace " .. repr(v.attrs) .. ">" end
  if mt == Loop then return "<LoopContext " .. v.index .. "/" .. v.length .. ">" end
  if t == "table" then return repr(v) end
  return tostring(v)
end
M.str = tostr

-- ---------------------------------------------------------------------------
-- truth, equality, ordering, arithmetic
-- ---------------------------------------------------------------------------

local function truthy(v)
  if v == nil or v == false or v == null then return false end
  local t = type(v)
  if t == "string" then return v ~= "" end
  if t == "number" then return v ~= 0 end
  if t == "boolean" then return v end
  if t == "table" then
    local mt = getmetatable(v)
    if mt == nil then return next(v) ~= nil end
    if mt == Undefined then return false end
    if mt == Float then return v.v ~= 0 end
    if mt == Markup then return v.s ~= "" end
  end
  return true
end
M.truthy = truthy

local eq
eq = function(a, b)
  if rawequal(a, b) then return a == a end -- NaN ~= NaN
  local na, nb = numv(a), numv(b)
  if na and nb then return na == nb end
  if na or nb then return false end
  local ta, tb = type(a), type(b)
  if ta == "table" and getmetatable(a) == Markup then a = a.s; ta = "string" end
  if tb == "table" and getmetatable(b) == Markup then b = b.s; tb = "string" end
  if ta == "string" or tb == "string" then return a == b end
  if ta ~= "table" or tb ~= "table" then return false end
  local ma, mb = getmetatable(a), getmetatable(b)
  if ma == Undefined or mb == Undefined then return ma == mb end
  if ma ~= nil or mb ~= nil then return false end
  if is_list(a) then
    if not is_list(b) or (tuples[a] ~= tuples[b]) or #a ~= #b then return false end
    for i = 1, #a do if not eq(a[i], b[i]) then return false end end
    return true
  end
  if is_list(b) then return false end
  for k, v in pairs(a) do if b[k] == nil or not eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.eq = eq

local function cmp_error(op, a, b)
  rt_error(fmt("'%s' not supported between instances of '%s' and '%s'", op, pytype(a), pytype(b)))
end

-- a < b with Python's rules (numbers, strings, lists lexicographically)
local lt
lt = function(a, b, op)
  if is_undef(a) then undef_fail(a) end
  if is_undef(b) then undef_fail(b) end
  local na, nb = numv(a), numv(b)
  if na and nb then return na < nb end
  if getmetatable(a) == Markup then a = a.s end
  if getmetatable(b) == Markup then b = b.s end
  local ta, tb = type(a), type(b)
  if ta == "string" and tb == "string" then return a < b end
  if ta == "table" and tb == "table" and is_list(a) and is_list(b) then
    for i = 1, math.min(#a, #b) do
      if not eq(a[i], b[i]) then return lt(a[i], b[i], op) end
    end
    return #a < #b
  end
  cmp_error(op or "<", a, b)
end

local function arith_error(op, a, b)
  rt_error(fmt("unsupported operand type(s) for %s: '%s' and '%s'", op, pytype(a), pytype(b)))
end

local function check_undef2(a, b)
  if is_undef(a) then undef_fail(a) end
  if is_undef(b) then undef_fail(b) end
end

local function op_add(a, b)
  local na, nb = numv(a), numv(b)
  if na and nb then return mknum(na + nb, isfloat(a) or isfloat(b)) end
  check_undef2(a, b)
  local ta, tb = type(a), type(b)
  if getmetatable(a) == Markup then a = a.s; ta = "string" end
  if getmetatable(b) == Markup then b = b.s; tb = "string" end
  if ta == "string" and tb == "string" then return a .. b end
  if ta == "string" then rt_error(fmt('can only concatenate str (not "%s") to str', pytype(b))) end
  if ta == "table" and tb == "table" and is_list(a) and is_list(b) then
    local r = {}
    for i = 1, #a do r[i] = a[i] end
    for i = 1, #b do r[#a + i] = b[i] end
    if tuples[a] then return tuple(r) end
    return J.list(r)
  end
  arith_error("+", a, b)
end

local function op_sub(a, b)
  local na, nb = numv(a), numv(b)
  if na and nb then return mknum(na - nb, isfloat(a) or isfloat(b)) end
  check_undef2(a, b)
  arith_error("-", a, b)
end

local function op_mul(a, b)
  local na, nb = numv(a), numv(b)
  if na and nb then return mknum(na * nb, isfloat(a) or isfloat(b)) end
  check_undef2(a, b)
  if type(a) == "number" and type(b) ~= "number" then a, b = b, a; na, nb = nb, na end
  if nb and not isfloat(b) then
    if type(a) == "string" then return nb > 0 and a:rep(nb) or "" end
    if type(a) == "table" and is_list(a) then
      local r = J.list({})
      for _ = 1, nb do for i = 1, #a do r[#r + 1] = a[i] end end
      return r
    end
  end
  arith_error("*", a, b)
end

local function op_div(a, b)
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("/", a, b) end
  if nb == 0 then rt_error("division by zero") end
  return J.float(na / nb)
end

local function op_floordiv(a, b)
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("//", a, b) end
  if nb == 0 then rt_error("integer division or modulo by zero") end
  return mknum(floor(na / nb), isfloat(a) or isfloat(b))
end

local percent_format

local function op_mod(a, b)
  if type(a) == "string" or getmetatable(a) == Markup then return percent_format(tostr(a), b) end
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("%", a, b) end
  if nb == 0 then rt_error("integer division or modulo by zero") end
  return mknum(na - floor(na / nb) * nb, isfloat(a) or isfloat(b))
end

local function op_pow(a, b)
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("**", a, b) end
  return mknum(na ^ nb, isfloat(a) or isfloat(b) or nb < 0)
end

local function op_neg(a)
  local na = numv(a)
  if not na then if is_undef(a) then undef_fail(a) end rt_error(fmt("bad operand type for unary -: '%s'", pytype(a))) end
  return mknum(-na, isfloat(a))
end

local function op_pos(a)
  local na = numv(a)
  if not na then if is_undef(a) then undef_fail(a) end rt_error(fmt("bad operand type for unary +: '%s'", pytype(a))) end
  return mknum(na, isfloat(a))
end

-- Python's `x in y`
local function op_in(x, y)
  local ty = type(y)
  if ty == "table" and getmetatable(y) == Markup then y = y.s; ty = "string" end
  if ty == "string" then
    if getmetatable(x) == Markup then x = x.s end
    if type(x) ~= "string" then rt_error(fmt("'in <string>' requires string as left operand, not %s", pytype(x))) end
    return find(y, x, 1, true) ~= nil
  end
  if ty == "table" then
    local mt = getmetatable(y)
    if mt == Undefined then return false end
    if mt == nil then
      if is_list(y) then
        for i = 1, #y do if eq(y[i], x) then return true end end
        return false
      end
      if type(x) == "string" or type(x) == "number" then return y[x] ~= nil end
      for k in pairs(y) do if eq(k, x) then return true end end
      return false
    end
  end
  rt_error(fmt("argument of type '%s' is not iterable", pytype(y)))
end

-- ---------------------------------------------------------------------------
-- iteration, length, attribute and item access
-- ---------------------------------------------------------------------------

-- the items a for loop (or list()) walks
local function iter_list(v)
  local t = type(v)
  if t == "table" then
    local mt = getmetatable(v)
    if mt == nil then
      if is_list(v) then return v end
      return dkeys(v)
    end
    if mt == Undefined then return {} end
    if mt == Markup then return uchars(v.s) end
  elseif t == "string" then
    return uchars(v)
  end
  rt_error(fmt("'%s' object is not iterable", pytype(v)))
end
M.iter_list = iter_list

local function length(v)
  local t = type(v)
  if t == "string" then return ulen(v) end
  if t == "table" then
    local mt = getmetatable(v)
    if mt == nil then
      if is_list(v) then return #v end
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      return n
    end
    if mt == Undefined then return 0 end
    if mt == Markup then return ulen(v.s) end
  end
  rt_error(fmt("object of type '%s' has no len()", pytype(v)))
end

local str_methods, dict_methods, list_methods = {}, {}, {}

local function unsafe(obj, name)
  return function() rt_error(fmt("access to attribute '%s' of '%s' object is unsafe", name, pytype(obj))) end
end

local list_unsafe = {append = 1, extend = 1, insert = 1, pop = 1, remove = 1, reverse = 1, sort = 1, clear = 1}
local dict_unsafe = {pop = 1, popitem = 1, setdefault = 1, update = 1, clear = 1}

-- obj.name (jinja2's getattr: the Python attribute first, then the item)
local function getattr(obj, name)
  local t = type(obj)
  if t == "table" then
    local mt = getmetatable(obj)
    if mt == nil then
      if is_list(obj) then
        local m = list_methods[name]
        if m then return function(args, kw) return m(obj, args, kw) end end
        if list_unsafe[name] then return unsafe(obj, name) end
        return undef(name, pytype(obj) .. " object")
      end
      local m = dict_methods[name]
      if m then return function(args, kw) return m(obj, args, kw) end end
      if dict_unsafe[name] then return unsafe(obj, name) end
      local v = obj[name]
      if v == nil then return undef(name, "dict object") end
      return v
    end
    if mt == Undefined then undef_fail(obj) end
    if mt == Namespace then
      local v = obj.attrs[name]
      if v == nil then return undef(name, "Namespace object") end
      return v
    end
    if mt == Loop then
      local v = obj[name]
      if v == nil then return undef(name, "LoopContext object") end
      return v
    end
    if mt == Markup then obj = obj.s; t = "string" end
  end
  if t == "string" then
    local m = str_methods[name]
    if m then return function(args, kw) return m(obj, args, kw) end end
  end
  return undef(name, pytype(obj) .. " object")
end
M.getattr = getattr

local function to_index(key)
  local n = numv(key)
  if n and n == floor(n) and not isfloat(key) then return n end
  return nil
end

-- obj[key] (jinja2's getitem: the item first, then the attribute)
local function getitem(obj, key)
  local t = type(obj)
  if t == "table" then
    local mt = getmetatable(obj)
    if mt == nil then
      if is_list(obj) then
        local i = to_index(key)
        if i then
          if i < 0 then i = i + #obj end
          local v = obj[i + 1]
          if i >= 0 and v ~= nil then return v end
          return undef(key, "list object", "list index out of range")
        end
        if type(key) == "string" then return getattr(obj, key) end
        return undef(key, "list object")
      end
      local k = key
      if getmetatable(k) == Float then k = k.v elseif type(k) == "boolean" then k = k and 1 or 0 end
      local v = obj[k]
      if v ~= nil then return v end
      if type(key) == "string" then return getattr(obj, key) end
      return undef(key, "dict object")
    end
    if mt == Undefined then undef_fail(obj) end
    if mt == Markup then obj = obj.s; t = "string" end
    if mt == Namespace or mt == Loop then
      if type(key) == "string" then return getattr(obj, key) end
      return undef(key, pytype(obj) .. " object")
    end
  end
  if t == "string" then
    local i = to_index(key)
    if i then
      local cs = is_ascii(obj) and obj or uchars(obj)
      local n = type(cs) == "string" and #cs or #cs
      if i < 0 then i = i + n end
      if i < 0 or i >= n then return undef(key, "str object") end
      if type(cs) == "string" then return sub(cs, i + 1, i + 1) end
      return cs[i + 1]
    end
    if type(key) == "string" then return getattr(obj, key) end
  end
  return undef(key, pytype(obj) .. " object")
end
M.getitem = getitem

-- Python slice indices -> list of 0-based positions
local function slice_positions(n, start, stop, step)
  step = step or 1
  if step == 0 then rt_error("slice step cannot be zero") end
  local pos = {}
  if step > 0 then
    if start == nil then start = 0 elseif start < 0 then start = math.max(start + n, 0) elseif start > n then start = n end
    if stop == nil then stop = n elseif stop < 0 then stop = math.max(stop + n, 0) elseif stop > n then stop = n end
    local i = start
    while i < stop do pos[#pos + 1] = i; i = i + step end
  else
    if start == nil then start = n - 1
    elseif start < 0 then start = start + n; if start < 0 then start = -1 end
    elseif start >= n then start = n - 1 end
    if stop == nil then stop = -1
    elseif stop < 0 then stop = stop + n; if stop < 0 then stop = -1 end
    elseif stop >= n then stop = n - 1 end
    local i = start
    while i > stop do pos[#pos + 1] = i; i = i + step end
  end
  return pos
end

local function slice_value(obj, start, stop, step)
  local function idx(v, what)
    if v == nil or v == null then return nil end
    local i = to_index(v)
    if not i then rt_error("slice " .. what .. " must be an integer or None") end
    return i
  end
  start, stop, step = idx(start, "start"), idx(stop, "stop"), idx(step, "step")
  if getmetatable(obj) == Markup then obj = obj.s end
  if type(obj) == "string" then
    local cs = uchars(obj)
    local out = {}
    for _, p in ipairs(slice_positions(#cs, start, stop, step)) do out[#out + 1] = cs[p + 1] end
    return concat(out)
  end
  if type(obj) == "table" and getmetatable(obj) == nil and is_list(obj) then
    local out = {}
    for _, p in ipairs(slice_positions(#obj, start, stop, step)) do out[#out + 1] = obj[p + 1] end
    if tuples[obj] then return tuple(out) end
    return J.list(out)
  end
  if is_undef(obj) then undef_fail(obj) end
  rt_error(fmt("'%s' object is not subscriptable", pytype(obj)))
end

-- call a template-visible callable: f(args, kwargs)
local function call(f, args, kw)
  if type(f) == "function" then return f(args, kw) end
  if is_undef(f) then undef_fail(f) end
  rt_error(fmt("'%s' object is not callable", pytype(f)))
end

-- argument helper for builtins: positional i or keyword name, else default
local function arg(args, kw, i, name, default)
  local v = args[i]
  if v == nil and kw then v = kw[name] end
  if v == nil then return default end
  return v
end

local function as_str(v, what)
  if type(v) == "string" then return v end
  if getmetatable(v) == Markup then return v.s end
  if is_undef(v) then undef_fail(v) end
  rt_error(fmt("%s must be str, not %s", what or "argument", pytype(v)))
end

-- ---------------------------------------------------------------------------
-- Python string formatting: "%s" % x and "{}".format(x)
-- ---------------------------------------------------------------------------

percent_format = function(s, values)
  local vals
  if type(values) == "table" and tuples[values] then vals = values else vals = {values} end
  local mapping = (type(values) == "table" and getmetatable(values) == nil and is_dict(values)) and values or nil
  local out, vi, pos = {}, 0, 1
  while true do
    local a = find(s, "%", pos, true)
    if not a then out[#out + 1] = sub(s, pos); break end
    out[#out + 1] = sub(s, pos, a - 1)
    local p = a + 1
    local key = s:match("^%(([^)]*)%)", p)
    if key then p = p + #key + 2 end
    local flags = s:match("^[-+ #0]*", p); p = p + #flags
    local width = s:match("^%d*", p); p = p + #width
    local prec = s:match("^%.(%d*)", p); if prec then p = p + #prec + 1 end
    local conv = sub(s, p, p)
    if conv == "" or not find("sdirfFeEgGxXoc%", conv, 1, true) then
      rt_error("unsupported format character '" .. conv .. "'")
    end
    pos = p + 1
    if conv == "%" then
      out[#out + 1] = "%"
    else
      local v
      if key and mapping then v = mapping[key] else vi = vi + 1; v = vals[vi] end
      if v == nil then rt_error("not enough arguments for format string") end
      local r
      if conv == "s" then r = tostr(v)
      elseif conv == "r" then r = repr(v)
      elseif conv == "d" or conv == "i" then
        local n = numv(v) or rt_error("%d format: a real number is required, not " .. pytype(v))
        r = fmt("%d", n >= 0 and floor(n) or -floor(-n))
      elseif conv == "c" then r = type(v) == "string" and v or J.utf8_char(numv(v))
      else
        local n = numv(v) or rt_error("must be real number, not " .. pytype(v))
        if conv == "x" or conv == "X" or conv == "o" then r = fmt("%" .. conv, n)
        else r = fmt("%" .. (prec and "." .. (prec == "" and "0" or prec) or "") .. conv, n) end
      end
      if width ~= "" then
        local pad = tonumber(width) - ulen(r)
        if pad > 0 then
          if find(flags, "-", 1, true) then r = r .. (" "):rep(pad)
          elseif find(flags, "0", 1, true) and conv ~= "s" and conv ~= "r" then r = ("0"):rep(pad) .. r
          else r = (" "):rep(pad) .. r end
        end
      end
      out[#out + 1] = r
    end
  end
  if vi < #vals and not mapping then rt_error("not all arguments converted during string formatting") end
  return concat(out)
end

local function format_spec(v, spec)
  if spec == "" then return tostr(v) end
  local fill, align, sign, zero, width, prec, conv =
    spec:match("^([^<>=^]?)([<>=^]?)([-+ ]?)(0?)(%d*)%.?(%d*)([sdfeEgGxXo%%]?)$")
  if not align then rt_error("unsupported format spec '" .. spec .. "'") end
  if align == "" and fill ~= "" then fill = "" end
  local r
  if conv == "d" then r = fmt("%d", numv(v))
  elseif conv == "f" or conv == "e" or conv == "E" or conv == "g" or conv == "G" then
    r = fmt("%" .. (prec ~= "" and "." .. prec or (conv == "f" and ".6" or "")) .. conv, numv(v))
  elseif conv == "%" then r = fmt("%." .. (prec ~= "" and prec or "6") .. "f%%", numv(v) * 100)
  elseif conv == "x" or conv == "X" or conv == "o" then r = fmt("%" .. conv, numv(v))
  elseif prec ~= "" and type(v) == "string" then r = table.concat(uchars(v), "", 1, math.min(tonumber(prec), ulen(v)))
  elseif prec ~= "" and numv(v) then r = fmt("%." .. prec .. "f", numv(v))
  else r = tostr(v) end
  if sign == "+" and numv(v) and numv(v) >= 0 then r = "+" .. r end
  local w = tonumber(width)
  if w then
    local pad = w - ulen(r)
    if pad > 0 then
      local f = fill ~= "" and fill or (zero ~= "" and "0" or " ")
      local al = align ~= "" and align or ((numv(v) and type(v) ~= "string") and ">" or "<")
      if al == "<" then r = r .. f:rep(pad)
      elseif al == "^" then r = f:rep(floor(pad / 2)) .. r .. f:rep(pad - floor(pad / 2))
      else r = f:rep(pad) .. r end
    end
  end
  return r
end

local function brace_format(s, args, kw)
  local auto = 0
  local out = s:gsub("{{", "\1"):gsub("}}", "\2"):gsub("{([^{}]*)}", function(field)
    local name, spec = field:match("^([^:!]*)!?[rsa]?:?(.*)$")
    local v
    if name == "" then
      v = args[auto + 1]; auto = auto + 1
    elseif name:match("^%d+$") then
      v = args[tonumber(name) + 1]
    else
      local base, rest = name:match("^([%w_]+)(.*)$")
      v = kw and kw[base]
      for part in (rest or ""):gmatch("[%.%[]([^%.%]]+)%]?") do
        v = part:match("^%d+$") and getitem(v, tonumber(part)) or getitem(v, part)
      end
    end
    if v == nil then rt_error("format: no value for field {" .. field .. "}") end
    return format_spec(v, spec or "")
  end)
  return (out:gsub("\1", "{"):gsub("\2", "}"))
end

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

local function title_case(s)
  local out, prev_cased = {}, false
  for _, c in ipairs(uchars(s)) do
    local lo, up = case_map(c, false), case_map(c, true)
    local cased = lo ~= up
    if cased then
      out[#out + 1] = prev_cased and lo or up
    else
      out[#out + 1] = c
    end
    prev_cased = cased
  end
  return concat(out)
end

local function capitalize(s)
  local cs = uchars(s)
  if #cs == 0 then return "" end
  return case_map(cs[1], true) .. case_map(concat(cs, "", 2), false)
end

local function pad_center(s, width, fillc)
  local n = ulen(s)
  if width <= n then return s end
  local total = width - n
  local left = floor(total / 2) + ((total % 2 == 1 and width % 2 == 1) and 1 or 0)
  return fillc:rep(left) .. s .. fillc:rep(total - left)
end

local function char_class(s, pat)
  if s == "" then return false end
  return not find(s, pat)
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
str_methods.casefold = str_methods.lower
str_methods.title = function(s) return title_case(s) end
str_methods.capitalize = function(s) return capitalize(s) end
str_methods.swapcase = function(s)
  local out = {}
  for _, c in ipairs(uchars(s)) do
    local up = case_map(c, true)
    out[#out + 1] = up == c and case_map(c, false) or up
  end
  return concat(out)
end
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
str_methods.isdigit = function(s) return char_class(s, "[^0-9]") end
str_methods.isdecimal = str_methods.isdigit
str_methods.isnumeric = str_methods.isdigit
str_methods.isalpha = function(s) return char_class(s, "[^%a\128-\255]") end
str_methods.isalnum = function(s) return char_class(s, "[^%w\128-\255]") end
str_methods.isspace = function(s)
  if s == "" then return false end
  for _, c in ipairs(uchars(s)) do if not is_space_char(c) then return false end end
  return true
end
str_methods.islower = function(s) return s:find("%l") ~= nil and case_map(s, false) == s end
str_methods.isupper = function(s) return s:find("%u") ~= nil and case_map(s, true) == s end
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

-- ---------------------------------------------------------------------------
-- lexer
-- ---------------------------------------------------------------------------

local operators2 = {["//"] = true, ["**"] = true, ["=="] = true, ["!="] = true, [">="] = true, ["<="] = true}
local operators1 = {}
for c in ("+-/*%~[](){}><=.:|,;"):gmatch(".") do operators1[c] = true end

local function syntax_error(name, line, msg)
  error(fmt("jinja: %s:%d: syntax error: %s", name, line, msg), 0)
end

local simple_esc = {n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v",
  ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["\n"] = ""}

-- Python's unicode-escape decoding of a string literal's body
local function unescape(s)
  if not find(s, "\\", 1, true) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local a = find(s, "\\", i, true)
    if not a then out[#out + 1] = sub(s, i); break end
    out[#out + 1] = sub(s, i, a - 1)
    local c = sub(s, a + 1, a + 1)
    if simple_esc[c] then
      out[#out + 1] = simple_esc[c]; i = a + 2
    elseif c == "x" and s:match("^%x%x", a + 2) then
      out[#out + 1] = J.utf8_char(tonumber(sub(s, a + 2, a + 3), 16)); i = a + 4
    elseif c == "u" and s:match("^%x%x%x%x", a + 2) then
      local cp = tonumber(sub(s, a + 2, a + 5), 16)
      i = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF and s:match("^\\u[dD][c-fC-F]%x%x", i) then
        cp = 0x10000 + (cp - 0xD800) * 1024 + (tonumber(sub(s, i + 2, i + 5), 16) - 0xDC00)
        i = i + 6
      end
      out[#out + 1] = J.utf8_char(cp)
    elseif c == "U" and s:match("^%x%x%x%x%x%x%x%x", a + 2) then
      out[#out + 1] = J.utf8_char(tonumber(sub(s, a + 2, a + 9), 16)); i = a + 10
    elseif c:match("[0-7]") then
      local oct = s:match("^[0-7][0-7]?[0-7]?", a + 1)
      out[#out + 1] = J.utf8_char(tonumber(oct, 8)); i = a + 1 + #oct
    else
      out[#out + 1] = "\\"; i = a + 1
    end
  end
  return concat(out)
end

local function count_nl(s)
  local _, n = s:gsub("\n", "")
  return n
end

-- tokens: {type, value, line}; types: data, var_begin, var_end, block_begin,
-- block_end, name, string, integer, float, op, eof
local function tokenize(src, name)
  src = src:gsub("\r\n", "\n"):gsub("\r", "\n")
  if sub(src, -1) == "\n" then src = sub(src, 1, -2) end -- keep_trailing_newline=False
  local toks = {}
  local pos, line, n = 1, 1, #src
  local line_starting = true
  local function emit(t, v, l) toks[#toks + 1] = {t, v, l} end

  -- lex the inside of {{ }} / {% %} from position p; returns the position after the end tag
  local function lex_tag(p, is_block, start_line)
    local balance = {}
    while true do
      local ws_s, ws_e = find(src, "^%s+", p)
      if ws_s then
        line = line + count_nl(sub(src, ws_s, ws_e))
        p = ws_e + 1
      end
      if p > n then syntax_error(name, start_line, is_block and "missing end of block tag '%}'" or "missing end of print tag '}}'") end
      if #balance == 0 then
        if is_block then
          if sub(src, p, p + 2) == "+%}" then emit("block_end", "", line); line_starting = false; return p + 3 end
          if sub(src, p, p + 2) == "-%}" then
            local _, e = find(src, "^%s*", p + 3)
            local ws = sub(src, p + 3, e)
            emit("block_end", "", line)
            line = line + count_nl(ws)
            line_starting = sub(ws, -1) == "\n"
            return e + 1
          end
          if sub(src, p, p + 1) == "%}" then
            emit("block_end", "", line)
            if sub(src, p + 2, p + 2) == "\n" then line = line + 1; line_starting = true; return p + 3 end
            line_starting = false
            return p + 2
          end
        else
          if sub(src, p, p + 2) == "-}}" then
            local _, e = find(src, "^%s*", p + 3)
            local ws = sub(src, p + 3, e)
            emit("var_end", "", line)
            line = line + count_nl(ws)
            line_starting = sub(ws, -1) == "\n"
            return e + 1
          end
          if sub(src, p, p + 1) == "}}" then emit("var_end", "", line); line_starting = false; return p + 2 end
        end
      end
      local c = sub(src, p, p)
      -- numbers: float first, then integer
      local fl = src:match("^%d[%d_]*%.%d[%d_]*[eE][-+]?%d[%d_]*", p) or src:match("^%d[%d_]*%.%d[%d_]*", p)
        or src:match("^%d[%d_]*[eE][-+]?%d[%d_]*", p)
      if fl and sub(src, p - 1, p - 1) ~= "." then
        emit("float", J.float(tonumber((fl:gsub("_", "")))), line); p = p + #fl
      elseif c:match("%d") then
        local lit = src:match("^0[bB][01_]+", p) or src:match("^0[oO][0-7_]+", p) or src:match("^0[xX][%x_]+", p)
        local v
        if lit then
          local base = ({b = 2, o = 8, x = 16})[lit:sub(2, 2):lower()]
          v = tonumber((lit:sub(3):gsub("_", "")), base)
        else
          lit = src:match("^%d[%d_]*", p)
          v = tonumber((lit:gsub("_", "")))
        end
        emit("integer", v, line); p = p + #lit
      elseif c:match("[%a_]") then
        local w = src:match("^[%w_]+", p)
        emit("name", w, line); p = p + #w
      elseif c == "'" or c == '"' then
        local q = p + 1
        while true do
          local a = find(src, "[\\" .. c .. "]", q)
          if not a then syntax_error(name, line, "unexpected end of string") end
          if sub(src, a, a) == "\\" then q = a + 2 else q = a; break end
        end
        local body = sub(src, p + 1, q - 1)
        emit("string", unescape(body), line)
        line = line + count_nl(body)
        p = q + 1
      else
        local two = sub(src, p, p + 1)
        local op
        if operators2[two] then op = two elseif operators1[c] then op = c end
        if not op then syntax_error(name, line, fmt("unexpected char %q", c)) end
        if op == "{" then balance[#balance + 1] = "}"
        elseif op == "(" then balance[#balance + 1] = ")"
        elseif op == "[" then balance[#balance + 1] = "]"
        elseif op == "}" or op == ")" or op == "]" then
          local want = table.remove(balance)
          if not want then syntax_error(name, line, "unexpected '" .. op .. "'") end
          if want ~= op then syntax_error(name, line, fmt("unexpected '%s', expected '%s'", op, want)) end
        end
        emit("op", op, line); p = p + #op
      end
    end
  end

  local function strip_text(text, sign, lstrip_ok)
    if sign == "-" then return (text:gsub("%s+$", "")) end
    if sign ~= "+" and lstrip_ok then
      local l_pos = 0
      local q = 0
      while true do
        q = find(text, "\n", q + 1, true)
        if not q then break end
        l_pos = q
      end
      if l_pos > 0 or line_starting then
        local rest = sub(text, l_pos + 1)
        if rest ~= "" and not find(rest, "%S") then return sub(text, 1, l_pos) end
      end
    end
    return text
  end

  while pos <= n do
    local s = find(src, "{[{%%#]", pos)
    if not s then
      emit("data", sub(src, pos), line)
      break
    end
    local text = sub(src, pos, s - 1)
    local kind = sub(src, s + 1, s + 1)
    local sign = sub(src, s + 2, s + 2)
    if sign ~= "-" and sign ~= "+" then sign = "" end
    local text_lines = count_nl(text)
    -- {% raw %} ... {% endraw %}
    local raw_e
    if kind == "%" then
      local _, e = find(src, "^%s*raw%s*%-%%}%s*", s + 2 + #sign)
      if not e then _, e = find(src, "^%s*raw%s*%%}", s + 2 + #sign) end
      raw_e = e
    end
    text = strip_text(text, sign, kind ~= "{")
    if text ~= "" then emit("data", text, line) end
    line = line + text_lines
    if raw_e then
      local start_line = line
      line = line + count_nl(sub(src, s, raw_e))
      line_starting = sub(src, raw_e, raw_e) == "\n"
      -- find {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)
      local q = raw_e + 1
      local a, b, esign
      while true do
        a = find(src, "{%", q, true)
        if not a then syntax_error(name, start_line, "missing end of raw directive") end
        local sg = sub(src, a + 2, a + 2)
        if sg ~= "-" and sg ~= "+" then sg = "" end
        local _, e = find(src, "^%s*endraw%s*", a + 2 + #sg)
        if e then
          esign = sg
          if sub(src, e + 1, e + 3) == "+%}" then b = e + 3
          elseif sub(src, e + 1, e + 3) == "-%}" then local _, e2 = find(src, "^%s*", e + 4); b = e2
          elseif sub(src, e + 1, e + 2) == "%}" then b = e + 2; if sub(src, b + 1, b + 1) == "\n" then b = b + 1 end
          else e = nil end
          if e then break end
        end
        q = a + 2
      end
      local body = sub(src, raw_e + 1, a - 1)
      local body_lines = count_nl(body)
      body = strip_text(body, esign, true)
      if body ~= "" then emit("data", body, line) end
      line = line + body_lines + count_nl(sub(src, a, b))
      line_starting = sub(src, b, b) == "\n"
      pos = b + 1
    elseif kind == "#" then
      local start_line = line
      local q = s + 2
      local e
      while true do
        local a = find(src, "#}", q, true)
        if not a then syntax_error(name, start_line, "missing end of comment tag") end
        local prev = sub(src, a - 1, a - 1)
        if a - 1 >= s + 2 + #sign and prev == "-" then
          local _, e2 = find(src, "^%s*", a + 2); e = e2
        elseif a - 1 >= s + 2 + #sign and prev == "+" then
          e = a + 1
        else
          e = a + 1
          if sub(src, e + 1, e + 1) == "\n" then e = e + 1 end
        end
        break
      end
      line = line + count_nl(sub(src, s, e))
      line_starting = sub(src, e, e) == "\n"
      pos = e + 1
    elseif kind == "{" then
      emit("var_begin", "", line)
      pos = lex_tag(s + 2 + #sign, false, line)
    else
      emit("block_begin", "", line)
      pos = lex_tag(s + 2 + #sign, true, line)
    end
  end
  emit("eof", "", line)
  return toks
end
M.tokenize = tokenize

-- ---------------------------------------------------------------------------
-- parser (jinja2's grammar and precedence)
-- ---------------------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

function Parser:peek(k) return self.toks[self.i + (k or 0)] end
function Parser:next() local t = self.toks[self.i]; self.i = self.i + 1; return t end
function Parser:fail(msg, tok) syntax_error(self.name, (tok or self:peek())[3], msg) end
function Parser:is(ty, val, k)
  local t = self.toks[self.i + (k or 0)]
  return t[1] == ty and (val == nil or t[2] == val)
end
function Parser:skip_if(ty, val)
  if self:is(ty, val) then return self:next() end
  return nil
end
local function describe(t)
  if t[1] == "eof" then return "end of template" end
  if t[1] == "block_end" then return "end of statement block" end
  if t[1] == "var_end" then return "end of print statement" end
  return fmt("'%s'", tostring(t[2]))
end
function Parser:expect(ty, val)
  local t = self:peek()
  if t[1] ~= ty or (val ~= nil and t[2] ~= val) then
    self:fail(fmt("expected %s, got %s", val and ("'" .. val .. "'") or ty, describe(t)))
  end
  return self:next()
end

local compare_ops = {["=="] = "eq", ["!="] = "ne", ["<"] = "lt", ["<="] = "lteq", [">"] = "gt", [">="] = "gteq"}

function Parser:parse_expression(no_cond)
  if no_cond then return self:parse_or() end
  return self:parse_condexpr()
end

function Parser:parse_condexpr()
  local e1 = self:parse_or()
  while self:skip_if("name", "if") do
    local cond = self:parse_or()
    local e3
    if self:skip_if("name", "else") then e3 = self:parse_condexpr() end
    e1 = {k = "cond", test = cond, a = e1, b = e3}
  end
  return e1
end

function Parser:parse_or()
  local l = self:parse_and()
  while self:skip_if("name", "or") do l = {k = "or", a = l, b = self:parse_and()} end
  return l
end

function Parser:parse_and()
  local l = self:parse_not()
  while self:skip_if("name", "and") do l = {k = "and", a = l, b = self:parse_not()} end
  return l
end

function Parser:parse_not()
  if self:skip_if("name", "not") then return {k = "not", a = self:parse_not()} end
  return self:parse_compare()
end

function Parser:parse_compare()
  local e = self:parse_math1()
  local ops = {}
  while true do
    local t = self:peek()
    if t[1] == "op" and compare_ops[t[2]] then
      self:next()
      ops[#ops + 1] = {compare_ops[t[2]], self:parse_math1()}
    elseif self:skip_if("name", "in") then
      ops[#ops + 1] = {"in", self:parse_math1()}
    elseif self:is("name", "not") and self:is("name", "in", 1) then
      self.i = self.i + 2
      ops[#ops + 1] = {"notin", self:parse_math1()}
    else
      break
    end
  end
  if #ops == 0 then return e end
  return {k = "compare", a = e, ops = ops}
end

function Parser:parse_math1()
  local l = self:parse_concat()
  while self:is("op", "+") or self:is("op", "-") do
    local op = self:next()[2]
    l = {k = "bin", op = op, a = l, b = self:parse_concat()}
  end
  return l
end

function Parser:parse_concat()
  local args = {self:parse_math2()}
  while self:skip_if("op", "~") do args[#args + 1] = self:parse_math2() end
  if #args == 1 then return args[1] end
  return {k = "concat", items = args}
end

function Parser:parse_math2()
  local l = self:parse_pow()
  while self:is("op", "*") or self:is("op", "/") or self:is("op", "//") or self:is("op", "%") do
    local op = self:next()[2]
    l = {k = "bin", op = op, a = l, b = self:parse_pow()}
  end
  return l
end

function Parser:parse_pow()
  local l = self:parse_unary()
  while self:skip_if("op", "**") do l = {k = "bin", op = "**", a = l, b = self:parse_unary()} end
  return l
end

function Parser:parse_unary(with_filter)
  local node
  if self:skip_if("op", "-") then
    node = {k = "neg", a = self:parse_unary(false)}
  elseif self:skip_if("op", "+") then
    node = {k = "pos", a = self:parse_unary(false)}
  else
    node = self:parse_primary()
  end
  node = self:parse_postfix(node)
  if with_filter ~= false then node = self:parse_filter_expr(node) end
  return node
end

function Parser:parse_primary()
  local t = self:peek()
  if t[1] == "name" then
    self:next()
    local v = t[2]
    if v == "true" or v == "True" then return {k = "const", v = true} end
    if v == "false" or v == "False" then return {k = "const", v = false} end
    if v == "none" or v == "None" then return {k = "const", v = null} end
    if v == "loop" then self.loop_refs = self.loop_refs + 1 end
    return {k = "name", name = v, line = t[3]}
  elseif t[1] == "string" then
    self:next()
    local parts = {t[2]}
    while self:is("string") do parts[#parts + 1] = self:next()[2] end
    return {k = "const", v = concat(parts)}
  elseif t[1] == "integer" or t[1] == "float" then
    self:next()
    return {k = "const", v = t[2]}
  elseif self:skip_if("op", "(") then
    local e = self:parse_tuple(true)
    self:expect("op", ")")
    return e
  elseif self:is("op", "[") then
    return self:parse_list()
  elseif self:is("op", "{") then
    return self:parse_dict()
  end
  self:fail("unexpected " .. describe(t))
end

-- comma-separated expressions; a tuple if there is a comma (or explicit ())
function Parser:parse_tuple(explicit, simplified, extra_end, with_condexpr)
  local items = {}
  local is_tuple = false
  local function at_end()
    local t = self:peek()
    if t[1] == "var_end" or t[1] == "block_end" or t[1] == "eof" then return true end
    if explicit and t[1] == "op" and t[2] == ")" then return true end
    if extra_end and t[1] == "name" and extra_end[t[2]] then return true end
    return false
  end
  while true do
    if #items > 0 then
      if not self:skip_if("op", ",") then break end
      is_tuple = true
    end
    if at_end() then break end
    if simplified then
      items[#items + 1] = self:parse_primary()
    elseif with_condexpr == false then
      items[#items + 1] = self:parse_expression(true)
    else
      items[#items + 1] = self:parse_expression()
    end
  end
  if not is_tuple then
    if #items > 0 then return items[1] end
    if not explicit then self:fail("expected an expression, got " .. describe(self:peek())) end
  end
  return {k = "tuple", items = items}
end

function Parser:parse_list()
  self:expect("op", "[")
  local items = {}
  while not self:is("op", "]") do
    if #items > 0 then self:expect("op", ",") end
    if self:is("op", "]") then break end
    items[#items + 1] = self:parse_expression()
  end
  self:expect("op", "]")
  return {k = "list", items = items}
end

function Parser:parse_dict()
  self:expect("op", "{")
  local keys, vals = {}, {}
  while not self:is("op", "}") do
    if #keys > 0 then self:expect("op", ",") end
    if self:is("op", "}") then break end
    keys[#keys + 1] = self:parse_expression()
    self:expect("op", ":")
    vals[#vals + 1] = self:parse_expression()
  end
  self:expect("op", "}")
  return {k = "dict", keys = keys, vals = vals}
end

function Parser:parse_postfix(node)
  while true do
    if self:is("op", ".") or self:is("op", "[") then
      node = self:parse_subscript(node)
    elseif self:is("op", "(") then
      node = self:parse_call(node)
    else
      break
    end
  end
  return node
end

function Parser:parse_filter_expr(node)
  while true do
    if self:is("op", "|") then
      node = self:parse_filter(node)
    elseif self:is("name", "is") then
      node = self:parse_test(node)
    elseif self:is("op", "(") then
      node = self:parse_call(node)
    else
      break
    end
  end
  return node
end

function Parser:parse_subscript(node)
  local t = self:next()
  if t[2] == "." then
    local a = self:next()
    if a[1] == "name" then return {k = "getattr", obj = node, name = a[2]} end
    if a[1] == "integer" then return {k = "getitem", obj = node, key = {k = "const", v = a[2]}} end
    self:fail("expected name or number", a)
  end
  -- [ ... ]
  local args = {}
  while not self:is("op", "]") do
    if #args > 0 then self:expect("op", ",") end
    args[#args + 1] = self:parse_subscribed()
  end
  self:expect("op", "]")
  if #args == 1 then
    local a = args[1]
    if a.k == "slice" then return {k = "slice", obj = node, start = a.start, stop = a.stop, step = a.step} end
    return {k = "getitem", obj = node, key = a}
  end
  return {k = "getitem", obj = node, key = {k = "tuple", items = args}}
end

function Parser:parse_subscribed()
  local args = {}
  if self:is("op", ":") then
    self:next()
    args[1] = false
  else
    local e = self:parse_expression()
    if not self:is("op", ":") then return e end
    self:next()
    args[1] = e
  end
  if self:is("op", ":") then
    args[2] = false
  elseif not self:is("op", "]") and not self:is("op", ",") then
    args[2] = self:parse_expression()
  else
    args[2] = false
  end
  if self:skip_if("op", ":") then
    if not self:is("op", "]") and not self:is("op", ",") then args[3] = self:parse_expression() else args[3] = false end
  else
    args[3] = false
  end
  return {k = "slice", start = args[1] or nil, stop = args[2] or nil, step = args[3] or nil}
end

function Parser:parse_call_args()
  self:expect("op", "(")
  local args, kwargs, knames = {}, {}, {}
  local require_comma = false
  while not self:is("op", ")") do
    if require_comma then
      self:expect("op", ",")
      if self:is("op", ")") then break end
    end
    if self:is("op", "*") or self:is("op", "**") then
      self:fail("*args / **kwargs in calls are not supported")
    end
    if self:is("name") and self:is("op", "=", 1) then
      local key = self:next()[2]
      self:next()
      knames[#knames + 1] = key
      kwargs[#kwargs + 1] = self:parse_expression()
    else
      if #kwargs > 0 then self:fail("positional argument follows keyword argument") end
      args[#args + 1] = self:parse_expression()
    end
    require_comma = true
  end
  self:expect("op", ")")
  return args, kwargs, knames
end

function Parser:parse_call(node)
  local line = self:peek()[3]
  local args, kwargs, knames = self:parse_call_args()
  return {k = "call", fn = node, args = args, kwargs = kwargs, knames = knames, line = line}
end

function Parser:parse_filter(node, start_inline)
  while self:is("op", "|") or start_inline do
    if not start_inline then self:next() end
    start_inline = false
    local t = self:expect("name")
    local name = t[2]
    while self:skip_if("op", ".") do name = name .. "." .. self:expect("name")[2] end
    local args, kwargs, knames = {}, {}, {}
    if self:is("op", "(") then args, kwargs, knames = self:parse_call_args() end
    node = {k = "filter", name = name, obj = node, args = args, kwargs = kwargs, knames = knames, line = t[3]}
  end
  return node
end

local test_arg_start = {name = true, string = true, integer = true, float = true}

function Parser:parse_test(node)
  local tok = self:next() -- 'is'
  local negated = self:skip_if("name", "not") ~= nil
  local name = self:expect("name")[2]
  while self:skip_if("op", ".") do name = name .. "." .. self:expect("name")[2] end
  local args, kwargs, knames = {}, {}, {}
  local t = self:peek()
  if self:is("op", "(") then
    args, kwargs, knames = self:parse_call_args()
  elseif (test_arg_start[t[1]] or (t[1] == "op" and (t[2] == "(" or t[2] == "[" or t[2] == "{")))
    and not (t[1] == "name" and (t[2] == "else" or t[2] == "or" or t[2] == "and")) then
    if t[1] == "name" and t[2] == "is" then self:fail("You cannot chain multiple tests with is") end
    local a = self:parse_primary()
    args = {self:parse_postfix(a)}
  end
  node = {k = "test", name = name, obj = node, args = args, kwargs = kwargs, knames = knames, line = tok[3]}
  if negated then node = {k = "not", a = node} end
  return node
end

-- assignment targets: name, name.attr (namespace), or a tuple of names
function Parser:parse_assign_target(with_tuple, name_only, extra_end)
  if name_only or not with_tuple then
    local t = self:expect("name")
    if not name_only and self:is("op", ".") then
      self:next()
      local attr = self:expect("name")[2]
      return {k = "nsref", name = t[2], attr = attr}
    end
    return {k = "name", name = t[2]}
  end
  local target
  if self:is("name") and self:is("op", ".", 1) then
    local nm = self:next()[2]; self:next()
    local attr = self:expect("name")[2]
    return {k = "nsref", name = nm, attr = attr}
  end
  target = self:parse_tuple(false, true, extra_end)
  if target.k == "tuple" then
    for _, it in ipairs(target.items) do
      if it.k ~= "name" then self:fail("can't assign to " .. it.k) end
    end
  elseif target.k ~= "name" then
    self:fail("can't assign to " .. target.k)
  end
  return target
end

-- statements
local end_of = {}

function Parser:subparse(end_tokens)
  local body = {}
  while true do
    local t = self:peek()
    if t[1] == "eof" then
      if end_tokens then
        self:fail(fmt("unexpected end of template, expected one of %s", concat(end_tokens, ", ")))
      end
      return body
    elseif t[1] == "data" then
      self:next()
      body[#body + 1] = {k = "data", v = t[2], line = t[3]}
    elseif t[1] == "var_begin" then
      self:next()
      local e = self:parse_tuple()
      self:expect("var_end")
      body[#body + 1] = {k = "output", e = e, line = t[3]}
    elseif t[1] == "block_begin" then
      local nt = self:peek(1)
      if end_tokens and nt[1] == "name" then
        for _, et in ipairs(end_tokens) do
          if nt[2] == et then return body, et end
        end
      end
      self:next()
      body[#body + 1] = self:parse_statement()
    else
      self:fail("unexpected " .. describe(t))
    end
  end
end

-- consume `{% name` for an end/middle tag (subparse stopped before it)
function Parser:take_tag(name)
  self:expect("block_begin")
  self:expect("name", name)
end

function Parser:parse_statement()
  local t = self:peek()
  if t[1] ~= "name" then self:fail("tag name expected") end
  local name = t[2]
  local f = self["stmt_" .. name]
  if not f then
    if end_of[name] then self:fail(fmt("encountered unknown tag '%s'; jinja was looking for a matching '%s'", name, end_of[name])) end
    self:fail(fmt("encountered unknown tag '%s'", name))
  end
  self:next()
  local node = f(self, t[3])
  node.line = node.line or t[3]
  return node
end

function Parser:stmt_if(line)
  local node = {k = "if", branches = {}, line = line}
  local cond = self:parse_tuple(false, false, nil, false)
  self:expect("block_end")
  while true do
    local body, tag = self:subparse({"elif", "else", "endif"})
    node.branches[#node.branches + 1] = {cond, body}
    self:take_tag(tag)
    if tag == "elif" then
      cond = self:parse_tuple(false, false, nil, false)
      self:expect("block_end")
    elseif tag == "else" then
      self:expect("block_end")
      node.else_ = self:subparse({"endif"})
      self:take_tag("endif")
      self:expect("block_end")
      break
    else
      self:expect("block_end")
      break
    end
  end
  return node
end

function Parser:stmt_for(line)
  local target = self:parse_assign_target(true, false, {["in"] = true})
  if target.k == "nsref" then self:fail("can't assign to namespace attribute in a for loop") end
  self:expect("name", "in")
  local iter = self:parse_tuple(false, false, {recursive = true}, false)
  local cond
  if self:skip_if("name", "if") then cond = self:parse_expression() end
  local recursive = self:skip_if("name", "recursive") ~= nil
  if recursive then self:fail("recursive for loops are not supported") end
  self:expect("block_end")
  local refs0 = self.loop_refs
  local body, tag = self:subparse({"endfor", "else"})
  local uses_loop = self.loop_refs > refs0
  local else_
  self:take_tag(tag)
  self:expect("block_end")
  if tag == "else" then
    else_ = self:subparse({"endfor"})
    self:take_tag("endfor")
    self:expect("block_end")
  end
  return {k = "for", target = target, iter = iter, cond = cond, body = body, else_ = else_, uses_loop = uses_loop,
    line = line}
end

function Parser:stmt_set(line)
  local target = self:parse_assign_target(true)
  if self:skip_if("op", "=") then
    local e = self:parse_tuple()
    self:expect("block_end")
    return {k = "set", target = target, e = e, line = line}
  end
  -- block set, optionally filtered: {% set x | trim %}...{% endset %}
  local filter
  if self:is("op", "|") then filter = self:parse_filter({k = "blockval"}) end
  self:expect("block_end")
  local body = self:subparse({"endset"})
  self:take_tag("endset")
  self:expect("block_end")
  return {k = "setblock", target = target, body = body, filter = filter, line = line}
end

function Parser:parse_signature()
  local args, defaults = {}, {}
  self:expect("op", "(")
  while not self:is("op", ")") do
    if #args > 0 then self:expect("op", ",") end
    local a = self:expect("name")[2]
    if self:skip_if("op", "=") then
      defaults[#args + 1] = self:parse_expression()
    elseif next(defaults) then
      self:fail("non-default argument follows default argument")
    end
    args[#args + 1] = a
  end
  self:expect("op", ")")
  return args, defaults
end

function Parser:stmt_macro(line)
  local name = self:expect("name")[2]
  local args, defaults = self:parse_signature()
  self:expect("block_end")
  local body = self:subparse({"endmacro"})
  self:take_tag("endmacro")
  self:skip_if("name", name)
  self:expect("block_end")
  return {k = "macro", name = name, args = args, defaults = defaults, body = body, line = line}
end

function Parser:stmt_call(line)
  local cargs, cdefaults = {}, {}
  if self:is("op", "(") then cargs, cdefaults = self:parse_signature() end
  local callexpr = self:parse_expression()
  if callexpr.k ~= "call" then self:fail("expected call") end
  self:expect("block_end")
  local body = self:subparse({"endcall"})
  self:take_tag("endcall")
  self:expect("block_end")
  return {k = "callblock", call = callexpr, args = cargs, defaults = cdefaults, body = body, line = line}
end

function Parser:stmt_filter(line)
  local f = self:parse_filter({k = "blockval"}, true)
  self:expect("block_end")
  local body = self:subparse({"endfilter"})
  self:take_tag("endfilter")
  self:expect("block_end")
  return {k = "filterblock", filter = f, body = body, line = line}
end

function Parser:stmt_with(line)
  local targets, values = {}, {}
  while not self:is("block_end") do
    if #targets > 0 then self:expect("op", ",") end
    targets[#targets + 1] = self:parse_assign_target(false, true)
    self:expect("op", "=")
    values[#values + 1] = self:parse_expression()
  end
  self:expect("block_end")
  local body = self:subparse({"endwith"})
  self:take_tag("endwith")
  self:expect("block_end")
  return {k = "with", targets = targets, values = values, body = body, line = line}
end

-- transformers' {% generation %} marks assistant text; rendering is unchanged
function Parser:stmt_generation(line)
  self:expect("block_end")
  local body = self:subparse({"endgeneration"})
  self:take_tag("endgeneration")
  self:expect("block_end")
  return {k = "scope", body = body, line = line, same_frame = true}
end

function Parser:stmt_break(line) self:expect("block_end"); return {k = "break", line = line} end
function Parser:stmt_continue(line) self:expect("block_end"); return {k = "continue", line = line} end

for _, p in ipairs({{"endif", "if"}, {"elif", "if"}, {"else", "if/for"}, {"endfor", "for"}, {"endset", "set"},
  {"endmacro", "macro"}, {"endcall", "call"}, {"endfilter", "filter"}, {"endwith", "with"},
  {"endgeneration", "generation"}}) do
  end_of[p[1]] = "end of " .. p[2]
end

-- ---------------------------------------------------------------------------
-- filters and tests
-- ---------------------------------------------------------------------------

local filters, tests = {}, {}
M.filters, M.tests = filters, tests

local function attr_getter(attribute, default)
  if attribute == nil or attribute == null then return function(x) return x end end
  local parts = {}
  if type(attribute) == "number" then
    parts[1] = attribute
  else
    for p in tostr(attribute):gmatch("[^%.]+") do parts[#parts + 1] = tonumber(p) or p end
  end
  return function(x)
    for _, p in ipairs(parts) do
      x = getitem(x, p)
      if is_undef(x) and default ~= nil then return default end
    end
    return x
  end
end

local function sort_key_fn(case_sensitive, attribute)
  local get = attr_getter(attribute)
  return function(x)
    x = get(x)
    if not case_sensitive and type(x) == "string" then return case_map(x, false) end
    return x
  end
end

local function html_escape(s)
  return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&#34;", ["'"] = "&#39;"}))
end

local function to_int(v, default, base)
  local n = numv(v)
  if n then
    if n ~= n or n == huge or n == -huge then return default end
    return n >= 0 and floor(n) or -floor(-n)
  end
  if getmetatable(v) == Markup then v = v.s end
  if is_undef(v) then undef_fail(v) end
  if type(v) == "string" then
    local s = v:gsub("^%s+", ""):gsub("%s+$", ""):gsub("_", "")
    base = base or 10
    local ok = base == 10 and s:match("^[-+]?%d+$") or (base ~= 10 and s:match("^[-+]?%w+$"))
    if ok then
      local r = tonumber(s, base)
      if r then return r end
    end
    local f = tonumber(s)
    if f and s:match("^[-+]?[%d.]+[eE]?[-+]?%d*$") then return f >= 0 and floor(f) or -floor(-f) end
    return default
  end
  return default
end

filters.abs = function(v) local n = numv(v); if not n then rt_error("bad operand type for abs()") end return mknum(math.abs(n), isfloat(v)) end
filters.attr = function(v, a) return getattr(v, a[1]) end
filters.capitalize = function(v) return capitalize(tostr(v)) end
filters.center = function(v, a, kw) return pad_center(tostr(v), numv(arg(a, kw, 1, "width", 80)), " ") end
filters.default = function(v, a, kw)
  local d = arg(a, kw, 1, "default_value", "")
  local boolean = truthy(arg(a, kw, 2, "boolean", false))
  if is_undef(v) or (boolean and not truthy(v)) then return d end
  return v
end
filters.d = filters.default
filters.dictsort = function(v, a, kw)
  local cs = truthy(arg(a, kw, 1, "case_sensitive", false))
  local by = arg(a, kw, 2, "by", "key")
  local rev = truthy(arg(a, kw, 3, "reverse", false))
  local items = dict_methods.items(v)
  local pos = by == "value" and 2 or 1
  local key = sort_key_fn(cs)
  local idx = {}
  for i = 1, #items do idx[i] = i end
  table.sort(idx, function(x, y)
    local kx, ky = key(items[x][pos]), key(items[y][pos])
    if eq(kx, ky) then return x < y end
    if rev then return lt(ky, kx) end
    return lt(kx, ky)
  end)
  local out = {}
  for i, j in ipairs(idx) do out[i] = items[j] end
  return J.list(out)
end
filters.escape = function(v)
  if getmetatable(v) == Markup then return v end
  return setmetatable({s = html_escape(tostr(v))}, Markup)
end
filters.e = filters.escape
filters.forceescape = function(v) return setmetatable({s = html_escape(tostr(v))}, Markup) end
filters.first = function(v)
  if type(v) == "table" and getmetatable(v) == nil and is_list(v) then
    if #v == 0 then return undef(nil, nil) end
    return v[1]
  end
  local items = iter_list(v)
  if #items == 0 then return undef("first item") end
  return items[1]
end
filters.last = function(v)
  local items = iter_list(v)
  if #items == 0 then return undef("last item") end
  return items[#items]
end
filters.float = function(v, a, kw)
  local n = numv(v)
  if n then return J.float(n) end
  local s = type(v) == "string" and v:gsub("^%s+", ""):gsub("%s+$", "")
  local f = s and tonumber(s)
  if f then return J.float(f) end
  return arg(a, kw, 1, "default", J.float(0))
end
filters.format = function(v, a, kw)
  if next(kw) then return brace_format(tostr(v), a, kw) end
  if #a == 1 and type(a[1]) == "table" and getmetatable(a[1]) == nil and is_dict(a[1]) then
    return percent_format(tostr(v), a[1])
  end
  return percent_format(tostr(v), tuple(a))
end
filters.indent = function(v, a, kw)
  local width = arg(a, kw, 1, "width", 4)
  local first = truthy(arg(a, kw, 2, "first", false))
  local blank = truthy(arg(a, kw, 3, "blank", false))
  local ind = type(width) == "string" and width or (" "):rep(numv(width))
  local s = tostr(v) .. "\n"
  local lines = str_methods.splitlines(s, {}, {})
  local rv
  if blank then
    rv = concat(lines, "\n" .. ind)
  else
    rv = lines[1] or ""
    if #lines > 1 then
      local rest = {}
      for i = 2, #lines do rest[#rest + 1] = lines[i] ~= "" and ind .. lines[i] or lines[i] end
      rv = rv .. "\n" .. concat(rest, "\n")
    end
  end
  if first then rv = ind .. rv end
  return rv
end
filters.int = function(v, a, kw)
  return to_int(v, arg(a, kw, 1, "default", 0), numv(arg(a, kw, 2, "base", 10)))
end
filters.items = function(v)
  if is_undef(v) then return J.list({}) end
  if type(v) == "table" and getmetatable(v) == nil and is_dict(v) then return dict_methods.items(v) end
  if type(v) == "table" and getmetatable(v) == nil and next(v) == nil then return J.list({}) end
  rt_error("can only get item pairs from a mapping")
end
filters.join = function(v, a, kw)
  local d = tostr(arg(a, kw, 1, "d", ""))
  local get = attr_getter(arg(a, kw, 2, "attribute", nil))
  local items = iter_list(v)
  local parts = {}
  for i = 1, #items do parts[i] = tostr(get(items[i])) end
  return concat(parts, d)
end
filters.length = function(v) return length(v) end
filters.count = filters.length
filters.list = function(v)
  local items = iter_list(v)
  local out = {}
  for i = 1, #items do out[i] = items[i] end
  return J.list(out)
end
filters.lower = function(v) return case_map(tostr(v), false) end
filters.upper = function(v) return case_map(tostr(v), true) end
filters.title = function(v)
  -- jinja splits on runs of [-\s({[<] and capitalizes each piece
  local s = tostr(v)
  local out = {}
  local pos = 1
  while pos <= #s do
    local a2, b2 = find(s, "[-%s%(%{%[<]+", pos)
    local word = a2 and sub(s, pos, a2 - 1) or sub(s, pos)
    if word ~= "" then out[#out + 1] = capitalize(word) end
    if not a2 then break end
    out[#out + 1] = sub(s, a2, b2)
    pos = b2 + 1
  end
  return concat(out)
end
filters.map = function(v, a, kw)
  local items = iter_list(v)
  local out = {}
  if kw.attribute ~= nil then
    local get = attr_getter(kw.attribute, kw.default)
    for i = 1, #items do out[i] = get(items[i]) end
  else
    local fname = a[1]
    local f = filters[fname]
    if not f then rt_error("no filter named '" .. tostr(fname) .. "'") end
    local rest = {}
    for i = 2, #a do rest[i - 1] = a[i] end
    for i = 1, #items do out[i] = f(items[i], rest, kw) end
  end
  return J.list(out)
end
local function minmax(v, a, kw, want_max)
  local items = iter_list(v)
  if #items == 0 then return undef("item", nil) end
  local key = sort_key_fn(truthy(arg(a, kw, 1, "case_sensitive", false)), arg(a, kw, 2, "attribute", nil))
  local best = items[1]
  for i = 2, #items do
    if want_max then if lt(key(best), key(items[i])) then best = items[i] end
    elseif lt(key(items[i]), key(best)) then best = items[i] end
  end
  return best
end
filters.max = function(v, a, kw) return minmax(v, a, kw, true) end
filters.min = function(v, a, kw) return minmax(v, a, kw, false) end
filters.pprint = function(v) return repr(v) end
filters.replace = function(v, a, kw)
  local cnt = arg(a, kw, 3, "count", null)
  return py_replace(tostr(v), tostr(a[1]), tostr(a[2]), cnt ~= null and numv(cnt) or -1)
end
filters.reverse = function(v)
  if type(v) == "string" or getmetatable(v) == Markup then
    local cs = uchars(tostr(v))
    local out = {}
    for i = #cs, 1, -1 do out[#out + 1] = cs[i] end
    return concat(out)
  end
  local items = iter_list(v)
  local out = {}
  for i = #items, 1, -1 do out[#out + 1] = items[i] end
  return J.list(out)
end
filters.round = function(v, a, kw)
  local prec = numv(arg(a, kw, 1, "precision", 0))
  local method = arg(a, kw, 2, "method", "common")
  local n = numv(v)
  local m = 10 ^ prec
  local r
  if method == "ceil" then r = math.ceil(n * m) / m
  elseif method == "floor" then r = floor(n * m) / m
  else
    local x = n * m
    local f = floor(x)
    local d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end -- round half to even, as Python
    r = f / m
  end
  if method == "common" and not isfloat(v) and type(v) == "number" then return r end
  return J.float(r)
end
filters.safe = function(v) if getmetatable(v) == Markup then return v end return setmetatable({s = tostr(v)}, Markup) end
filters.string = function(v) if getmetatable(v) == Markup then return v end return tostr(v) end
filters.sum = function(v, a, kw)
  local get = attr_getter(arg(a, kw, 1, "attribute", nil))
  local acc = arg(a, kw, 2, "start", 0)
  for _, x in ipairs(iter_list(v)) do acc = op_add(acc, get(x)) end
  return acc
end
filters.sort = function(v, a, kw)
  local rev = truthy(arg(a, kw, 1, "reverse", false))
  local key = sort_key_fn(truthy(arg(a, kw, 2, "case_sensitive", false)), arg(a, kw, 3, "attribute", nil))
  local items = iter_list(v)
  local idx = {}
  for i = 1, #items do idx[i] = i end
  table.sort(idx, function(x, y)
    local kx, ky = key(items[x]), key(items[y])
    if eq(kx, ky) then return x < y end
    if rev then return lt(ky, kx) end
    return lt(kx, ky)
  end)
  local out = {}
  for i, j in ipairs(idx) do out[i] = items[j] end
  return J.list(out)
end
filters.trim = function(v, a, kw)
  local chars = arg(a, kw, 1, "chars", null)
  return strip_impl(tostr(v), chars ~= null and chars or nil, true, true)
end
filters.truncate = function(v, a, kw)
  local s = tostr(v)
  local len = numv(arg(a, kw, 1, "length", 255))
  local killwords = truthy(arg(a, kw, 2, "killwords", false))
  local ending = tostr(arg(a, kw, 3, "end", "..."))
  local leeway = numv(arg(a, kw, 4, "leeway", 5))
  local cs = uchars(s)
  if #cs <= len + leeway then return s end
  if killwords then return concat(cs, "", 1, len - ulen(ending)) .. ending end
  local head = concat(cs, "", 1, len - ulen(ending))
  local cut = head:match("^(.*) ")
  return (cut or head) .. ending
end
filters.unique = function(v, a, kw)
  local key = sort_key_fn(truthy(arg(a, kw, 1, "case_sensitive", false)), arg(a, kw, 2, "attribute", nil))
  local out, seen = {}, {}
  for _, x in ipairs(iter_list(v)) do
    local k = key(x)
    local dup = false
    for _, s in ipairs(seen) do if eq(s, k) then dup = true; break end end
    if not dup then seen[#seen + 1] = k; out[#out + 1] = x end
  end
  return J.list(out)
end
filters.wordcount = function(v)
  local n = 0
  for _ in tostr(v):gmatch("[%w_\128-\255]+") do n = n + 1 end
  return n
end
filters.batch = function(v, a, kw)
  local size = numv(arg(a, kw, 1, "linecount", 1))
  local fill = arg(a, kw, 2, "fill_with", nil)
  local items = iter_list(v)
  local out, cur = {}, nil
  for i = 1, #items do
    if not cur or #cur == size then cur = J.list({}); out[#out + 1] = cur end
    cur[#cur + 1] = items[i]
  end
  if cur and fill ~= nil then while #cur < size do cur[#cur + 1] = fill end end
  return J.list(out)
end
-- transformers' tojson: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)
filters.tojson = function(v, a, kw)
  local ensure_ascii = truthy(arg(a, kw, 1, "ensure_ascii", false))
  local indent = arg(a, kw, 2, "indent", nil)
  local seps = arg(a, kw, 3, "separators", nil)
  local sort_keys = truthy(arg(a, kw, 4, "sort_keys", false))
  if indent == null then indent = nil end
  if seps == null then seps = nil end
  local ok, r = pcall(J.encode, v, {ensure_ascii = ensure_ascii, indent = indent, separators = seps,
    sort_keys = sort_keys, default = function(x)
      if getmetatable(x) == Markup then return x.s end
      if is_undef(x) then rt_error("Object of type Undefined is not JSON serializable") end
      rt_error(fmt("Object of type %s is not JSON serializable", pytype(x)))
    end})
  if not ok then
    if type(r) == "string" and r:match("^jinja: ") then error(r, 0) end
    rt_error(tostring(r):gsub("^json: ", ""))
  end
  return r
end

-- select/reject/selectattr/rejectattr share one walker
local function select_impl(v, a, kw, with_attr, want)
  local items = iter_list(v)
  local get, ti = function(x) return x end, 1
  if with_attr then get = attr_getter(a[1]); ti = 2 end
  local tname = a[ti]
  local test
  if tname == nil then
    test = function(x) return truthy(x) end
  else
    local tf = tests[tname]
    if not tf then rt_error("no test named '" .. tostr(tname) .. "'") end
    local rest = {}
    for i = ti + 1, #a do rest[#rest + 1] = a[i] end
    test = function(x) return tf(x, rest, kw) end
  end
  local out = {}
  for i = 1, #items do
    if (test(get(items[i])) and true or false) == want then out[#out + 1] = items[i] end
  end
  return J.list(out)
end
filters.select = function(v, a, kw) return select_impl(v, a, kw, false, true) end
filters.reject = function(v, a, kw) return select_impl(v, a, kw, false, false) end
filters.selectattr = function(v, a, kw) return select_impl(v, a, kw, true, true) end
filters.rejectattr = function(v, a, kw) return select_impl(v, a, kw, true, false) end

local function is_str(v) return type(v) == "string" or getmetatable(v) == Markup end
local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil end

tests.defined = function(v) return not is_undef(v) end
tests.undefined = function(v) return is_undef(v) end
tests.none = function(v) return v == null end
tests.boolean = function(v) return type(v) == "boolean" end
tests["true"] = function(v) return v == true end
tests["false"] = function(v) return v == false end
tests.integer = function(v) return type(v) == "number" and pytype(v) == "int" end
tests.float = function(v) return isfloat(v) end
tests.number = function(v) return numv(v) ~= nil end
tests.string = is_str
tests.mapping = function(v) return is_plain(v) and is_dict(v) end
tests.iterable = function(v) return is_str(v) or is_undef(v) or is_plain(v) end
tests.sequence = tests.iterable
tests.callable = function(v) return type(v) == "function" or is_undef(v) end -- Undefined has __call__
tests.sameas = function(v, a)
  local o = a[1]
  if getmetatable(v) == Float or getmetatable(o) == Float then return false end
  return rawequal(v, o)
end
tests.escaped = function(v) return getmetatable(v) == Markup end
tests["in"] = function(v, a) return op_in(v, a[1]) end
tests.equalto = function(v, a) return eq(v, a[1]) end
tests.eq = tests.equalto
tests["=="] = tests.equalto
tests.ne = function(v, a) return not eq(v, a[1]) end
tests["!="] = tests.ne
tests.lt = function(v, a) return lt(v, a[1], "<") end
tests.lessthan = tests.lt
tests["<"] = tests.lt
tests.gt = function(v, a) return lt(a[1], v, ">") end
tests.greaterthan = tests.gt
tests[">"] = tests.gt
tests.le = function(v, a) return not lt(a[1], v, "<=") end
tests["<="] = tests.le
tests.ge = function(v, a) return not lt(v, a[1], ">=") end
tests[">="] = tests.ge
tests.divisibleby = function(v, a) return numv(op_mod(v, a[1])) == 0 end
tests.even = function(v) return numv(op_mod(v, 2)) == 0 end
tests.odd = function(v) return numv(op_mod(v, 2)) == 1 end
tests.lower = function(v) return str_methods.islower(tostr(v)) end
tests.upper = function(v) return str_methods.isupper(tostr(v)) end
tests.filter = function(v) return filters[v] ~= nil end
tests.test = function(v) return tests[v] ~= nil end

-- ---------------------------------------------------------------------------
-- compiler: AST -> closures
-- ---------------------------------------------------------------------------

local BREAK, CONTINUE = {}, {}
local compile_expr, compile_body

local function const_fn(v) return function() return v end end

local function compile_args(node)
  local cargs, ckw = {}, {}
  for i, a in ipairs(node.args) do cargs[i] = compile_expr(a) end
  for i, a in ipairs(node.kwargs) do ckw[i] = compile_expr(a) end
  local knames = node.knames
  local na, nk = #cargs, #ckw
  return function(f)
    local args = {n = na}
    for i = 1, na do args[i] = cargs[i](f) end
    local kw = {}
    if nk > 0 then
      for i = 1, nk do kw[knames[i]] = ckw[i](f) end
      J.dict(kw, knames)
    end
    return args, kw
  end
end

local cmp_fns = {
  eq = function(a, b) return eq(a, b) end,
  ne = function(a, b) return not eq(a, b) end,
  lt = function(a, b) return lt(a, b, "<") end,
  gt = function(a, b) return lt(b, a, ">") end,
  lteq = function(a, b) return not lt(b, a, "<=") end,
  gteq = function(a, b) return not lt(a, b, ">=") end,
  ["in"] = function(a, b) return op_in(a, b) end,
  notin = function(a, b) return not op_in(a, b) end,
}
local bin_fns = {["+"] = op_add, ["-"] = op_sub, ["*"] = op_mul, ["/"] = op_div, ["//"] = op_floordiv,
  ["%"] = op_mod, ["**"] = op_pow}

local expr_compilers = {}

expr_compilers.const = function(n) return const_fn(n.v) end
expr_compilers.name = function(n)
  local name = n.name
  return function(f)
    local v = f[name]
    if v == nil then return undef(name) end
    return v
  end
end
expr_compilers.getattr = function(n)
  local obj, name = compile_expr(n.obj), n.name
  return function(f) return getattr(obj(f), name) end
end
expr_compilers.getitem = function(n)
  local obj, key = compile_expr(n.obj), compile_expr(n.key)
  return function(f) return getitem(obj(f), key(f)) end
end
expr_compilers.slice = function(n)
  local obj = compile_expr(n.obj)
  local s = n.start and compile_expr(n.start)
  local e = n.stop and compile_expr(n.stop)
  local st = n.step and compile_expr(n.step)
  return function(f)
    return slice_value(obj(f), s and s(f), e and e(f), st and st(f))
  end
end
expr_compilers.call = function(n)
  local fn, args = compile_expr(n.fn), compile_args(n)
  return function(f)
    local callee = fn(f)
    local a, kw = args(f)
    return call(callee, a, kw)
  end
end
expr_compilers.filter = function(n)
  local name = n.name
  local flt = filters[name]
  if not flt then
    error(fmt("jinja: %s:%d: syntax error: no filter named '%s'", cur_name, n.line or 0, name), 0)
  end
  local obj = n.obj.k == "blockval" and function(f) return f["\0block"] end or compile_expr(n.obj)
  local args = compile_args(n)
  return function(f)
    local v = obj(f)
    local a, kw = args(f)
    return flt(v, a, kw)
  end
end
expr_compilers.test = function(n)
  local name = n.name
  local tf = tests[name]
  if not tf then
    error(fmt("jinja: %s:%d: syntax error: no test named '%s'", cur_name, n.line or 0, name), 0)
  end
  local obj, args = compile_expr(n.obj), compile_args(n)
  return function(f)
    local v = obj(f)
    local a, kw = args(f)
    return tf(v, a, kw) and true or false
  end
end
expr_compilers.bin = function(n)
  local a, b, op = compile_expr(n.a), compile_expr(n.b), bin_fns[n.op]
  return function(f) return op(a(f), b(f)) end
end
expr_compilers.concat = function(n)
  local items = {}
  for i, it in ipairs(n.items) do items[i] = compile_expr(it) end
  return function(f)
    local parts = {}
    for i = 1, #items do parts[i] = tostr(items[i](f)) end
    return concat(parts)
  end
end
expr_compilers.neg = function(n) local a = compile_expr(n.a); return function(f) return op_neg(a(f)) end end
expr_compilers.pos = function(n) local a = compile_expr(n.a); return function(f) return op_pos(a(f)) end end
expr_compilers["not"] = function(n) local a = compile_expr(n.a); return function(f) return not truthy(a(f)) end end
expr_compilers["and"] = function(n)
  local a, b = compile_expr(n.a), compile_expr(n.b)
  return function(f)
    local x = a(f)
    if truthy(x) then return b(f) end
    return x
  end
end
expr_compilers["or"] = function(n)
  local a, b = compile_expr(n.a), compile_expr(n.b)
  return function(f)
    local x = a(f)
    if truthy(x) then return x end
    return b(f)
  end
end
expr_compilers.cond = function(n)
  local t, a, b = compile_expr(n.test), compile_expr(n.a), n.b and compile_expr(n.b)
  return function(f)
    if truthy(t(f)) then return a(f) end
    if b then return b(f) end
    return undef("the inline if-expression on line " .. cur_line .. " evaluated to false and no else section was defined.")
  end
end
expr_compilers.compare = function(n)
  local first = compile_expr(n.a)
  local ops = {}
  for i, o in ipairs(n.ops) do ops[i] = {cmp_fns[o[1]], compile_expr(o[2])} end
  if #ops == 1 then
    local op, b = ops[1][1], ops[1][2]
    return function(f) return op(first(f), b(f)) end
  end
  return function(f)
    local l = first(f)
    for i = 1, #ops do
      local r = ops[i][2](f)
      if not ops[i][1](l, r) then return false end
      l = r
    end
    return true
  end
end
expr_compilers.list = function(n)
  local items = {}
  for i, it in ipairs(n.items) do items[i] = compile_expr(it) end
  return function(f)
    local out = {}
    for i = 1, #items do out[i] = items[i](f) end
    return J.list(out)
  end
end
expr_compilers.tuple = function(n)
  local items = {}
  for i, it in ipairs(n.items) do items[i] = compile_expr(it) end
  return function(f)
    local out = {}
    for i = 1, #items do out[i] = items[i](f) end
    return tuple(out)
  end
end
expr_compilers.dict = function(n)
  local ks, vs = {}, {}
  for i = 1, #n.keys do ks[i] = compile_expr(n.keys[i]); vs[i] = compile_expr(n.vals[i]) end
  return function(f)
    local t, order = {}, {}
    for i = 1, #ks do
      local k = ks[i](f)
      if getmetatable(k) == Float then k = k.v end
      if type(k) == "table" then rt_error("unhashable type: '" .. pytype(k) .. "'") end
      if t[k] == nil then order[#order + 1] = k end
      t[k] = vs[i](f)
    end
    return J.dict(t, order)
  end
end

compile_expr = function(n)
  local c = expr_compilers[n.k]
  if not c then error("jinja: internal: no compiler for expression " .. tostring(n.k)) end
  return c(n)
end

-- assignment into frame f
local function assign(target, f, value)
  if target.k == "name" then
    rawset(f, target.name, value)
  elseif target.k == "tuple" then
    local items = iter_list(value)
    local n = #target.items
    if #items ~= n then
      rt_error(fmt("not enough values to unpack (expected %d, got %d)", n, #items))
    end
    for i = 1, n do rawset(f, target.items[i].name, items[i]) end
  elseif target.k == "nsref" then
    local ns = f[target.name]
    if getmetatable(ns) ~= Namespace then
      rt_error("cannot assign attribute on non-namespace object")
    end
    if sub(target.attr, 1, 1) == "_" then
      rt_error(fmt("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'.", target.attr))
    end
    ns.attrs[target.attr] = value
  end
end

local function run_body(stmts, f, buf)
  for i = 1, #stmts do
    local sig = stmts[i](f, buf)
    if sig then return sig end
  end
end

local function render_body_to_string(stmts, f)
  local b = {}
  run_body(stmts, f, b)
  return concat(b)
end

local stmt_compilers = {}

stmt_compilers.data = function(n)
  local v = n.v
  return function(_, buf) buf[#buf + 1] = v end
end
stmt_compilers.output = function(n)
  local e, line = compile_expr(n.e), n.line
  return function(f, buf)
    cur_line = line
    buf[#buf + 1] = tostr(e(f))
  end
end
stmt_compilers["if"] = function(n)
  local conds, bodies = {}, {}
  for i, br in ipairs(n.branches) do conds[i] = compile_expr(br[1]); bodies[i] = compile_body(br[2]) end
  local else_ = n.else_ and compile_body(n.else_)
  local nb, line = #conds, n.line
  return function(f, buf)
    cur_line = line
    for i = 1, nb do
      if truthy(conds[i](f)) then return run_body(bodies[i], f, buf) end
    end
    if else_ then return run_body(else_, f, buf) end
  end
end

local function make_loop(items, i, n)
  local l = setmetatable({
    index = i, index0 = i - 1, revindex = n - i + 1, revindex0 = n - i,
    first = i == 1, last = i == n, length = n, depth = 1, depth0 = 0,
  }, Loop)
  l.previtem = i > 1 and items[i - 1] or undef("previtem")
  l.nextitem = i < n and items[i + 1] or undef("nextitem")
  l.cycle = function(args)
    if not args[1] then rt_error("no items for cycling given") end
    return args[(i - 1) % #args + 1]
  end
  return l
end

stmt_compilers["for"] = function(n)
  local target, iter = n.target, compile_expr(n.iter)
  local cond = n.cond and compile_expr(n.cond)
  local body = compile_body(n.body)
  local else_ = n.else_ and compile_body(n.else_)
  local uses_loop, line = n.uses_loop, n.line
  return function(f, buf)
    cur_line = line
    local items = iter_list(iter(f))
    local mt = {__index = f}
    if cond then
      local kept = {}
      for i = 1, #items do
        local tf = setmetatable({}, mt)
        assign(target, tf, items[i])
        if truthy(cond(tf)) then kept[#kept + 1] = items[i] end
      end
      items = kept
    end
    local count = #items
    if count == 0 then
      if else_ then return run_body(else_, setmetatable({}, mt), buf) end
      return
    end
    -- changed() must remember across iterations: share one closure state
    local changed_last
    for i = 1, count do
      local lf = setmetatable({}, mt)
      assign(target, lf, items[i])
      if uses_loop then
        local l = make_loop(items, i, count)
        l.changed = function(args)
          local v = tuple({unpack(args)})
          if changed_last == nil or not eq(changed_last, v) then changed_last = v; return true end
          return false
        end
        lf.loop = l
      end
      local sig = run_body(body, lf, buf)
      if sig == BREAK then break end
      cur_line = line
    end
  end
end
stmt_compilers.set = function(n)
  local target, e, line = n.target, compile_expr(n.e), n.line
  return function(f)
    cur_line = line
    assign(target, f, e(f))
  end
end
stmt_compilers.setblock = function(n)
  local target, body, line = n.target, compile_body(n.body), n.line
  local filter = n.filter and compile_expr(n.filter)
  return function(f)
    cur_line = line
    local s = render_body_to_string(body, setmetatable({}, {__index = f}))
    if filter then
      local tf = setmetatable({["\0block"] = s}, {__index = f})
      s = filter(tf)
    end
    assign(target, f, s)
  end
end
stmt_compilers.filterblock = function(n)
  local body, filter, line = compile_body(n.body), compile_expr(n.filter), n.line
  return function(f, buf)
    cur_line = line
    local s = render_body_to_string(body, setmetatable({}, {__index = f}))
    local tf = setmetatable({["\0block"] = s}, {__index = f})
    buf[#buf + 1] = tostr(filter(tf))
  end
end

local function make_macro(name, argnames, defaults, body, deff)
  local mt = {__index = deff}
  return function(args, kw)
    local mf = setmetatable({}, mt)
    local extra = {}
    for i = 1, #args do
      if i <= #argnames then rawset(mf, argnames[i], args[i]) else extra[#extra + 1] = args[i] end
    end
    local kwextra = {}
    for k, v in pairs(kw or {}) do
      local known = false
      for _, an in ipairs(argnames) do if an == k then known = true; break end end
      if known then rawset(mf, k, v) elseif k == "caller" then rawset(mf, "caller", v) else kwextra[k] = v end
    end
    for i, an in ipairs(argnames) do
      if rawget(mf, an) == nil then
        if defaults[i] then rawset(mf, an, defaults[i](mf)) else rawset(mf, an, undef(an)) end
      end
    end
    rawset(mf, "varargs", tuple(extra))
    rawset(mf, "kwargs", J.dict(kwextra))
    local saved = cur_line
    local s = render_body_to_string(body, mf)
    cur_line = saved
    return s
  end
end

stmt_compilers.macro = function(n)
  local body = compile_body(n.body)
  local defaults = {}
  for i, d in pairs(n.defaults) do defaults[i] = compile_expr(d) end
  local name, args = n.name, n.args
  return function(f)
    rawset(f, name, make_macro(name, args, defaults, body, f))
  end
end
stmt_compilers.callblock = function(n)
  local body = compile_body(n.body)
  local defaults = {}
  for i, d in pairs(n.defaults) do defaults[i] = compile_expr(d) end
  local fn, args, line = compile_expr(n.call.fn), compile_args(n.call), n.line
  local cargs = n.args
  return function(f, buf)
    cur_line = line
    local caller = make_macro("caller", cargs, defaults, body, f)
    local a, kw = args(f)
    kw.caller = caller
    buf[#buf + 1] = tostr(call(fn(f), a, kw))
  end
end
stmt_compilers.with = function(n)
  local vals = {}
  for i, v in ipairs(n.values) do vals[i] = compile_expr(v) end
  local targets, body, line = n.targets, compile_body(n.body), n.line
  return function(f, buf)
    cur_line = line
    local wf = setmetatable({}, {__index = f})
    for i = 1, #targets do assign(targets[i], wf, vals[i](f)) end
    return run_body(body, wf, buf)
  end
end
stmt_compilers.scope = function(n)
  local body = compile_body(n.body)
  return function(f, buf) return run_body(body, f, buf) end
end
stmt_compilers["break"] = function() return function() return BREAK end end
stmt_compilers["continue"] = function() return function() return CONTINUE end end

compile_body = function(nodes)
  local out = {}
  for _, n in ipairs(nodes) do
    local c = stmt_compilers[n.k]
    if not c then error("jinja: internal: no compiler for statement " .. tostring(n.k)) end
    out[#out + 1] = c(n)
  end
  return out
end

-- break/continue outside a loop are syntax errors in jinja2
local function check_loop_controls(nodes, in_loop, name)
  for _, n in ipairs(nodes) do
    if (n.k == "break" or n.k == "continue") and not in_loop then
      syntax_error(name, n.line, "encountered '" .. n.k .. "' outside of a loop")
    end
    if n.k == "for" then
      check_loop_controls(n.body, true, name)
      if n.else_ then check_loop_controls(n.else_, in_loop, name) end
    elseif n.k == "if" then
      for _, br in ipairs(n.branches) do check_loop_controls(br[2], in_loop, name) end
      if n.else_ then check_loop_controls(n.else_, in_loop, name) end
    elseif n.k == "macro" or n.k == "callblock" then
      check_loop_controls(n.body, false, name)
    elseif n.body then
      check_loop_controls(n.body, in_loop, name)
    end
  end
end

-- ---------------------------------------------------------------------------
-- globals (transformers' environment)
-- ---------------------------------------------------------------------------

local globals = {}
M.globals = globals

globals.raise_exception = function(args)
  rt_error(tostr(args[1] == nil and "" or args[1]))
end
globals.strftime_now = function(args)
  return os.date(as_str(args[1], "strftime_now format"))
end
globals.namespace = function(args, kw)
  local attrs = {}
  if args[1] ~= nil then
    if not (is_plain(args[1]) and is_dict(args[1])) then rt_error("namespace() takes a mapping") end
    for k, v in pairs(args[1]) do attrs[k] = v end
  end
  for k, v in pairs(kw or {}) do
    if type(k) == "string" and sub(k, 1, 1) == "_" then
      rt_error(fmt("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'.", k))
    end
    attrs[k] = v
  end
  return setmetatable({attrs = attrs}, Namespace)
end
globals.dict = function(args, kw)
  local t, order = {}, {}
  if args[1] ~= nil then
    for _, k in ipairs(dkeys(args[1])) do t[k] = args[1][k]; order[#order + 1] = k end
  end
  for _, k in ipairs(dkeys(kw or {})) do
    if t[k] == nil then order[#order + 1] = k end
    t[k] = kw[k]
  end
  return J.dict(t, order)
end
globals.range = function(args)
  local a, b, s = numv(args[1]), numv(args[2]), numv(args[3]) or 1
  if not a then rt_error("range expected at least 1 argument") end
  if not b then a, b = 0, a end
  if s == 0 then rt_error("range() arg 3 must not be zero") end
  local out, i = {}, a
  if (b - a) / s > 100000 then rt_error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).") end
  while (s > 0 and i < b) or (s < 0 and i > b) do out[#out + 1] = i; i = i + s end
  return J.list(out)
end
globals.lipsum = function() return "" end
globals.joiner = function(args)
  local sep = args[1] or ", "
  local used = false
  return function()
    if not used then used = true; return "" end
    return sep
  end
end
globals.cycler = function(args)
  local items = {}
  for i = 1, #args do items[i] = args[i] end
  local pos = 0
  local c = setmetatable({attrs = {}}, Namespace)
  c.attrs.next = function() pos = pos % #items + 1; c.attrs.current = items[pos % #items + 1]; return items[pos] end
  c.attrs.reset = function() pos = 0; c.attrs.current = items[1] end
  c.attrs.current = items[1]
  return c
end

-- ---------------------------------------------------------------------------
-- API
-- ---------------------------------------------------------------------------

local Template = {}
Template.__index = Template

-- compile(source, {name = "chat_template"}) -> template with :render(vars)
function M.compile(src, opts)
  opts = opts or {}
  if type(src) ~= "string" then error("jinja.compile: template source must be a string, got " .. type(src), 2) end
  local name = opts.name or "template"
  local toks = tokenize(src, name)
  local p = setmetatable({toks = toks, i = 1, name = name, loop_refs = 0}, Parser)
  local ast = p:subparse(nil)
  check_loop_controls(ast, false, name)
  local saved = cur_name
  cur_name = name
  local ok, body = pcall(compile_body, ast)
  cur_name = saved
  if not ok then error(body, 0) end
  return setmetatable({name = name, body = body, source = src}, Template)
end

-- render(vars): vars is a table of template variables (use pyjson.null for None)
function Template:render(vars)
  local root = {}
  for k, v in pairs(globals) do root[k] = v end
  for k, v in pairs(vars or {}) do root[k] = v end
  local saved_name, saved_line = cur_name, cur_line
  cur_name, cur_line = self.name, 0
  local buf = {}
  local ok, err = pcall(run_body, self.body, root, buf)
  cur_name, cur_line = saved_name, saved_line
  if not ok then
    if type(err) == "string" and not err:match("^jinja: ") then
      err = fmt("jinja: %s: %s", self.name, err)
    end
    error(err, 0)
  end
  return concat(buf)
end

local cache = setmetatable({}, {__mode = "v"})

-- render(source, vars): compile (cached by source) and render
function M.render(src, vars, opts)
  local t = cache[src]
  if not t then t = M.compile(src, opts); cache[src] = t end
  return t:render(vars)
end

local reasoning_fields = {"reasoning_content", "thinking", "reasoning"}

-- transformers' message normalisation: drop None-valued keys, alias reasoning fields
local function normalize_message(m)
  if not is_plain(m) or not is_dict(m) then
    error("apply_chat_template: chat messages should be dicts, got " .. pytype(m), 0)
  end
  local out, order = {}, {}
  for _, k in ipairs(dkeys(m)) do
    local v = m[k]
    if v ~= null then out[k] = v; order[#order + 1] = k end
  end
  local reasoning
  for _, k in ipairs(reasoning_fields) do
    if out[k] ~= nil then reasoning = out[k]; break end
  end
  if reasoning ~= nil then
    -- {"thinking": r, **message, "reasoning_content": r}
    local o2 = {}
    if out.thinking == nil then o2[1] = "thinking"; out.thinking = reasoning end
    for _, k in ipairs(order) do o2[#o2 + 1] = k end
    if m.reasoning_content == nil or m.reasoning_content == null then o2[#o2 + 1] = "reasoning_content" end
    out.reasoning_content = reasoning
    order = o2
  end
  return J.dict(out, order)
end

-- apply_chat_template(template, messages, opts) -> string, as transformers'
-- tokenizer.apply_chat_template(messages, tokenize=False, ...). opts: tools,
-- documents, add_generation_prompt, special tokens (bos_token, eos_token, ...)
-- and any extra template variables (enable_thinking, ...).
function M.apply_chat_template(template, messages, opts)
  opts = opts or {}
  if type(template) == "string" then
    local t = cache[template]
    if not t then t = M.compile(template, {name = "chat_template"}); cache[template] = t end
    template = t
  end
  if type(messages) ~= "table" or #messages == 0 then
    error("apply_chat_template: cannot apply a chat template to an empty conversation", 2)
  end
  local chat = {}
  for i, m in ipairs(messages) do chat[i] = normalize_message(m) end
  local vars = {}
  for k, v in pairs(opts) do vars[k] = v end
  vars.continue_final_message = nil
  vars.messages = J.list(chat)
  if vars.tools == nil then vars.tools = null end
  if vars.documents == nil then vars.documents = null end
  vars.add_generation_prompt = opts.add_generation_prompt and truthy(opts.add_generation_prompt) or false
  -- continue_final_message: render the last message open-ended (assistant prefill)
  local cfm = opts.continue_final_message
  if not cfm then return template:render(vars) end
  if vars.add_generation_prompt then
    error("apply_chat_template: continue_final_message and add_generation_prompt are not compatible", 2)
  end
  local field = type(cfm) == "string" and cfm or "content"
  local last = chat[#chat]
  local final = last[field]
  if final == nil then
    error(fmt('apply_chat_template: continue_final_message is set but the final message has no "%s" to continue', field), 2)
  end
  local fields = {field}
  local is_reasoning = false
  for _, r in ipairs(reasoning_fields) do if r == field then is_reasoning = true end end
  if is_reasoning then
    fields = {}
    for _, r in ipairs(reasoning_fields) do if last[r] ~= nil and eq(last[r], final) then fields[#fields + 1] = r end end
  end
  local src = template.source or ""
  local mentioned = false
  for _, f in ipairs(fields) do if find(src, f, 1, true) then mentioned = true end end
  if not mentioned then
    error(fmt('apply_chat_template: continue_final_message is set to "%s" but this is not an accepted field in the chat_template', field), 2)
  end
  local TAG = "CONTINUE_FINAL_MESSAGE_TAG "
  local copy = J.copy(last)
  chat[#chat] = copy
  if type(final) == "table" then
    local done = false
    for i = #final, 1, -1 do
      local block = final[i]
      if type(block) == "table" and type(block.text) == "string" then
        local nb = J.copy(block)
        local nf = J.copy(final)
        final = block.text
        nb.text = block.text .. TAG
        nf[i] = nb
        copy[field] = nf
        done = true
        break
      end
    end
    if not done then error("apply_chat_template: continue_final_message is set but there is no text to continue", 2) end
  else
    for _, f in ipairs(fields) do copy[f] = tostr(copy[f]) .. TAG end
  end
  local out = template:render(vars)
  local tag = strip_impl(TAG, nil, true, true)
  local fs = strip_impl(tostr(final), nil, true, true)
  if not find(out, fs, 1, true) or not find(out, tag, 1, true) then
    error("apply_chat_template: continue_final_message is set but the final message does not appear in the chat "
      .. "after applying the chat template", 2)
  end
  local loc, p = nil, 0
  while true do
    p = find(out, tag, p + 1, true)
    if not p then break end
    loc = p
  end
  if sub(out, loc, loc + #TAG - 1) == TAG then return sub(out, 1, loc - 1) end
  return strip_impl(sub(out, 1, loc - 1), nil, false, true)
end

return M
