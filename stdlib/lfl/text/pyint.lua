-- Python ints beyond 2^53: lfl.json and lfl.pyjson decode an integer that a
-- double cannot hold exactly into an interned table {digits = "-123..."} with
-- the metatable lfl.json.Int (made in lua/l_json.c); integers up to 2^53 stay
-- Lua numbers. This module gives those values exact arithmetic (+ - * // %
-- and ** with a whole exponent, on magnitudes in base-10^7 limbs), ordering,
-- conversion to float and to other bases, and installs them as Int's
-- metamethods, so Lua code (and the Jinja runtime) can use them like
-- numbers. Results are normalised: a result that fits 2^53 is a Lua number.
--
--   local I = require "lfl.text.pyint"
--   local x = lfl.json.decode("1234567890123456789")   -- an Int
--   tostring(x + 1)   --> "1234567890123456790"
--   I.is_int(x), I.cmp(a, b), I.divmod(a, b), I.tonumber(x), I.to_base(x, 16)
local lfl = lfl
local fmt, concat, floor = string.format, table.concat, math.floor

local Int = assert(lfl.json.Int, "lfl.text.pyint: lfl.json.Int is missing")
local make = lfl.json.int

local M = {Int = Int}

local BASE, BD = 10000000, 7

function M.is_int(x) return getmetatable(x) == Int end

-- x as {neg, mag}: the sign and the decimal digits of |x|; x is an Int, an
-- integral Lua number or a boolean
local function parts(x)
  if type(x) == "number" then
    if x ~= floor(x) or x ~= x or x == math.huge or x == -math.huge then
      error(fmt("pyint: %s is not an integer", tostring(x)), 2)
    end
    return x < 0, fmt("%.0f", math.abs(x))
  end
  if type(x) == "boolean" then return false, x and "1" or "0" end
  if getmetatable(x) == Int then
    local d = x.digits
    if d:sub(1, 1) == "-" then return true, d:sub(2) end
    return false, d
  end
  error("pyint: not an integer: " .. type(x), 2)
end

-- a sign and a magnitude's digits -> a Lua number when it fits 2^53, else the Int
local function norm(neg, mag)
  mag = mag:gsub("^0+", "")
  if mag == "" then return 0 end
  return make(neg and "-" .. mag or mag)
end

local function limbs(mag)
  local t = {}
  for i = #mag, 1, -BD do t[#t + 1] = tonumber(mag:sub(i - BD + 1 > 0 and i - BD + 1 or 1, i)) end
  return t
end

local function digits_of(t)
  local n = #t
  while n > 1 and t[n] == 0 do n = n - 1 end
  local out = {fmt("%d", t[n])}
  for i = n - 1, 1, -1 do out[#out + 1] = fmt("%07d", t[i]) end
  return concat(out)
end

-- magnitudes as digit strings: compare, add, subtract (a >= b), multiply
local function cmp_mag(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function add_mag(a, b)
  local x, y, r, carry = limbs(a), limbs(b), {}, 0
  for i = 1, math.max(#x, #y) do
    local s = (x[i] or 0) + (y[i] or 0) + carry
    if s >= BASE then r[i] = s - BASE; carry = 1 else r[i] = s; carry = 0 end
  end
  if carry > 0 then r[#r + 1] = carry end
  return digits_of(r)
end

local function sub_mag(a, b)
  local x, y, r, borrow = limbs(a), limbs(b), {}, 0
  for i = 1, #x do
    local s = x[i] - (y[i] or 0) - borrow
    if s < 0 then r[i] = s + BASE; borrow = 1 else r[i] = s; borrow = 0 end
  end
  return digits_of(r)
end

local function mul_mag(a, b)
  if a == "0" or b == "0" then return "0" end
  local x, y, r = limbs(a), limbs(b), {}
  for i = 1, #x + #y do r[i] = 0 end
  for i = 1, #x do
    local carry, xi = 0, x[i]
    for j = 1, #y do
      -- < 10^7 + 10^14 + 10^7: exact in a double
      local cur = r[i + j - 1] + xi * y[j] + carry
      carry = floor(cur / BASE)
      r[i + j - 1] = cur - carry * BASE
    end
    local k = i + #y
    while carry > 0 do
      local cur = r[k] + carry
      carry = floor(cur / BASE)
      r[k] = cur - carry * BASE
      k = k + 1
    end
  end
  return digits_of(r)
end

-- |a| divmod |b| (b ~= "0"): quotient and remainder digits
local function divmod_mag(a, b)
  if cmp_mag(a, b) < 0 then return "0", a end
  if #b <= BD then
    local d, x, q, rem = tonumber(b), limbs(a), {}, 0
    for i = #x, 1, -1 do
      local cur = rem * BASE + x[i] -- < 10^14
      q[i] = floor(cur / d)
      rem = cur - q[i] * d
    end
    return digits_of(q), fmt("%d", rem)
  end
  -- schoolbook in base 10: at most 9 subtractions per digit
  local q, rem = {}, "0"
  for i = 1, #a do
    rem = (rem == "0" and "" or rem) .. a:sub(i, i)
    if rem == "" or rem:match("^0+$") then rem = "0" end
    local k = 0
    while cmp_mag(rem, b) >= 0 do rem = sub_mag(rem, b); k = k + 1 end
    q[i] = k
  end
  return (concat(q):gsub("^0+", "")), rem
end

-- signed helpers on {neg, mag}
local function add_signed(an, am, bn, bm)
  if an == bn then return an, add_mag(am, bm) end
  local c = cmp_mag(am, bm)
  if c == 0 then return false, "0" end
  if c > 0 then return an, sub_mag(am, bm) end
  return bn, sub_mag(bm, am)
end

function M.add(a, b)
  local an, am = parts(a)
  local bn, bm = parts(b)
  return norm(add_signed(an, am, bn, bm))
end

function M.sub(a, b)
  local an, am = parts(a)
  local bn, bm = parts(b)
  return norm(add_signed(an, am, not bn, bm))
end

function M.mul(a, b)
  local an, am = parts(a)
  local bn, bm = parts(b)
  return norm(an ~= bn, mul_mag(am, bm))
end

-- Python's divmod for ints: floor division, the remainder takes b's sign
function M.divmod(a, b)
  local an, am = parts(a)
  local bn, bm = parts(b)
  if bm == "0" then error("integer division or modulo by zero", 2) end
  local q, r = divmod_mag(am, bm)
  if an ~= bn and r ~= "0" then
    q = add_mag(q, "1")
    r = sub_mag(bm, r)
  end
  return norm(an ~= bn, q), norm(bn, r)
end

function M.neg(a)
  local an, am = parts(a)
  return norm(not an, am)
end

function M.abs(a)
  local _, am = parts(a)
  return norm(false, am)
end

-- a ** e for a whole e >= 0 (refused past a million digits, as a template
-- has no use for such a number)
function M.pow(a, e)
  local en, em = parts(e)
  if en then error("pyint: a negative exponent gives a float", 2) end
  local an, am = parts(a)
  local n = tonumber(em)
  if am ~= "0" and am ~= "1" and (#em > 9 or #am * n > 1000000) then
    error("pyint: the result would have more than a million digits", 2)
  end
  local result, base = "1", am
  while n > 0 do
    if n % 2 == 1 then result = mul_mag(result, base) end
    n = floor(n / 2)
    if n > 0 then base = mul_mag(base, base) end
  end
  return norm(an and tonumber(em:sub(-1)) % 2 == 1, result)
end

-- -1, 0, 1; either side may also be a float (compared exactly, as Python does)
function M.cmp(a, b)
  for _, x in ipairs({a, b}) do
    if type(x) == "number" and x ~= x then return nil end -- NaN: unordered
  end
  local function side(x)
    if type(x) == "number" and (x == math.huge or x == -math.huge) then return x end
    return nil
  end
  local ia, ib = side(a), side(b)
  if ia or ib then
    if ia and ib then return ia == ib and 0 or (ia < ib and -1 or 1) end
    if ia then return ia > 0 and 1 or -1 end
    return ib > 0 and -1 or 1
  end
  -- a non-integral float: compare its floor, and ties go to the float
  local fa = type(a) == "number" and a ~= floor(a)
  local fb = type(b) == "number" and b ~= floor(b)
  local an, am = parts(fa and floor(a) or a)
  local bn, bm = parts(fb and floor(b) or b)
  local c
  if am == "0" and bm == "0" then c = 0
  elseif an ~= bn then c = an and -1 or 1
  else
    c = cmp_mag(am, bm)
    if an then c = -c end
  end
  if c == 0 then
    if fa and not fb then return 1 end
    if fb and not fa then return -1 end
  end
  return c
end

-- the nearest double (as Python's float(x))
function M.tonumber(x)
  if type(x) == "number" then return x end
  if type(x) == "boolean" then return x and 1 or 0 end
  return tonumber(x.digits)
end

-- the decimal text
function M.str(x)
  if getmetatable(x) == Int then return x.digits end
  local neg, mag = parts(x)
  return (neg and mag ~= "0" and "-" or "") .. mag
end

-- |x| in base 2, 8 or 16 (digits only, lower case)
function M.to_base(x, base)
  local _, mag = parts(x)
  if mag == "0" then return "0" end
  local out = {}
  local sym = "0123456789abcdef"
  local b = fmt("%d", base)
  while mag ~= "0" do
    local q, r = divmod_mag(mag, b)
    local d = tonumber(r)
    out[#out + 1] = sym:sub(d + 1, d + 1)
    mag = q == "" and "0" or q
  end
  return string.reverse(concat(out))
end

-- ---- Int's metamethods: Lua code can add, compare and print these values

-- an operand of an Int metamethod: an Int or an integral number as is, any
-- other number (a float) as nil, so the result is a float
local function int_or_nil(x)
  if getmetatable(x) == Int then return x end
  if type(x) == "number" and x == floor(x) and x == x and x ~= math.huge and x ~= -math.huge then return x end
  return nil
end

local function arith(exact, float_op)
  return function(a, b)
    local ia, ib = int_or_nil(a), int_or_nil(b)
    if ia and ib then return exact(ia, ib) end
    if (type(a) ~= "number" and getmetatable(a) ~= Int) or (type(b) ~= "number" and getmetatable(b) ~= Int) then
      error(fmt("attempt to perform arithmetic on an int and a %s",
        getmetatable(a) == Int and type(b) or type(a)), 2)
    end
    return float_op(M.tonumber(a), M.tonumber(b))
  end
end

Int.__add = arith(M.add, function(x, y) return x + y end)
Int.__sub = arith(M.sub, function(x, y) return x - y end)
Int.__mul = arith(M.mul, function(x, y) return x * y end)
Int.__div = function(a, b) return M.tonumber(a) / M.tonumber(b) end
Int.__mod = arith(function(a, b) local _, r = M.divmod(a, b); return r end,
  function(x, y) return x - floor(x / y) * y end)
Int.__pow = function(a, b)
  local ia, ib = int_or_nil(a), int_or_nil(b)
  if ia and ib and M.cmp(ib, 0) >= 0 then return M.pow(ia, ib) end
  return M.tonumber(a) ^ M.tonumber(b)
end
Int.__unm = M.neg
-- LuaJIT calls these only when both sides are Ints (an Int and a number
-- cannot be ordered with < in Lua; use pyint.cmp)
Int.__lt = function(a, b) return M.cmp(a, b) < 0 end
Int.__le = function(a, b) return M.cmp(a, b) <= 0 end
Int.__concat = function(a, b)
  local function s(x) if getmetatable(x) == Int then return x.digits end return x end
  return s(a) .. s(b)
end

return M
