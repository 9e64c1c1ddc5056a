-- Python values for the Jinja interpreter (lfl.text.jinja): the runtime state
-- errors name, Undefined / tuple / Namespace / Markup, str() and repr(),
-- truthiness, equality, ordering and arithmetic with Python's rules, iteration,
-- len(), attribute and item access, slicing, and "%" / str.format formatting.
-- Lists/dicts are Lua tables (order kept by lfl.pyjson), None is pyjson.null,
-- integral floats are boxed, ints beyond 2^53 are lfl.json.Int values (exact
-- arithmetic through lfl.text.pyint), strings are UTF-8 measured in code points. The
-- str/dict/list method tables live here (getattr needs them) and are filled by
-- lfl.text.jinja.methods.
local J = require "lfl.text.pyjson"
local I = require "lfl.text.pyint"
local fmt, concat, byte, sub, find = string.format, table.concat, string.byte, string.sub, string.find
local floor, huge = math.floor, math.huge
local null, Float, Int = J.null, J.Float, I.Int
local function is_big(v) return getmetatable(v) == Int end
local is_list, is_dict, dkeys = J.is_list, J.is_dict, J.keys
local U = assert(lfl._unicode, "lfl.text.jinja: the C bridge lfl._unicode is missing")

local M = {}

-- ---------------------------------------------------------------------------
-- runtime state and errors
-- ---------------------------------------------------------------------------

-- the template and line being compiled or rendered, for error messages;
-- a table because the compiler and the API (other files) move it
local state = {name = "template", line = 0}
M.state = state

local function rt_error(msg) error(fmt("jinja: %s:%d: %s", state.name, state.line, msg), 0) end
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
-- named tuples (groupby's (grouper, list)): field name -> position
local tuple_fields = setmetatable({}, {__mode = "k"})
local function namedtuple(t, fields) tuple(t); tuple_fields[t] = fields; return t end

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
  if mt == Int then return "int" end
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

-- a str (or Markup) / a plain list or dict (not a boxed value)
local function is_str(v) return type(v) == "string" or getmetatable(v) == Markup end
local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil end

-- numeric value (bools count as ints, as in Python), or nil; an Int gives
-- its nearest double (the operators below keep Ints exact first)
local function numv(v)
  local t = type(v)
  if t == "number" then return v end
  if t == "boolean" then return v and 1 or 0 end
  local mt = getmetatable(v)
  if mt == Float then return v.v end
  if mt == Int then return tonumber(v.digits) end
  return nil
end

-- a Python int (a bool, an integral Lua number, an Int), for exact arithmetic
local function intlike(v)
  local t = type(v)
  if t == "boolean" then return true end
  if t == "number" then return v == floor(v) and v == v and v ~= huge and v ~= -huge end
  return getmetatable(v) == Int
end

-- a number pyint can compare exactly (a float's value, a bool's 0/1), or nil
local function exactv(v)
  local t = type(v)
  if t == "number" then return v end
  if t == "boolean" then return v and 1 or 0 end
  local mt = getmetatable(v)
  if mt == Float then return v.v end
  if mt == Int then return v end
  return nil
end

-- an int result of + - * ** that reaches 2^53 is computed again exactly
local function inexact(r) return r >= 9007199254740992 or r <= -9007199254740992 end

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

-- Python's str case operations ("lower", "upper", "title", "capitalize",
-- "swapcase", "casefold") with the full Unicode mappings (ß -> SS) and the
-- final-sigma rule, through utf8proc (lfl._unicode); ASCII stays in Lua
local function case_op(s, op)
  if op == "lower" or op == "casefold" then if is_ascii(s) then return s:lower() end
  elseif op == "upper" then if is_ascii(s) then return s:upper() end end
  return U.case(s, op)
end

local function case_map(s, up) return case_op(s, up and "upper" or "lower") end

-- Python's \w for one character: a letter, a number or "_"
local function is_word_char(c)
  if #c == 1 then return find(c, "^[%w_]") ~= nil end
  local cat = U.category((J.utf8_at(c, 1)))
  local k = sub(cat, 1, 1)
  return k == "L" or k == "N"
end

-- ---------------------------------------------------------------------------
-- str() and repr() as Python prints them
-- ---------------------------------------------------------------------------

local tostr

-- repr() of a str: Python escapes the quote, the backslash, \t \n \r, other
-- control bytes as \xhh, and every non-ASCII character that is not printable
-- (str.isprintable: categories Cc Cf Cs Co Cn Zl Zp Zs) as \xhh, \uhhhh or
-- \Uhhhhhhhh
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
  if not is_ascii(r) then
    r = r:gsub("[\192-\255][\128-\191]*", function(c)
      local cp = J.utf8_at(c, 1)
      if U.isprintable(cp) then return nil end
      if cp <= 0xFF then return fmt("\\x%02x", cp) end
      if cp <= 0xFFFF then return fmt("\\u%04x", cp) end
      return fmt("\\U%08x", cp)
    end)
  end
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
  if mt == Int then return v.digits end
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
  if is_big(a) or is_big(b) then
    local ea, eb = exactv(a), exactv(b)
    return ea ~= nil and eb ~= nil and I.cmp(ea, eb) == 0
  end
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
  if is_big(a) or is_big(b) then
    local ea, eb = exactv(a), exactv(b)
    if ea ~= nil and eb ~= nil then return I.cmp(ea, eb) == -1 end
  end
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
  if na and nb then
    if intlike(a) and intlike(b) and (is_big(a) or is_big(b) or inexact(na + nb)) then return I.add(a, b) end
    return mknum(na + nb, isfloat(a) or isfloat(b))
  end
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
  if na and nb then
    if intlike(a) and intlike(b) and (is_big(a) or is_big(b) or inexact(na - nb)) then return I.sub(a, b) end
    return mknum(na - nb, isfloat(a) or isfloat(b))
  end
  check_undef2(a, b)
  arith_error("-", a, b)
end

local function op_mul(a, b)
  local na, nb = numv(a), numv(b)
  if na and nb then
    if intlike(a) and intlike(b) and (is_big(a) or is_big(b) or inexact(na * nb)) then return I.mul(a, b) end
    return mknum(na * nb, isfloat(a) or isfloat(b))
  end
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
  if intlike(a) and intlike(b) and (is_big(a) or is_big(b)) then return (I.divmod(a, b)) end
  return mknum(floor(na / nb), isfloat(a) or isfloat(b))
end

local percent_format

local function op_mod(a, b)
  if type(a) == "string" or getmetatable(a) == Markup then return percent_format(tostr(a), b) end
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("%", a, b) end
  if nb == 0 then rt_error("integer division or modulo by zero") end
  if intlike(a) and intlike(b) and (is_big(a) or is_big(b)) then return select(2, I.divmod(a, b)) end
  return mknum(na - floor(na / nb) * nb, isfloat(a) or isfloat(b))
end

local function op_pow(a, b)
  local na, nb = numv(a), numv(b)
  if not (na and nb) then check_undef2(a, b); arith_error("**", a, b) end
  if intlike(a) and intlike(b) and nb >= 0 and (is_big(a) or is_big(b) or inexact(na ^ nb)) then
    local ok, r = pcall(I.pow, a, b)
    if not ok then rt_error(tostring(r)) end
    return r
  end
  return mknum(na ^ nb, isfloat(a) or isfloat(b) or nb < 0)
end

local function op_neg(a)
  if is_big(a) then return I.neg(a) end
  local na = numv(a)
  if not na then if is_undef(a) then undef_fail(a) end rt_error(fmt("bad operand type for unary -: '%s'", pytype(a))) end
  return mknum(-na, isfloat(a))
end

local function op_pos(a)
  if is_big(a) then return a end
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
        local nf = tuple_fields[obj]
        if nf and nf[name] then return obj[nf[name]] end
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

-- ascii(): repr() with every non-ASCII character escaped
local function ascii_repr(v)
  local r = repr(v)
  if is_ascii(r) then return r end
  return (r:gsub("[\192-\255][\128-\191]*", function(c)
    local cp = J.utf8_at(c, 1)
    if cp <= 0xFF then return fmt("\\x%02x", cp) end
    if cp <= 0xFFFF then return fmt("\\u%04x", cp) end
    return fmt("\\U%08x", cp)
  end))
end

-- digits of a non-negative integer in base 2, 8, 10 or 16
local function int_digits(n, conv)
  if conv == "x" then return fmt("%x", n) end
  if conv == "X" then return fmt("%X", n) end
  if conv == "o" then return fmt("%o", n) end
  if conv == "b" then
    if n == 0 then return "0" end
    local d = {}
    while n > 0 do d[#d + 1] = n % 2; n = floor(n / 2) end
    return string.reverse(concat(d))
  end
  return fmt("%.0f", n)
end

-- the digits of |v| for an int v (exact for an Int; a = |numv(v)| otherwise)
local function int_body(v, a, conv)
  if not is_big(v) then return int_digits(a, conv) end
  if conv == "d" then return I.str(I.abs(v)) end
  local base = (conv == "x" or conv == "X") and 16 or conv == "o" and 8 or 2
  local d = I.to_base(v, base)
  return conv == "X" and d:upper() or d
end

-- a separator every `every` digits of the integer part of s (every 4 for
-- the binary/octal/hex digits "_" groups)
local function group_digits(s, sep, every)
  local head, tail = s:match(every == 4 and "^(%x+)(.*)$" or "^(%d+)(.*)$")
  if not head or #head <= every then return s end
  local out, first = {}, #head % every
  if first > 0 then out[1] = sub(head, 1, first) end
  for i = first + 1, #head, every do out[#out + 1] = sub(head, i, i + every - 1) end
  return concat(out, sep) .. tail
end

-- |x| formatted with a C float conversion; inf/nan as Python writes them
local function float_body(x, conv, prec, alt)
  if x ~= x then return (conv == "E" or conv == "F" or conv == "G") and "NAN" or "nan" end
  if x == huge then return (conv == "E" or conv == "F" or conv == "G") and "INF" or "inf" end
  return U.cformat(x, conv, prec, alt)
end

-- format(x, ".<p>") of a float (no type): "g" with p significant digits, but
-- the exponent form from 10**(p-1) on and a fixed-point result keeps ".0"
-- (CPython's repr-style Py_DTSF_ADD_DOT_0): 100.0 -> "1e+02" for p = 3
local function repr_precision(x, p, alt)
  if x ~= x then return "nan" end
  if x == huge then return "inf" end
  local exp = tonumber(U.cformat(x, "e", p - 1, false):match("e([-+]%d+)$"))
  local body
  if exp < -4 or exp >= p - 1 then
    body = U.cformat(x, "e", p - 1, alt)
    if not alt then body = body:gsub("(%.%d-)0+e", "%1e", 1):gsub("%.e", "e", 1) end
  else
    body = U.cformat(x, "f", p - 1 - exp, alt)
    if not alt and find(body, ".", 1, true) then body = body:gsub("0+$", ""):gsub("%.$", "") end
    if not find(body, ".", 1, true) then body = body .. ".0" end
  end
  return body
end

-- pad `body` (sign and prefix apart) to width: align "<", ">", "^" or "="
-- (padding between the sign/prefix and the digits)
local function pad_to(sign, prefix, body, width, fill, align)
  local s = sign .. prefix .. body
  local pad = (width or 0) - ulen(s)
  if pad <= 0 then return s end
  if align == "<" then return s .. fill:rep(pad) end
  if align == "^" then return fill:rep(floor(pad / 2)) .. s .. fill:rep(pad - floor(pad / 2)) end
  if align == "=" then return sign .. prefix .. fill:rep(pad) .. body end
  return fill:rep(pad) .. s
end

local function spec_error(spec, v)
  rt_error(fmt("Unknown format code '%s' for object of type '%s'", spec, pytype(v)))
end

-- format(v, spec): Python's format-spec mini-language
-- [[fill]align][sign][z][#][0][width][,|_][.precision][type]
local function format_spec(v, spec)
  if getmetatable(v) == Markup then v = v.s end
  if spec == "" then return tostr(v) end
  local p, fill, align = 1, nil, nil
  local c1 = spec:match("^[%z\1-\127\192-\255][\128-\191]*")
  local c2 = c1 and sub(spec, #c1 + 1, #c1 + 1)
  if c2 and find("<>=^", c2, 1, true) and c2 ~= "" then fill, align, p = c1, c2, #c1 + 2
  elseif c1 and find("<>=^", c1, 1, true) then align, p = c1, 2 end
  local sign = spec:match("^[-+ ]", p) or ""; p = p + #sign
  if sub(spec, p, p) == "z" then p = p + 1 end
  local alt = sub(spec, p, p) == "#"; if alt then p = p + 1 end
  local zero = sub(spec, p, p) == "0"; if zero then p = p + 1 end
  local width = spec:match("^%d+", p); if width then p = p + #width; width = tonumber(width) end
  local grouping = spec:match("^[,_]", p); if grouping then p = p + 1 end
  local prec = spec:match("^%.(%d+)", p); if prec then p = p + #prec + 1; prec = tonumber(prec) end
  local conv = sub(spec, p, p); p = p + 1
  if sub(spec, p) ~= "" then
    rt_error(fmt("Invalid format specifier '%s' for object of type '%s'", spec, pytype(v)))
  end
  -- the 0 flag: "0" fill unless one is given (and, for numbers, "=" alignment
  -- unless one is given)
  if zero then fill = fill or "0" end
  if grouping and conv == "n" then rt_error("Cannot specify '" .. grouping .. "' with 'n'.") end
  fill = fill or " "

  if type(v) == "string" then
    if conv ~= "" and conv ~= "s" then spec_error(conv, v) end
    if sign ~= "" then rt_error("Sign not allowed in string format specifier") end
    if alt then rt_error("Alternate form (#) not allowed in string format specifier") end
    if grouping then rt_error("Cannot specify '" .. grouping .. "' with 's'.") end
    if align == "=" then rt_error("'=' alignment not allowed in string format specifier") end
    local s = v
    if prec and ulen(s) > prec then s = concat(uchars(s), "", 1, prec) end
    return pad_to("", "", s, width, fill, align or "<")
  end

  local n = numv(v)
  if not n then rt_error(fmt("unsupported format string passed to %s.__format__", pytype(v))) end
  if zero then align = align or "=" end
  local is_int = not isfloat(v)
  local neg = n < 0 or (n == 0 and 1 / n < 0 and not is_int)
  local a = math.abs(n)
  local sg = neg and "-" or (sign == "+" and "+" or (sign == " " and " " or ""))
  local prefix, body, every = "", nil, 3
  if conv == "d" or conv == "b" or conv == "o" or conv == "x" or conv == "X" or conv == "c"
    or (conv == "" and is_int) or (conv == "n" and is_int) then
    if not is_int then spec_error(conv, v) end
    if prec then rt_error("Precision not allowed in integer format specifier") end
    if conv == "c" then
      if sign ~= "" then rt_error("Sign not allowed with integer format specifier 'c'") end
      if alt then rt_error("Alternate form (#) not allowed with integer format specifier 'c'") end
      if grouping then rt_error("Cannot specify '" .. grouping .. "' with 'c'.") end
      if n < 0 or n > 0x10FFFF then rt_error("%c arg not in range(0x110000)") end
      return pad_to("", "", J.utf8_char(n), width, fill, align or ">")
    end
    local base = (conv == "" or conv == "d" or conv == "n") and "d" or conv
    body = int_body(v, a, base)
    if grouping and base ~= "d" and grouping == "," then rt_error("Cannot specify ',' with '" .. conv .. "'.") end
    every = base == "d" and 3 or 4
    if alt and base ~= "d" then prefix = "0" .. (base == "X" and "X" or base) end
  elseif conv == "f" or conv == "F" or conv == "e" or conv == "E" or conv == "%" then
    local x = conv == "%" and a * 100 or a
    body = float_body(x, conv == "%" and "f" or conv, prec or 6, alt)
    if conv == "%" then body = body .. "%" end
  elseif conv == "g" or conv == "G" or conv == "" or conv == "n" then
    if conv == "" and not prec then
      -- str(float); "#" keeps a "." in the exponent form
      body = J.float_repr(a)
      if alt and not find(body, ".", 1, true) then body = body:gsub("e", ".e", 1) end
    elseif conv == "" then body = repr_precision(a, prec == 0 and 1 or prec, alt)
    else body = float_body(a, conv == "G" and "G" or "g", prec == 0 and 1 or (prec or 6), alt) end
  else
    spec_error(conv, v)
  end
  if grouping then
    local grouped = group_digits(body, grouping, every)
    -- zero padding with grouping: Python groups the padding zeros as well
    -- ("{:010,}" of 1234 is "00,001,234"), never starting with a separator
    if fill == "0" and align == "=" and width and body:match("^%x") then
      local want = width - ulen(sg) - ulen(prefix)
      local zeros = 0
      while ulen(grouped) < want do
        zeros = zeros + 1
        grouped = group_digits(("0"):rep(zeros) .. body, grouping, every)
        if sub(grouped, 1, 1) == grouping then grouped = "0" .. grouped end
      end
    end
    body = grouped
  end
  return pad_to(sg, prefix, body, width, fill, align or ">")
end

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
    if conv == "" or not find("sdirfFeEgGxXoca%", conv, 1, true) then
      rt_error("unsupported format character '" .. conv .. "'")
    end
    pos = p + 1
    if conv == "%" then
      out[#out + 1] = "%"
    else
      local v
      if key and mapping then v = mapping[key] else vi = vi + 1; v = vals[vi] end
      if v == nil then rt_error("not enough arguments for format string") end
      local left, plus, space = find(flags, "-", 1, true), find(flags, "+", 1, true), find(flags, " ", 1, true)
      local alt, zero = find(flags, "#", 1, true), find(flags, "0", 1, true) and not left
      local w = tonumber(width) or 0
      local r
      if conv == "s" or conv == "r" or conv == "a" or conv == "c" then
        if conv == "s" then r = tostr(v)
        elseif conv == "r" then r = repr(v)
        elseif conv == "a" then r = ascii_repr(v)
        elseif type(v) == "string" then
          if ulen(v) ~= 1 then rt_error("%c requires int or char") end
          r = v
        else
          local n = numv(v)
          if not n or isfloat(v) then rt_error("%c requires int or char") end
          if n < 0 or n > 0x10FFFF then rt_error("%c arg not in range(0x110000)") end
          r = J.utf8_char(n)
        end
        if prec and conv ~= "c" then
          local pn = tonumber(prec) or 0
          if ulen(r) > pn then r = concat(uchars(r), "", 1, pn) end
        end
        r = pad_to("", "", r, w, " ", left and "<" or ">")
      else
        local n = numv(v)
        if not n then
          if conv == "d" or conv == "i" then
            rt_error(fmt("%%%s format: a real number is required, not %s", conv, pytype(v)))
          end
          if conv == "x" or conv == "X" or conv == "o" then
            rt_error(fmt("%%%s format: an integer is required, not %s", conv, pytype(v)))
          end
          rt_error("must be real number, not " .. pytype(v))
        end
        local neg = n < 0 or (n == 0 and 1 / n < 0 and isfloat(v) and conv ~= "d" and conv ~= "i")
        local a2 = math.abs(n)
        local sg = neg and "-" or (plus and "+" or (space and " " or ""))
        local prefix, body = "", nil
        if conv == "d" or conv == "i" or conv == "x" or conv == "X" or conv == "o" then
          if conv ~= "d" and conv ~= "i" and isfloat(v) then
            rt_error("%" .. conv .. " format: an integer is required, not float")
          end
          if a2 == huge then rt_error("cannot convert float infinity to integer") end
          if a2 ~= a2 then rt_error("cannot convert float NaN to integer") end
          a2 = floor(a2)
          if neg and a2 == 0 then sg = plus and "+" or (space and " " or "") end
          body = int_body(v, a2, (conv == "d" or conv == "i") and "d" or conv)
          if prec and #body < (tonumber(prec) or 0) then body = ("0"):rep(tonumber(prec) - #body) .. body end
          if alt and conv ~= "d" and conv ~= "i" then prefix = "0" .. (conv == "X" and "X" or conv) end
        else
          body = float_body(a2, conv, prec and (tonumber(prec) or 0) or 6, alt)
        end
        r = pad_to(sg, prefix, body, w, zero and "0" or " ", left and "<" or (zero and "=" or ">"))
      end
      out[#out + 1] = r
    end
  end
  if vi < #vals and not mapping then rt_error("not all arguments converted during string formatting") end
  return concat(out)
end

-- one replacement field's value: arg_name ("" / digits / identifier), then
-- .attribute and [key] accessors (jinja2's sandbox checks them like getattr)
local function format_field_value(name, args, kw, auto)
  local head = name:match("^[^%.%[]*")
  local v
  if head == "" then
    if auto.manual then rt_error("cannot switch from manual field specification to automatic field numbering") end
    auto.used = true
    v = args[auto.n + 1]
    if v == nil then rt_error(fmt("Replacement index %d out of range for positional args tuple", auto.n)) end
    auto.n = auto.n + 1
  elseif head:match("^%d+$") then
    if auto.used then rt_error("cannot switch from automatic field numbering to manual field specification") end
    auto.manual = true
    v = args[tonumber(head) + 1]
    if v == nil then rt_error(fmt("Replacement index %s out of range for positional args tuple", head)) end
  else
    v = kw and kw[head]
    if v == nil then rt_error(fmt("KeyError: '%s'", head)) end
  end
  local p = #head + 1
  while p <= #name do
    local c = sub(name, p, p)
    if c == "." then
      local attr = name:match("^[^%.%[]+", p + 1)
      if not attr then rt_error("Empty attribute in format string") end
      v = getattr(v, attr)
      p = p + 1 + #attr
    elseif c == "[" then
      local key = name:match("^%[([^%]]+)%]", p)
      if not key then rt_error("Missing ']' in format string") end
      v = getitem(v, key:match("^%d+$") and tonumber(key) or key)
      p = p + #key + 2
    else
      rt_error("Only '.' or '[' may follow ']' in format field specifier")
    end
    if is_undef(v) then undef_fail(v) end
  end
  return v
end

local function brace_format_impl(s, args, kw, auto, depth)
  if depth > 2 then rt_error("Max string recursion exceeded") end
  local out, i, n = {}, 1, #s
  while i <= n do
    local a = find(s, "[{}]", i)
    if not a then out[#out + 1] = sub(s, i); break end
    out[#out + 1] = sub(s, i, a - 1)
    local c = sub(s, a, a)
    if sub(s, a + 1, a + 1) == c then
      out[#out + 1] = c; i = a + 2
    elseif c == "}" then
      rt_error("Single '}' encountered in format string")
    else
      -- the field runs to the matching "}" (a spec may nest {fields})
      local level, j = 1, a + 1
      while j <= n do
        local d = sub(s, j, j)
        if d == "{" then level = level + 1 elseif d == "}" then level = level - 1; if level == 0 then break end end
        j = j + 1
      end
      if j > n then rt_error("expected '}' before end of string") end
      local field = sub(s, a + 1, j - 1)
      local name, rest = field:match("^([^!:]*)(.*)$")
      local conv, spec = nil, ""
      if sub(rest, 1, 1) == "!" then
        conv = sub(rest, 2, 2)
        if not find("rsa", conv, 1, true) or conv == "" then rt_error("Unknown conversion specifier " .. conv) end
        rest = sub(rest, 3)
        if rest ~= "" and sub(rest, 1, 1) ~= ":" then rt_error("expected ':' after conversion specifier") end
      end
      if sub(rest, 1, 1) == ":" then spec = sub(rest, 2) end
      if find(spec, "{", 1, true) then spec = brace_format_impl(spec, args, kw, auto, depth + 1) end
      local v = format_field_value(name, args, kw, auto)
      if conv == "r" then v = repr(v) elseif conv == "s" then v = tostr(v) elseif conv == "a" then v = ascii_repr(v) end
      out[#out + 1] = format_spec(v, spec)
      i = j + 1
    end
  end
  return concat(out)
end

local function brace_format(s, args, kw)
  return brace_format_impl(s, args, kw, {n = 0}, 1)
end

-- for the other parts of the interpreter
M.Undefined = Undefined
M.Namespace = Namespace
M.Loop = Loop
M.Markup = Markup
M.tuples = tuples
M.tuple = tuple
M.namedtuple = namedtuple
M.undef = undef
M.is_undef = is_undef
M.undef_fail = undef_fail
M.rt_error = rt_error
M.pytype = pytype
M.numv = numv
M.intlike = intlike
M.is_big = is_big
M.isfloat = isfloat
M.mknum = mknum
M.is_str = is_str
M.is_plain = is_plain
M.is_ascii = is_ascii
M.ulen = ulen
M.uchars = uchars
M.is_space_char = is_space_char
M.strip_impl = strip_impl
M.case_op = case_op
M.case_map = case_map
M.is_word_char = is_word_char
M.str_repr = str_repr
M.repr = repr
M.tostr = tostr
M.truthy = truthy
M.eq = eq
M.lt = lt
M.op_add = op_add
M.op_sub = op_sub
M.op_mul = op_mul
M.op_div = op_div
M.op_floordiv = op_floordiv
M.op_mod = op_mod
M.op_pow = op_pow
M.op_neg = op_neg
M.op_pos = op_pos
M.op_in = op_in
M.iter_list = iter_list
M.length = length
M.str_methods = str_methods
M.dict_methods = dict_methods
M.list_methods = list_methods
M.getattr = getattr
M.to_index = to_index
M.getitem = getitem
M.slice_value = slice_value
M.call = call
M.arg = arg
M.as_str = as_str
M.percent_format = percent_format
M.format_spec = format_spec
M.brace_format = brace_format

return M
