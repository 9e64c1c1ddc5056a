-- Helpers of the Lua fuzz harnesses (tests/fuzz/*.lua, run by common.c;
-- require("fuzzlib")):
-- a clean error (bad input named and explained) is fine; a Lua runtime
-- error escaping the product code is a bug, and so is an error that is
-- not a string or a table the caller expects.
local M = {}

-- the messages of Lua runtime errors and of the bridge's argument checks
local RUNTIME = {"attempt to ", "bad argument", "stack overflow", "table index is", "invalid key to 'next'",
  "invalid value (at index", "string length overflow", "not enough memory", "number has no integer representation",
  "wrong number of arguments", "invalid option", "loop in gettable", "loop in settable", "C stack overflow"}

function M.is_runtime(msg)
  msg = tostring(msg)
  for _, p in ipairs(RUNTIME) do
    if msg:find(p, 1, true) then return true end
  end
  return false
end

local function settle(what, ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) ~= "string" or M.is_runtime(e) then
    error("BUG in " .. what .. ": " .. tostring(e), 0)
  end
  return false, e
end

-- runs fn(...): true, results when it returned; false, message when it raised
-- a clean string error; raises "BUG: ..." for a runtime error (with its traceback)
function M.guard(what, fn, ...)
  return settle(what, xpcall(fn, debug.traceback, ...))
end

return M
