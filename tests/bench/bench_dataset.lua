-- Memory and time of a large tokenized SFT set held as an lfl.Dataset (C
-- buffers, core/data/dataset.h) against the Lua-table rows the cache handed
-- out before (one table per row and field). Each phase runs in its own process
-- so its peak RSS is its own:
--
--   ./build/lfl tests/bench/bench_dataset.lua build      [N] [file] [batch]
--   ./build/lfl tests/bench/bench_dataset.lua reload     [N] [file] [batch]
--   ./build/lfl tests/bench/bench_dataset.lua lua_reload [N] [file] [batch]
--
-- build: N alpaca-style rows (default 1,000,000): lengths 100..400 tokens
-- (uniform), the first 30..60% of each row a prompt with labels -100, token ids
-- cut from alpaca_demo + identity tokenized with SmolLM2's tokenizer and
-- smollm template. 4096 distinct rows are made and the N-row list refers to
-- them in turn (as Lua rows, that list is small; the C dataset holds every
-- token). Then lfl.dataset.from_rows, and ds:save(file) (default
-- /tmp/lfl_bench_dataset.safetensors).
-- reload: lfl.dataset.load of that file (mapped, nothing copied), then one
-- epoch of ds:batches{batch_size = batch (4)} + ds:collate(idx, "pack").
-- lua_reload: what lfl.dataset_cache did before: the same tensors read back
-- into Lua tables (lfl._tokcache.unpack per column, a table per row), then
-- a share of an epoch with lfl.data.shuffle + lfl.data.collate.pack_row.
-- RSS is split into anonymous memory and mapped file pages (/proc/self/status:
-- RssAnon, RssFile); file pages are the page cache's, shared and reclaimable.
local fmt = string.format
local clock = lfl.sys.clock
local phase = arg[1] or "build"
local N = tonumber(arg[2] or "1000000")
local path = arg[3] or "/tmp/lfl_bench_dataset.safetensors"
local BS = tonumber(arg[4] or "4")
local collate = require("lfl.data.collate")

local function status()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("*a")
  f:close()
  local function mb(k) return (tonumber(s:match(k .. ":%s*(%d+)")) or 0) / 1024 end
  return {rss = mb("VmRSS"), peak = mb("VmHWM"), anon = mb("RssAnon"), file = mb("RssFile")}
end

-- t: wall seconds since the step began (cpu: os.clock() then): wall and process
-- CPU time, the steadier figure on a shared machine
local function report(what, t, s0, cpu)
  local s = status()
  local c = cpu and fmt(" (cpu %6.2f)", os.clock() - cpu) or "             "
  print(fmt("  %-34s %8.2f s%s   RSS %7.0f MB (anon %7.0f, file %6.0f)   peak %7.0f MB%s", what, t, c, s.rss, s.anon, s.file,
    s.peak, s0 and fmt("   +%.0f MB anon", s.anon - s0.anon) or ""))
  return s
end

local function gc() collectgarbage(); collectgarbage() end

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  for i = 1, a:numel() do if a:_at(i) ~= b:_at(i) then return false end end
  return true
end

if phase == "build" then
  local s0 = status()
  local sft = require("recipes.approaches.sft")
  local model = (os.getenv("LFL_CACHE") or os.getenv("HOME") .. "/.cache/lfl") .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  local tok = lfl.tokenizer.load(model)
  local a = {stage = "sft", template = "smollm", dataset = "alpaca_demo,identity", dataset_dir = lfl.home .. "/recipes/data",
             cutoff_len = 1024, preprocessing_batch_size = 1000, val_size = 0, seed = 42}
  local real = sft.prepare(lfl.data.load(a).train, {tokenizer = tok, template = lfl.template.get("smollm"), args = a})
  local stream = {}
  for _, r in ipairs(real) do for _, id in ipairs(r.input_ids) do stream[#stream + 1] = id end end
  -- a small LCG for lengths and prompt shares, so every run builds the same rows
  local s = 12345
  local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
  local pool, pos = {}, 1
  for p = 1, 4096 do
    local L = 100 + rnd(301)
    local prompt = math.floor(L * (30 + rnd(31)) / 100)
    local ids, labels = {}, {}
    for k = 1, L do
      ids[k] = stream[pos]
      labels[k] = k <= prompt and -100 or ids[k]
      pos = pos % #stream + 1
    end
    pool[p] = {input_ids = ids, labels = labels}
  end
  local rows = {}
  for i = 1, N do rows[i] = pool[(i - 1) % #pool + 1] end
  gc()
  local s1 = status()
  print(fmt("bench_dataset build: %d rows (4096 distinct, referenced in turn), batch %d", N, BS))
  print(fmt("  %-34s            RSS %7.0f MB (anon %7.0f)   (Lua: tokenizer, pool and the N-entry list)", "rows ready", s1.rss, s1.anon))
  local t0, c0 = clock(), os.clock()
  local ds = lfl.dataset.from_rows(rows)
  local t_build = clock() - t0
  report("lfl.dataset.from_rows", t_build, s1, c0)
  print(fmt("  %s; %.1f tokens/row; %.2f bytes/token held (i32 ids + i32 labels + 2 i64 offsets/row)", tostring(ds),
    ds:num_tokens() / #ds, (2 * 4 * ds:num_tokens() + 2 * 8 * (#ds + 1)) / ds:num_tokens()))
  -- the C collator against the Lua one on a few batches: like is compared with like
  for b = 1, 3 do
    local idx = {b, 1000 + b, N - b, 77 * b}
    local list = {}
    for i, k in ipairs(idx) do list[i] = rows[k] end
    local c, l = ds:collate(idx, "pack"), collate.pack_row(list)
    assert(c.ntokens == l.ntokens and c.nlabels == l.nlabels and same(c.labels, l.labels) and
      same(c.input_ids, l.input_ids) and same(c.segments, l.segments), "C and Lua pack differ")
  end
  rows, pool, real, stream = nil, nil, nil, nil
  gc()
  report("Lua rows dropped", 0)
  t0, c0 = clock(), os.clock()
  ds:save(path)
  local sz = lfl._tokcache.stat(path)
  report(fmt("ds:save (%.0f MB file)", sz / 2 ^ 20), clock() - t0, nil, c0)
  print(fmt("  start RSS %.0f MB", s0.rss))
elseif phase == "reload" then
  local s0 = status()
  print(fmt("bench_dataset reload: %s, batch %d", path, BS))
  local t0, c0 = clock(), os.clock()
  local ds = lfl.dataset.load(path)
  report("lfl.dataset.load (mapped)", clock() - t0, s0, c0)
  print("  " .. tostring(ds))
  t0, c0 = clock(), os.clock()
  local it = ds:batches{batch_size = BS, seed = 42}
  local nb, ntok = 0, 0
  for idx in it do
    local b = ds:collate(idx, "pack")
    nb, ntok = nb + 1, ntok + b.ntokens
  end
  local t = clock() - t0
  report(fmt("epoch: %d batches, ds:collate", nb), t, s0, c0)
  print(fmt("  %.1f us/batch, %.0f tokens/s", t / nb * 1e6, ntok / t))
  -- rows read back as Lua tables through the Lua collator (what the trainer does
  -- until it calls ds:collate), on the first 20000 batches
  local order = ds:order(42)
  t0, c0 = clock(), os.clock()
  local m = math.min(20000, nb)
  for b = 1, m do
    local list = {}
    for k = (b - 1) * BS + 1, math.min(#ds, b * BS) do list[#list + 1] = ds[order[k]] end
    collate.pack_row(list)
  end
  t = clock() - t0
  report(fmt("%d batches, ds[i] + pack_row", m), t, s0, c0)
  print(fmt("  %.1f us/batch (an epoch: %.1f s)", t / m * 1e6, t / m * nb))
elseif phase == "lua_reload" then
  local s0 = status()
  print(fmt("bench_dataset lua_reload (Lua-table rows, as the cache returned them before): %s, batch %d", path, BS))
  local C = lfl._tokcache
  local t0, c0 = clock(), os.clock()
  local tensors = lfl.safetensors.load(path)
  local n = tensors["input_ids.offsets"]:numel() - 1
  local rows = {}
  for i = 1, n do rows[i] = {} end
  for _, k in ipairs({"input_ids", "labels"}) do
    local lists = C.unpack(tensors[k .. ".values"], tensors[k .. ".offsets"])
    for i = 1, n do rows[i][k] = lists[i] end
    lists = nil
  end
  tensors = nil
  gc()
  report(fmt("%d rows as Lua tables", n), clock() - t0, s0, c0)
  local order = {}
  for i = 1, n do order[i] = i end
  lfl.data.shuffle(order, 42)
  local nb = math.ceil(n / BS)
  local m = math.min(20000, nb)
  t0, c0 = clock(), os.clock()
  for b = 1, m do
    local list = {}
    for k = (b - 1) * BS + 1, math.min(n, b * BS) do list[#list + 1] = rows[order[k]] end
    collate.pack_row(list)
  end
  local t = clock() - t0
  report(fmt("%d batches, pack_row", m), t, s0, c0)
  print(fmt("  %.1f us/batch (an epoch: %.1f s)", t / m * 1e6, t / m * nb))
else
  error("bench_dataset: phase is build, reload or lua_reload (got " .. tostring(phase) .. ")", 0)
end
