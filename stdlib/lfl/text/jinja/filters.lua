-- Jinja's built-in filters and tests as jinja2 defines them, plus the tojson
-- filter as transformers defines it (json.dumps with ensure_ascii=False).
local J = require "lfl.text.pyjson"
local P = require "lfl.text.jinja.pyvalue"
local S = require "lfl.text.jinja.methods"
local fmt, concat, sub, find, floor, huge = string.format, table.concat, string.sub, string.find, math.floor, math.huge
local null, Float, is_list, is_dict, dkeys = J.null, J.Float, J.is_list, J.is_dict, J.keys
local Markup, arg, brace_format, case_map = P.Markup, P.arg, P.brace_format, P.case_map
local dict_methods, eq, getattr, getitem, is_plain = P.dict_methods, P.eq, P.getattr, P.getitem, P.is_plain
local is_str, is_undef, isfloat, iter_list, length = P.is_str, P.is_undef, P.isfloat, P.iter_list, P.length
local lt, mknum, namedtuple, numv = P.lt, P.mknum, P.namedtuple, P.numv
local op_add, op_in, op_mod = P.op_add, P.op_in, P.op_mod
local percent_format, pytype, repr, rt_error = P.percent_format, P.pytype, P.repr, P.rt_error
local str_methods, strip_impl, tostr, truthy, tuple = P.str_methods, P.strip_impl, P.tostr, P.truthy, P.tuple
local uchars, ulen, undef, undef_fail = P.uchars, P.ulen, P.undef, P.undef_fail
local is_space_char, is_word_char = P.is_space_char, P.is_word_char
local capitalize, pad_center, py_replace = S.capitalize, S.pad_center, S.py_replace
local is_big = P.is_big
local I = require "lfl.text.pyint"

local M = {}
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
  if is_big(v) then return v end
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
    if ok and base == 10 then
      -- exact at any length, as Python's int()
      local sign, d = s:match("^([-+]?)0*(%d+)$")
      return lfl.json.int((sign == "-" and d ~= "0") and "-" .. d or d)
    end
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

filters.abs = function(v)
  if is_big(v) then return I.abs(v) end
  local n = numv(v); if not n then rt_error("bad operand type for abs()") end return mknum(math.abs(n), isfloat(v)) end
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
  -- jinja2: split on runs of [-\s({[<] (kept), each piece's first character
  -- upper-cased and the rest lower-cased (str.upper, not str.title)
  local cs = uchars(tostr(v))
  local out, i, n = {}, 1, #cs
  local function is_sep(c) return c == "-" or c == "(" or c == "{" or c == "[" or c == "<" or is_space_char(c) end
  while i <= n do
    local j = i
    local sep = is_sep(cs[i])
    while j + 1 <= n and is_sep(cs[j + 1]) == sep do j = j + 1 end
    out[#out + 1] = case_map(cs[i], true) .. case_map(concat(cs, "", i + 1, j), false)
    i = j + 1
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
  if is_big(v) then return method == "common" and v or J.float(numv(v)) end
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
-- jinja2: len(re.findall(r"\w+", s)), \w being a Unicode letter, number or "_"
filters.wordcount = function(v)
  local n, in_word = 0, false
  for _, c in ipairs(uchars(tostr(v))) do
    local w = is_word_char(c)
    if w and not in_word then n = n + 1 end
    in_word = w
  end
  return n
end
-- jinja2's slice: `slices` columns, the first ones one longer; fill_with pads
-- the shorter ones (jinja2 yields them lazily; here they come as a list)
filters.slice = function(v, a, kw)
  local seq = iter_list(v)
  local slices = numv(arg(a, kw, 1, "slices", nil))
  if not slices or slices ~= floor(slices) then rt_error("slice: the number of slices must be an integer") end
  local fill = arg(a, kw, 2, "fill_with", null)
  local n = #seq
  local per, extra = floor(n / slices), n % slices
  local out, offset = {}, 0
  for k = 0, slices - 1 do
    local start = offset + k * per
    if k < extra then offset = offset + 1 end
    local stop = offset + (k + 1) * per
    local col = {}
    for i = start + 1, stop do col[#col + 1] = seq[i] end
    if fill ~= null and k >= extra then col[#col + 1] = fill end
    out[#out + 1] = J.list(col)
  end
  return J.list(out)
end

-- jinja2's groupby: sort by the attribute (strings compared lower-cased unless
-- case_sensitive), then one (grouper, list) named tuple per run of equal keys;
-- without case_sensitive the grouper is the first item's own value
filters.groupby = function(v, a, kw)
  local attribute = arg(a, kw, 1, "attribute", nil)
  if attribute == nil then rt_error("groupby() missing required argument 'attribute'") end
  local default = arg(a, kw, 2, "default", null)
  if default == null then default = nil end
  local cs = truthy(arg(a, kw, 3, "case_sensitive", false))
  local get = attr_getter(attribute, default)
  local function key(x)
    local k = get(x)
    if not cs and type(k) == "string" then return case_map(k, false) end
    return k
  end
  local items = iter_list(v)
  local keys, idx = {}, {}
  for i = 1, #items do keys[i] = key(items[i]); idx[i] = i end
  table.sort(idx, function(x, y)
    if eq(keys[x], keys[y]) then return x < y end
    return lt(keys[x], keys[y])
  end)
  local out, cur, cur_key = {}, nil, nil
  for _, i in ipairs(idx) do
    if cur == nil or not eq(keys[i], cur_key) then
      cur_key = keys[i]
      cur = J.list({})
      out[#out + 1] = namedtuple({cs and keys[i] or get(items[i]), cur}, {grouper = 1, list = 2})
    end
    cur[#cur + 1] = items[i]
  end
  return J.list(out)
end

-- jinja2's urlencode (url_quote): UTF-8 bytes percent-encoded except
-- A-Z a-z 0-9 _ . - ~ (and "/" for a plain string); a dict or a sequence of
-- pairs becomes k=v&k=v with spaces as "+"
local function url_quote(x, for_qs)
  local s = tostr(x)
  local r = s:gsub("[^%w_%.%-~" .. (for_qs and "" or "/") .. "]", function(c) return fmt("%%%02X", c:byte()) end)
  if for_qs then r = r:gsub("%%20", "+") end
  return r
end
filters.urlencode = function(v)
  if getmetatable(v) == Markup then v = v.s end
  if type(v) == "string" or not (is_plain(v) or is_undef(v)) then return url_quote(v, false) end
  local pairs_ = {}
  if is_dict(v) and not is_list(v) then
    for _, k in ipairs(dkeys(v)) do pairs_[#pairs_ + 1] = {k, v[k]} end
  else
    for i, item in ipairs(iter_list(v)) do
      local kv = iter_list(item)
      if #kv ~= 2 then rt_error(fmt("urlencode: item %d is not a (key, value) pair", i - 1)) end
      pairs_[#pairs_ + 1] = kv
    end
  end
  local out = {}
  for i, kv in ipairs(pairs_) do out[i] = url_quote(kv[1], true) .. "=" .. url_quote(kv[2], true) end
  return concat(out, "&")
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

tests.defined = function(v) return not is_undef(v) end
tests.undefined = function(v) return is_undef(v) end
tests.none = function(v) return v == null end
tests.boolean = function(v) return type(v) == "boolean" end
tests["true"] = function(v) return v == true end
tests["false"] = function(v) return v == false end
tests.integer = function(v) return (type(v) == "number" and pytype(v) == "int") or is_big(v) end
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

return M
