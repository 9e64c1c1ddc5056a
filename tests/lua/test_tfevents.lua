-- TensorBoard event files (lfl._tfevents, lfl.tensorboard): records byte for byte
-- as torch's SummaryWriter writes them (tests/golden/tfevents, from
-- tests/ref/make_tfevents_goldens.py), appends, the reader, bad input.
local t = lfl.test
local tb = lfl.tensorboard
local golden = lfl.json.decode(lfl.fs.read(lfl.home .. "/tests/golden/tfevents/scalars.json"))

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

local function num(v)
  if v == "inf" then return math.huge elseif v == "nan" then return 0 / 0 end
  return v
end

local function tmpdir(name)
  local d = os.tmpname() .. "_" .. name
  os.remove(d:match("^(.*)_" .. name .. "$"))
  lfl.fs.mkdir(d)
  return d
end

t.suite("tfevents", {
  crc32c_known_vectors = function()
    -- CRC32C("123456789") = 0xe3069283 (RFC 3720); masked as TFRecord masks it
    local c = 0xe3069283
    local masked = (math.floor(c / 2 ^ 15) + (c * 2 ^ 17) % 2 ^ 32 + 0xa282ead8) % 2 ^ 32
    t.assert_eq(lfl._tfevents.masked_crc("123456789"), masked)
    -- the length crc of torch's first record (length 0x48), from the golden's bytes
    t.assert_eq(lfl._tfevents.masked_crc("\72\0\0\0\0\0\0\0"), 0x9d4892fe)
  end,

  version_record_matches_tensorboard = function()
    local v = golden.version
    t.assert_eq(hex(lfl._tfevents.version_record(golden.wall_time, v.writer)), v.hex)
  end,

  scalar_records_match_tensorboard = function()
    t.assert(#golden.scalars >= 9, "golden has its scalars")
    for _, s in ipairs(golden.scalars) do
      t.assert_eq(hex(lfl._tfevents.scalar_record(golden.wall_time, s.step, s.tag, num(s.value))), s.hex, s.tag)
    end
  end,

  write_and_read_back = function()
    local d = tmpdir("tfev")
    local w = tb.open(d .. "/run")
    t.assert(w.path:match("/events%.out%.tfevents%.%d%d%d%d%d%d%d%d%d%d%.[^/]+%.%d+%.0$"), w.path)
    w:log(3, {loss = 2.5, grad_norm = 0.125, learning_rate = 3e-5, epoch = 0.5, note = "text is skipped"})
    w:log(4, {eval_loss = 1.75, eval_runtime = 0.01, perplexity = nil})
    local evs = tb.read(w.path)
    t.assert_eq(#evs, 7)
    t.assert_eq(evs[1].file_version, "brain.Event:2")
    t.assert_eq(evs[1].writer, "lfl")
    t.assert(math.abs(evs[1].wall_time - os.time()) < 60, "wall_time is now: " .. evs[1].wall_time)
    local want = {{"train/epoch", 3, 0.5}, {"train/grad_norm", 3, 0.125}, {"train/learning_rate", 3, 3e-5},
      {"train/loss", 3, 2.5}, {"eval/loss", 4, 1.75}, {"eval/runtime", 4, 0.01}}
    for i, x in ipairs(want) do
      local e = evs[i + 1]
      t.assert_eq(e.tag, x[1]); t.assert_eq(e.step, x[2])
      t.assert(math.abs(e.value - x[3]) <= math.abs(x[3]) * 1e-7, x[1] .. " value " .. e.value)
    end
    -- the golden's records, concatenated in a file, read back as what was written
    local f = io.open(d .. "/golden.tfevents", "wb")
    local bytes = {}
    for _, s in ipairs(golden.scalars) do
      f:write((s.hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)))
      bytes[#bytes + 1] = s
    end
    f:close()
    local g = tb.read(d .. "/golden.tfevents")
    t.assert_eq(#g, #golden.scalars)
    for i, s in ipairs(golden.scalars) do
      t.assert_eq(g[i].tag, s.tag); t.assert_eq(g[i].step, s.step); t.assert_eq(g[i].wall_time, golden.wall_time)
      local v = num(s.value)
      if v ~= v then t.assert(g[i].value ~= g[i].value, "nan read as nan")
      else t.assert(g[i].value == v or math.abs(g[i].value - v) <= math.abs(v) * 6e-8, s.tag .. " " .. g[i].value) end
    end
    t.assert_eq(#tb.files(d .. "/run"), 1)
    lfl.fs.remove(d)
  end,

  bad_files_and_input = function()
    local d = tmpdir("tfbad")
    local rec = lfl._tfevents.scalar_record(1, 2, "train/loss", 1.5)
    local function write(name, s) local f = io.open(d .. "/" .. name, "wb"); f:write(s); f:close(); return d .. "/" .. name end
    t.assert_error(function() tb.read(write("trunc", rec:sub(1, #rec - 2))) end, "record 1 (byte 0): truncated data")
    local flipped = rec:sub(1, 20) .. string.char((rec:byte(21) + 1) % 256) .. rec:sub(22)
    t.assert_error(function() tb.read(write("crc", rec .. flipped)) end, "record 2 (byte " .. #rec .. "): bad data crc")
    t.assert_error(function() tb.read(write("len", "\1" .. rec:sub(2))) end, "bad length crc")
    t.assert_error(function() tb.read(d .. "/missing") end, "cannot open")
    t.assert_error(function() lfl._tfevents.write_version("/nonexistent/dir/ev", 1) end, "cannot open /nonexistent/dir/ev")
    t.assert_error(function() lfl._tfevents.write_scalars(d .. "/x", 1, 1.5, {}, {}) end, "step must be an integer")
    t.assert_error(function() lfl._tfevents.write_scalars(d .. "/x", 1, 1, {"a"}, {}) end, "1 tags but 0 values")
    t.assert_error(function() lfl._tfevents.write_scalars(d .. "/x", 1, 1, {"a"}, {"b"}) end,
      "the value of 'a' is not a number")
    lfl.fs.remove(d)
  end,

  tags_and_logdir_as_transformers = function()
    t.assert_eq(tb.tag("loss"), "train/loss")
    t.assert_eq(tb.tag("eval_loss"), "eval/loss")
    t.assert_eq(tb.tag("test_accuracy"), "test/accuracy")
    t.assert_eq(tb.tag("rewards/accuracies"), "train/rewards/accuracies")
    t.assert(tb.logdir("/o"):match("^/o/runs/%a%a%a%d%d_%d%d%-%d%d%-%d%d_.+$"), tb.logdir("/o"))
    -- $TENSORBOARD_LOGGING_DIR wins, with ~ expanded as os.path.expanduser does
    local real = os.getenv
    local env = {TENSORBOARD_LOGGING_DIR = "~/tb", HOME = "/home/u"}
    os.getenv = function(k) if env[k] then return env[k] end return real(k) end
    local ok, err = pcall(function()
      t.assert_eq(tb.logdir("/o"), "/home/u/tb")
      env.TENSORBOARD_LOGGING_DIR = "/abs/tb"
      t.assert_eq(tb.logdir("/o"), "/abs/tb")
    end)
    os.getenv = real
    if not ok then error(err, 0) end
  end,
})
t.run()
