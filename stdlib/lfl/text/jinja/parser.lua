-- The Jinja parser: tokens -> AST, following jinja2's grammar and operator
-- precedence. Statements: if/for/set (and block set)/macro/call/filter/with,
-- transformers' generation block, break/continue (the loopcontrols extension).
local J = require "lfl.text.pyjson"
local L = require "lfl.text.jinja.lexer"
local fmt, concat = string.format, table.concat
local null = J.null
local syntax_error = L.syntax_error

local M = {}
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

-- tokens -> the template's statement list; break/continue are checked here
function M.parse(toks, name)
  local p = setmetatable({toks = toks, i = 1, name = name, loop_refs = 0}, Parser)
  local ast = p:subparse(nil)
  check_loop_controls(ast, false, name)
  return ast
end

return M
