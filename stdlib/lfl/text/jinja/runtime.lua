-- The Jinja compiler and runtime: the AST becomes a tree of Lua closures that
-- render into a buffer (for loops with loop.*, macros, call blocks, scoping as
-- jinja2 does it), and the globals of transformers' environment
-- (raise_exception, strftime_now, namespace, dict, range, joiner, cycler).
local J = require "lfl.text.pyjson"
local P = require "lfl.text.jinja.pyvalue"
local F = require "lfl.text.jinja.filters"
local fmt, concat, sub = string.format, table.concat, string.sub
local Float, is_dict, dkeys = J.Float, J.is_dict, J.keys
local Loop, Markup, Namespace, as_str, call = P.Loop, P.Markup, P.Namespace, P.as_str, P.call
local eq, getattr = P.eq, P.getattr
local getitem, is_plain, iter_list, lt, numv = P.getitem, P.is_plain, P.iter_list, P.lt, P.numv
local op_add, op_div, op_floordiv, op_in, op_mod = P.op_add, P.op_div, P.op_floordiv, P.op_in, P.op_mod
local op_mul, op_neg, op_pos, op_pow, op_sub = P.op_mul, P.op_neg, P.op_pos, P.op_pow, P.op_sub
local pytype, rt_error, slice_value, state, tostr = P.pytype, P.rt_error, P.slice_value, P.state, P.tostr
local truthy, tuple, undef = P.truthy, P.tuple, P.undef
local filters, tests = F.filters, F.tests

local M = {}
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
    error(fmt("jinja: %s:%d: syntax error: no filter named '%s'", state.name, n.line or 0, name), 0)
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
    error(fmt("jinja: %s:%d: syntax error: no test named '%s'", state.name, n.line or 0, name), 0)
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
    return undef("the inline if-expression on line " .. state.line .. " evaluated to false and no else section was defined.")
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
    state.line = line
    buf[#buf + 1] = tostr(e(f))
  end
end
stmt_compilers["if"] = function(n)
  local conds, bodies = {}, {}
  for i, br in ipairs(n.branches) do conds[i] = compile_expr(br[1]); bodies[i] = compile_body(br[2]) end
  local else_ = n.else_ and compile_body(n.else_)
  local nb, line = #conds, n.line
  return function(f, buf)
    state.line = line
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
    state.line = line
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
      state.line = line
    end
  end
end
stmt_compilers.set = function(n)
  local target, e, line = n.target, compile_expr(n.e), n.line
  return function(f)
    state.line = line
    assign(target, f, e(f))
  end
end
stmt_compilers.setblock = function(n)
  local target, body, line = n.target, compile_body(n.body), n.line
  local filter = n.filter and compile_expr(n.filter)
  return function(f)
    state.line = line
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
    state.line = line
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
    local saved = state.line
    local s = render_body_to_string(body, mf)
    state.line = saved
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
    state.line = line
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
    state.line = line
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
-- dict(mapping or sequence of pairs, **kw), keys in Python's insertion order
globals.dict = function(args, kw)
  if #args > 1 then rt_error(fmt("dict expected at most 1 argument, got %d", #args)) end
  local t, order = {}, {}
  local function put(k, v)
    if getmetatable(k) == Float then k = k.v elseif getmetatable(k) == Markup then k = k.s end
    if type(k) == "table" then rt_error("unhashable type: '" .. pytype(k) .. "'") end
    if t[k] == nil then order[#order + 1] = k end
    t[k] = v
  end
  local src = args[1]
  if src ~= nil then
    if is_plain(src) and is_dict(src) then
      for _, k in ipairs(dkeys(src)) do put(k, src[k]) end
    else
      for i, item in ipairs(iter_list(src)) do
        local kv = iter_list(item)
        if #kv ~= 2 then
          rt_error(fmt("dictionary update sequence element #%d has length %d; 2 is required", i - 1, #kv))
        end
        put(kv[1], kv[2])
      end
    end
  end
  for _, k in ipairs(dkeys(kw or {})) do put(k, kw[k]) end
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

-- for the other parts of the interpreter
M.compile_body, M.run_body = compile_body, run_body

return M
