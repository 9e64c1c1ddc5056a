-- report_to tensorboard: the scalars transformers' TensorBoardCallback logs
-- (train/<key>, eval/<key> at the global step) written as TensorBoard event
-- files by lfl._tfevents (C), and a reader of those files for checks.
local lfl = lfl
local fmt = string.format
local byte, sub = string.byte, string.sub

local M = {}

M.WRITER = "lfl" -- Event.source_metadata.writer of the files lfl writes

-- where TensorBoardCallback writes: $TENSORBOARD_LOGGING_DIR, else
-- <output_dir>/runs/<Mon DD_HH-MM-SS>_<host> (transformers' default_logdir)
function M.logdir(output_dir)
  local env = os.getenv("TENSORBOARD_LOGGING_DIR")
  if env and env ~= "" then
    local home = os.getenv("HOME")
    if home and (env == "~" or env:sub(1, 2) == "~/") then env = home .. env:sub(2) end
    return env
  end
  return fmt("%s/runs/%s_%s", output_dir, os.date("%b%d_%H-%M-%S"), lfl._tfevents.hostname())
end

-- transformers' rewrite_logs: eval_x -> eval/x, test_x -> test/x, else train/x
function M.tag(key)
  if key:sub(1, 5) == "eval_" then return "eval/" .. key:sub(6) end
  if key:sub(1, 5) == "test_" then return "test/" .. key:sub(6) end
  return "train/" .. key
end

local Writer = {}
Writer.__index = Writer

-- a writer appending to a new events.out.tfevents.<time>.<host>.<pid>.0 in dir
-- (the name torch's SummaryWriter gives), opened with the file_version record
function M.open(dir)
  lfl.fs.mkdir(dir)
  local now = lfl._tfevents.walltime()
  local path = fmt("%s/events.out.tfevents.%010d.%s.%d.0", dir, math.floor(now), lfl._tfevents.hostname(),
    lfl.sys.pid())
  lfl._tfevents.write_version(path, now, M.WRITER)
  return setmetatable({dir = dir, path = path}, Writer)
end

-- logs: {key = number} as the Trainer hands them to on_log; each number becomes one
-- scalar event at step (sorted by tag: Lua tables keep no order); other values are skipped
function Writer:log(step, logs)
  local keys = {}
  for k, v in pairs(logs) do
    if type(v) == "number" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local tags, vals = {}, {}
  for i, k in ipairs(keys) do tags[i], vals[i] = M.tag(k), logs[k] end
  if #tags > 0 then lfl._tfevents.write_scalars(self.path, lfl._tfevents.walltime(), step, tags, vals) end
end

-- little-endian unsigned integer of n bytes at s[i..]
local function le(s, i, n)
  local v = 0
  for k = n - 1, 0, -1 do v = v * 256 + byte(s, i + k) end
  return v
end

local function float_of(bits, ebits, mbits)
  local sign = bits >= 2 ^ (ebits + mbits) and -1 or 1
  if sign < 0 then bits = bits - 2 ^ (ebits + mbits) end
  local e = math.floor(bits / 2 ^ mbits)
  local m = bits - e * 2 ^ mbits
  local bias = 2 ^ (ebits - 1) - 1
  if e == 2 ^ ebits - 1 then return m == 0 and sign * math.huge or 0 / 0 end
  if e == 0 then return sign * math.ldexp(m, 1 - bias - mbits) end
  return sign * math.ldexp(m + 2 ^ mbits, e - bias - mbits)
end

-- varint at s[i..]: value, next index (exact below 2^53)
local function varint(s, i, where)
  local v, mul = 0, 1
  while true do
    local b = byte(s, i)
    if not b then error(where .. ": truncated varint", 0) end
    v = v + (b % 128) * mul
    mul = mul * 128
    i = i + 1
    if b < 128 then return v, i end
  end
end

-- the fields of one protobuf message: {[field] = {values...}}; length-delimited values are strings
local function fields(s, where)
  local out, i = {}, 1
  while i <= #s do
    local key
    key, i = varint(s, i, where)
    local f, wire = math.floor(key / 8), key % 8
    local v
    if wire == 0 then v, i = varint(s, i, where)
    elseif wire == 1 then v = sub(s, i, i + 7); i = i + 8
    elseif wire == 5 then v = sub(s, i, i + 3); i = i + 4
    elseif wire == 2 then
      local n
      n, i = varint(s, i, where)
      v = sub(s, i, i + n - 1); i = i + n
    else error(fmt("%s: wire type %d is not read", where, wire), 0) end
    if i > #s + 1 then error(where .. ": truncated field", 0) end
    out[f] = out[f] or {}
    table.insert(out[f], v)
  end
  return out
end

-- the events of an event file, checking every record's length and crcs:
-- {{wall_time=, step=, file_version=?, writer=?, tag=?, value=?}, ...} (one
-- entry per summary value, as lfl and add_scalar write one value per event)
function M.read(path)
  local f = io.open(path, "rb")
  if not f then error(path .. ": cannot open", 0) end
  local s = f:read("*a")
  f:close()
  local out, i, n = {}, 1, 0
  while i <= #s do
    n = n + 1
    local where = fmt("%s: record %d (byte %d)", path, n, i - 1)
    if i + 11 > #s then error(where .. ": truncated header", 0) end
    local len = le(s, i, 8)
    if lfl._tfevents.masked_crc(sub(s, i, i + 7)) ~= le(s, i + 8, 4) then error(where .. ": bad length crc", 0) end
    if i + 12 + len + 3 > #s then error(where .. ": truncated data", 0) end
    local data = sub(s, i + 12, i + 11 + len)
    if lfl._tfevents.masked_crc(data) ~= le(s, i + 12 + len, 4) then error(where .. ": bad data crc", 0) end
    i = i + 16 + len
    local ev = fields(data, where)
    local base = {wall_time = ev[1] and float_of(le(ev[1][1], 1, 8), 11, 52) or 0, step = ev[2] and ev[2][1] or 0,
      file_version = ev[3] and ev[3][1], writer = ev[10] and (fields(ev[10][1], where)[1] or {})[1]}
    if ev[5] then
      for _, value in ipairs(fields(ev[5][1], where)[1] or {}) do
        local vf = fields(value, where)
        local e = {wall_time = base.wall_time, step = base.step, tag = vf[1] and vf[1][1],
          value = vf[2] and float_of(le(vf[2][1], 1, 4), 8, 23)}
        out[#out + 1] = e
      end
    else
      out[#out + 1] = base
    end
  end
  return out
end

-- the event files in dir, sorted by name
function M.files(dir)
  local out = {}
  for _, name in ipairs(lfl.fs.list(dir)) do
    if name:match("^events%.out%.tfevents%.") then out[#out + 1] = dir .. "/" .. name end
  end
  return out
end

return M
