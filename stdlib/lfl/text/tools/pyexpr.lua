-- A parser for the part of Python's expression syntax that LFM2's tool calls
-- use ([f(a="x", b=1), g()]), standing in for ast.parse(s, mode="eval") and
-- ast.literal_eval in LlamaFactory's LFM2 extractor. Nodes: {k = "call", func,
-- args, keywords = {{arg, value}}}, {k = "name", id}, {k = "const", v},
-- {k = "list" | "tuple" | "set", elts}, {k = "dict", keys, values},
-- {k = "neg" | "pos", operand}, {k = "other"} (parsed but not a literal).
-- parse() returns nil, why for a syntax error and for what it does not cover:
-- bytes, f-strings, complex numbers, \N{...} escapes, * and ** arguments.
local J = require "lfl.text.pyjson"
local find, sub, byte, char = string.find, string.sub, string.byte, string.char

local M = {}

local Fail = {}
local function fail(why) error(setmetatable({why = why}, Fail), 0) end

local KEYWORD_CONST = {True = true, False = false, None = J.null}

local ESC = {["\\"] = "\\", ["'"] = "'", ['"'] = '"', a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
  v = "\v"}

local function unescape(body)
  local out, i, n = {}, 1, #body
  while i <= n do
    local c = sub(body, i, i)
    if c ~= "\\" then out[#out + 1] = c; i = i + 1
    else
      local e = sub(body, i + 1, i + 1)
      if ESC[e] then out[#out + 1] = ESC[e]; i = i + 2
      elseif e == "\n" then i = i + 2
      elseif find(e, "^[0-7]") then
        local oct = body:match("^[0-7][0-7]?[0-7]?", i + 1)
        out[#out + 1] = J.utf8_char(tonumber(oct, 8)); i = i + 1 + #oct
      elseif e == "x" or e == "u" or e == "U" then
        local len = ({x = 2, u = 4, U = 8})[e]
        local hex = sub(body, i + 2, i + 1 + len)
        if #hex ~= len or not find(hex, "^%x+$") then fail("truncated \\" .. e .. " escape") end
        out[#out + 1] = J.utf8_char(tonumber(hex, 16)); i = i + 2 + len
      elseif e == "N" then fail("\\N{...} escapes are not supported")
      else out[#out + 1] = "\\"; i = i + 1 end
    end
  end
  return table.concat(out)
end

-- tokens: {t = "name"|"num"|"str"|"op", v = ...}
local function tokenize(s)
  local toks, i, n = {}, 1, #s
  while i <= n do
    local _, e = find(s, "^%s+", i)
    if e then i = e + 1 end
    if i > n then break end
    local c = sub(s, i, i)
    local pre, q = s:match("^([rRuUbBfF]?[rRbBfF]?)(['\"])", i)
    if q and (pre == "" or not find(sub(s, i - 1, i - 1), "^[%w_]")) then
      local lower = pre:lower()
      if find(lower, "[bf]") then fail("bytes and f-strings are not supported") end
      local j = i + #pre
      local triple = sub(s, j, j + 2) == q:rep(3)
      local delim = triple and q:rep(3) or q
      local k = j + #delim
      local body_s = k
      while true do
        if k > n then fail("unterminated string") end
        local ch = sub(s, k, k)
        if ch == "\\" then k = k + 2
        elseif sub(s, k, k + #delim - 1) == delim then break
        elseif ch == "\n" and not triple then fail("newline in a string")
        else k = k + 1 end
      end
      local body = sub(s, body_s, k - 1)
      toks[#toks + 1] = {t = "str", v = lower:find("r") and body or unescape(body)}
      i = k + #delim
    elseif find(c, "^[%a_]") then
      local _, e2 = find(s, "^[%w_]+", i)
      toks[#toks + 1] = {t = "name", v = sub(s, i, e2)}
      i = e2 + 1
    elseif find(c, "^%d") or (c == "." and find(sub(s, i + 1, i + 1), "^%d")) then
      local text = s:match("^0[xX][%x_]+", i) or s:match("^0[oO][0-7_]+", i) or s:match("^0[bB][01_]+", i)
      local v
      if text then
        local base = ({x = 16, o = 8, b = 2})[text:sub(2, 2):lower()]
        v = tonumber((text:sub(3):gsub("_", "")), base)
      else
        text = s:match("^[%d_]*%.?[%d_]*[eE][+-]?[%d_]+", i) or s:match("^[%d_]*%.?[%d_]*", i)
        local clean = text:gsub("_", "")
        if find(text, "[.eE]") then v = J.float(tonumber(clean))
        else
          if #clean > 1 and sub(clean, 1, 1) == "0" and find(clean, "[1-9]") then fail("leading zeros in an integer") end
          v = tonumber(clean)
        end
        if v == nil then fail("bad number " .. text) end
      end
      i = i + #text
      if find(sub(s, i, i), "^[jJ]") then fail("complex numbers are not supported") end
      if find(sub(s, i, i), "^[%w_]") then fail("invalid number literal") end
      toks[#toks + 1] = {t = "num", v = v}
    elseif sub(s, i, i + 1) == "**" then
      toks[#toks + 1] = {t = "op", v = "**"}; i = i + 2
    elseif find(c, "^[%[%](){},:=%-+*.]") then
      toks[#toks + 1] = {t = "op", v = c}; i = i + 1
    else
      fail("unexpected character " .. c)
    end
  end
  return toks
end

local P = {}
P.__index = P

function P:peek(v) local t = self.toks[self.i]; return t and t.t == "op" and t.v == v end
function P:next() local t = self.toks[self.i]; self.i = self.i + 1; return t end
function P:expect(v) if not self:peek(v) then fail("expected " .. v) end; self.i = self.i + 1 end

-- items up to the closing bracket, trailing comma allowed
function P:seq(close, item)
  local out = {}
  while not self:peek(close) do
    out[#out + 1] = item(self)
    if not self:peek(",") then break end
    self.i = self.i + 1
  end
  self:expect(close)
  return out
end

function P:atom()
  local t = self:next()
  if not t then fail("unexpected end") end
  if t.t == "num" then return {k = "const", v = t.v} end
  if t.t == "str" then
    local parts = {t.v}
    while self.toks[self.i] and self.toks[self.i].t == "str" do parts[#parts + 1] = self:next().v end
    return {k = "const", v = table.concat(parts)}
  end
  if t.t == "name" then
    if KEYWORD_CONST[t.v] ~= nil then return {k = "const", v = KEYWORD_CONST[t.v]} end
    return {k = "name", id = t.v}
  end
  if t.v == "-" or t.v == "+" then return {k = t.v == "-" and "neg" or "pos", operand = self:atom_expr()} end
  if t.v == "[" then return {k = "list", elts = self:seq("]", P.expr)} end
  if t.v == "(" then
    if self:peek(")") then self.i = self.i + 1; return {k = "tuple", elts = {}} end
    local first = self:expr()
    if self:peek(")") then self.i = self.i + 1; return first end
    self:expect(",")
    local rest = self:seq(")", P.expr)
    table.insert(rest, 1, first)
    return {k = "tuple", elts = rest}
  end
  if t.v == "{" then
    if self:peek("}") then self.i = self.i + 1; return {k = "dict", keys = {}, values = {}} end
    local first = self:expr()
    if self:peek(":") then
      self.i = self.i + 1
      local keys, values = {first}, {self:expr()}
      while self:peek(",") do
        self.i = self.i + 1
        if self:peek("}") then break end
        keys[#keys + 1] = self:expr(); self:expect(":"); values[#values + 1] = self:expr()
      end
      self:expect("}")
      return {k = "dict", keys = keys, values = values}
    end
    local elts = {first}
    if self:peek(",") then
      self.i = self.i + 1
      for _, e in ipairs(self:seq("}", P.expr)) do elts[#elts + 1] = e end
    else
      self:expect("}")
    end
    return {k = "set", elts = elts}
  end
  fail("unexpected " .. tostring(t.v))
end

function P:arg()
  if self:peek("*") or self:peek("**") then fail("* and ** arguments are not supported") end
  local t, t2 = self.toks[self.i], self.toks[self.i + 1]
  if t and t.t == "name" and t2 and t2.t == "op" and t2.v == "=" then
    self.i = self.i + 2
    return {arg = t.v, value = self:expr()}
  end
  return {value = self:expr()}
end

function P:atom_expr()
  local node = self:atom()
  while true do
    if self:peek("(") then
      self.i = self.i + 1
      local call = {k = "call", func = node, args = {}, keywords = {}}
      -- a repeated keyword is a compile-time error in Python, not a parse error:
      -- ast.parse keeps both and the extractor's dict keeps the last value
      for _, a in ipairs(self:seq(")", P.arg)) do
        if a.arg then
          call.keywords[#call.keywords + 1] = a
        else
          if #call.keywords > 0 then fail("positional argument follows keyword argument") end
          call.args[#call.args + 1] = a.value
        end
      end
      node = call
    elseif self:peek(".") then
      self.i = self.i + 1
      local t = self:next()
      if not t or t.t ~= "name" then fail("expected a name after .") end
      node = {k = "other"}
    else
      return node
    end
  end
end

P.expr = P.atom_expr

-- parse(s) -> node, or nil and the reason
function M.parse(s)
  local ok, res = pcall(function()
    local p = setmetatable({toks = tokenize(s), i = 1}, P)
    local node = p:expr()
    if p.i <= #p.toks then fail("unexpected text after the expression") end
    return node
  end)
  if ok then return res end
  if getmetatable(res) == Fail then return nil, res.why end
  error(res, 0)
end

-- ast.literal_eval(node): a pyjson value, or nil and the reason
function M.literal(node)
  local k = node.k
  if k == "const" then return node.v end
  if k == "neg" or k == "pos" then
    local v = M.literal(node.operand)
    local x = J.num(v)
    if x == nil or type(v) == "boolean" or node.operand.k ~= "const" then return nil, "malformed node" end
    if k == "pos" then return v end
    return J.is_float(v) and J.float(-x) or -x
  end
  if k == "list" or k == "tuple" then
    local out = {}
    for i, e in ipairs(node.elts) do
      local v, why = M.literal(e)
      if v == nil then return nil, why end
      out[i] = v
    end
    return J.list(out)
  end
  if k == "dict" then
    local out = J.odict()
    for i, kn in ipairs(node.keys) do
      local key, why = M.literal(kn)
      if key == nil then return nil, why end
      local v, why2 = M.literal(node.values[i])
      if v == nil then return nil, why2 end
      if type(key) ~= "string" then return nil, "non-string dict keys are not supported" end
      J.set(out, key, v)
    end
    return out
  end
  if k == "set" then return nil, "sets cannot be written as JSON" end
  return nil, "malformed node"
end

return M
