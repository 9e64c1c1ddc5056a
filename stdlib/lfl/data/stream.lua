-- Streaming datasets (streaming = true), as LlamaFactory's IterableDataset
-- path: records are read one at a time from the dataset files (lfl._stream:
-- JSONL/text lines, JSON array elements, CSV records; nothing loads a whole
-- file; the files of a folder in a seeded order per pass), merged (concat, or
-- interleave_under / interleave_over with interleave_probs: the draws of the
-- in-memory path) and shuffled through a buffer of buffer_size records (HF's
-- buffer shuffle, seeded) while still unparsed text, then parsed, aligned by
-- lfl.data's aligners (invalid rows skipped and counted: LlamaFactory too
-- drops them after its shuffle, in preprocessing), the first val_size records
-- held out for evaluation, and preprocessed by the training approach in
-- batches of preprocessing_batch_size records (so packing, pretraining chunks
-- and KTO pairs come out as in memory). When max_steps needs more than one
-- pass, pass p reshuffles with seed + p (HF's set_epoch) and leaves out the
-- held-out eval records.
--
-- The position is {pass, batches = preprocessing batches used up, row = rows
-- used of the current one}; the trainer stores it in checkpoints. restore()
-- rebuilds that pass and replays the stream up to the position: the records
-- before the current preprocessing batch are read and shuffled but neither
-- parsed nor tokenized (about 200 MB/s), the current batch is prepared again.
--
--   local s = require("lfl.data.stream").open(args, ctx, approach) -- ctx: {tokenizer, template, args}
--   s.eval                -- prepared eval rows (val_size or eval_dataset), or nil
--   s:next_rows(n)        -- the next n training rows (crossing batch and pass ends)
--   s:state(), s:restore(state), s.stats (first-pass counts as lfl.data's)
--   stream.records(path [, text_column]) -- iterator: record, index (unaligned)
local lfl = lfl
local data = require("lfl.data")
local C = assert(lfl._stream, "lfl.stream: the C reader is missing")
local fmt = string.format
local decode = lfl.json.decode

local M = {}

local BOM = "\239\187\191"

local function ext_of(path) return (path:match("%.([%w]+)$") or ""):lower() end

-- fields of one CSV record (RFC 4180 quoting; the record may hold newlines)
local function csv_fields(text)
  local out = {}
  if not text:find('"', 1, true) then
    for f in (text .. ","):gmatch("([^,]*),") do out[#out + 1] = f end
    return out
  end
  local i, n = 1, #text
  while i <= n + 1 do
    if text:sub(i, i) == '"' then
      local parts, j = {}, i + 1
      while true do
        local q = text:find('"', j, true)
        if not q then parts[#parts + 1] = text:sub(j); j = n + 1; break end
        parts[#parts + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then parts[#parts + 1] = '"'; j = q + 2
        else j = q + 1; break end
      end
      -- characters between the closing quote and the comma belong to the field, as parse_csv keeps them
      local c = text:find(",", j, true) or n + 1
      parts[#parts + 1] = text:sub(j, c - 1)
      out[#out + 1] = table.concat(parts)
      i = c + 1
    else
      local c = text:find(",", i, true) or n + 1
      out[#out + 1] = text:sub(i, c - 1)
      i = c + 1
    end
  end
  return out
end
M.csv_fields = csv_fields

-- The raw records of one file, not yet parsed: next() -> text, k (1-based
-- among records, as lfl.data.read_records numbers them), where (line, byte
-- or row for messages), or nil at the end; parse(text, k, where) -> the
-- record table, with an error naming the file and position when it is bad.
-- Parsing after the shuffle buffer keeps the buffer to one string per record.
local function open_raw(path, text_column)
  local ext = ext_of(path)
  if ext ~= "jsonl" and ext ~= "json" and ext ~= "csv" and ext ~= "txt" then
    error(fmt("%s: unsupported file type '.%s' for streaming (json, jsonl, csv, txt)", path, ext), 0)
  end
  local r = C.open(path)
  local k, line = 0, 0
  local function finish() r:close() return nil end
  if ext == "jsonl" or ext == "txt" then
    local nxt = function()
      while true do
        local s = r:line()
        if not s then return finish() end
        line = line + 1
        if line == 1 and s:sub(1, 3) == BOM then s = s:sub(4) end
        if s:find("%S") then k = k + 1; return s, k, line end
      end
    end
    if ext == "txt" then
      local col = text_column or "text"
      return nxt, function(s) return {[col] = s} end
    end
    return nxt, function(s, _, at)
      local ok, v = pcall(decode, s, path)
      if not ok then error(fmt("%s: line %d: invalid JSON (%s)", path, at, tostring(v)), 0) end
      return v
    end
  elseif ext == "json" then
    return function()
      local at = r:tell()
      local s = r:json_item()
      if not s then return finish() end
      k = k + 1
      return s, k, at
    end, function(s, i, at)
      local ok, v = pcall(decode, s, path)
      if not ok then error(fmt("%s: array element %d (byte %d): invalid JSON (%s)", path, i, at, tostring(v)), 0) end
      return v
    end
  end
  -- csv: the first record is the header
  local head = r:csv_record()
  if not head then return finish, nil end
  if head:sub(1, 3) == BOM then head = head:sub(4) end
  local header = csv_fields(head)
  local row = 1
  return function()
    while true do
      local s = r:csv_record()
      if not s then return finish() end
      row = row + 1
      if s ~= "" then k = k + 1; return s, k, row end
    end
  end, function(s, _, at)
    local f = csv_fields(s)
    if #f ~= #header then error(fmt("%s: row %d has %d fields, the header has %d", path, at, #f, #header), 0) end
    local rec = {}
    for i = 1, #header do rec[header[i]] = f[i] end
    return rec
  end
end

-- Iterator over the records of one file: record, index; nil at the end.
function M.records(path, text_column)
  local nxt, parse = open_raw(path, text_column)
  return function()
    local s, k, at = nxt()
    if s == nil then return nil end
    return parse(s, k, at), k
  end
end

-- ---------------------------------------------------------------- sources
--
-- A source yields items: raw, di, fi, k, at (the record's text or, for
-- inline records, its table; dataset and file index; index in the file;
-- position for messages). As LlamaFactory's pipeline (align is one record to
-- one example; invalid examples are dropped by the processors after the
-- shuffle), items are merged and shuffled unparsed, then parsed and aligned.

local check_interrupt = lfl.sys and lfl.sys.check_interrupt or function() end

-- the items of dataset di, file after file; with order_seed the files come in
-- a shuffled order (HF's IterableDataset.shuffle shuffles its shards).
-- files[di][fi] = {path, parse} is filled in as files are opened.
local function dataset_source(a, di, files, order_seed)
  if a.records then
    local i = 0
    return function()
      i = i + 1
      local rec = a.records[i]
      if rec == nil then return nil end
      return rec, di, 0, i, i
    end
  end
  a.files = a.files or data.files_of(a) -- once: a Hub dataset downloads here
  local order = {}
  for i = 1, #a.files do order[i] = i end
  if order_seed and #order > 1 then data.shuffle(order, order_seed) end
  files[di] = files[di] or {}
  local oi, nxt, fi, count = 0, nil, nil, 0
  return function()
    while true do
      count = count + 1
      if count % 8192 == 0 then check_interrupt() end -- a long read between two batches stays interruptible
      if not nxt then
        oi = oi + 1
        fi = order[oi]
        if not fi then return nil end
        local parse
        nxt, parse = open_raw(a.files[fi], a.columns.prompt)
        files[di][fi] = {path = a.files[fi], parse = parse}
      end
      local s, k, at = nxt()
      if s == nil then nxt = nil else return s, di, fi, k, at end
    end
  end
end

-- the datasets merged by mix_strategy
local function merged_source(attrs, args, pass, files)
  local order_seed = not args.disable_shuffling and (args.seed or 42) + pass + 7919 or nil
  local srcs = {}
  for i, a in ipairs(attrs) do srcs[i] = dataset_source(a, i, files, order_seed) end
  local strategy = args.mix_strategy or "concat"
  if strategy == "concat" then
    local k = 1
    return function()
      while srcs[k] do
        local raw, di, fi, i, at = srcs[k]()
        if raw ~= nil then return raw, di, fi, i, at end
        k = k + 1
      end
      return nil
    end
  elseif strategy ~= "interleave_under" and strategy ~= "interleave_over" then
    error(fmt("data: mix_strategy '%s' (concat, interleave_under, interleave_over)", tostring(strategy)), 0)
  end
  -- the draws of lfl.data's in-memory interleave
  local probs = data.probs_of(args, #attrs)
  local total = 0
  for _, p in ipairs(probs) do total = total + p end
  local r = data.rng((args.seed or 42) + pass)
  local over = strategy == "interleave_over"
  local done, ndone, finished = {}, 0, false
  return function()
    while not finished do
      local k = data.pick(r, probs, total)
      local raw, di, fi, i, at = srcs[k]()
      if raw ~= nil then return raw, di, fi, i, at end
      if not over then finished = true; break end -- first_exhausted
      if not done[k] then done[k] = true; ndone = ndone + 1 end
      if ndone == #srcs then finished = true; break end -- all_exhausted
      srcs[k] = dataset_source(attrs[k], k, files, order_seed) -- restarted
      raw, di, fi, i, at = srcs[k]()
      if raw ~= nil then return raw, di, fi, i, at end
    end
    return nil
  end
end

-- HF's buffer shuffle: fill a buffer of `size`, then each new item takes the
-- place of a random one, which is yielded; at the end the rest, shuffled.
-- Parallel arrays, so a buffered item costs one string and four numbers.
local function shuffled(src, size, seed)
  local R, D, F, K, A = {}, {}, {}, {}, {}
  local n, r, drain = 0, data.rng(seed), nil
  return function()
    if not drain then
      while true do
        local raw, di, fi, k, at = src()
        if raw == nil then break end
        if n >= size then
          local i = r(size)
          local a, b, c, d, e = R[i], D[i], F[i], K[i], A[i]
          R[i], D[i], F[i], K[i], A[i] = raw, di, fi, k, at
          return a, b, c, d, e
        end
        n = n + 1
        R[n], D[n], F[n], K[n], A[n] = raw, di, fi, k, at
      end
      for i = n, 2, -1 do
        local j = r(i)
        R[i], R[j] = R[j], R[i]; D[i], D[j] = D[j], D[i]; F[i], F[j] = F[j], F[i]
        K[i], K[j] = K[j], K[i]; A[i], A[j] = A[j], A[i]
      end
      drain = 0
    end
    if drain >= n then return nil end
    drain = drain + 1
    local raw = R[drain]
    R[drain] = nil
    return raw, D[drain], F[drain], K[drain], A[drain]
  end
end

-- ---------------------------------------------------------------- the stream

local Stream = {}
Stream.__index = Stream

local function fresh_stats() return {skipped = {}, total = 0, kept = 0, per_dataset = {}} end

-- the item source of pass p (merged, shuffled)
function Stream:_source(pass)
  local a = self.args
  local src = merged_source(self.attrs, a, pass, self.files)
  if not a.disable_shuffling then
    -- its own generator, apart from the interleave draws
    src = shuffled(src, math.max(1, math.floor(a.buffer_size or 16384)), (a.seed or 42) + pass + 1000003)
  end
  return src
end

-- an item parsed and aligned: the canonical example, or nil (skipped, counted)
function Stream:_align(raw, di, fi, k, at)
  local a = self.attrs[di]
  local rec, src
  if fi == 0 then rec, src = raw, a.name .. ":" .. k
  else
    local f = self.files[di][fi]
    rec, src = f.parse(raw, k, at), f.path .. ":" .. k
  end
  -- stats: the first pass's counts (later passes count into scratch)
  return data.align_record(a, rec, src, self.args, self.pass == 0 and self.stats or self.scratch)
end

function Stream:_start_pass(pass)
  self.pass, self.batches, self.row, self.rows, self.pass_rows = pass, 0, 0, nil, 0
  local src = self:_source(pass)
  if pass == 0 then
    for _ = 1, self.n_eval do src() end -- the held-out items (eval)
  elseif self.held then
    local held, src_inner = self.held, src
    src = function()
      while true do
        local raw, di, fi, k, at = src_inner()
        if raw == nil or not (held[di] and held[di][fi] and held[di][fi][k]) then return raw, di, fi, k, at end
      end
    end
  end
  self.src = src
end

-- the next preprocessing batch: preprocessing_batch_size items (as
-- datasets.map batches them), parsed and aligned (invalid ones dropped)
function Stream:_pull(align)
  local part, n = {}, 0
  for _ = 1, self.pbs do
    local raw, di, fi, k, at = self.src()
    if raw == nil then break end
    n = n + 1
    if align then
      local ex = self:_align(raw, di, fi, k, at)
      if ex then part[#part + 1] = ex end
    end
  end
  return part, n
end

-- the next preprocessing batch prepared (a new pass when this one has ended)
function Stream:_advance()
  if self.rows then self.batches, self.rows, self.row = self.batches + 1, nil, 0 end
  local part, n = self:_pull(true)
  if n == 0 then
    if self.pass_rows == 0 then
      error("stream: no training rows in a whole pass over the data (" .. data.summary(self.stats) .. ")", 0)
    end
    self:_start_pass(self.pass + 1)
    return
  end
  local rows, dropped = {}, 0
  if #part > 0 then rows, dropped = self.approach.prepare(part, self.ctx) end
  self.dropped = self.dropped + (dropped or 0)
  self.rows, self.row = rows, 0
  self.pass_rows = self.pass_rows + #rows
end

function Stream:next_rows(n)
  local out = {}
  while #out < n do
    if self.rows and self.row < #self.rows then
      self.row = self.row + 1
      out[#out + 1] = self.rows[self.row]
    else
      self:_advance()
    end
  end
  self.rows_used = self.rows_used + n
  return out
end

function Stream:state()
  return {pass = self.pass, batches = self.batches, row = self.row, pass_rows = self.pass_rows,
          rows_used = self.rows_used, preprocessing_batch_size = self.pbs}
end

-- back to a position from state(): the pass rebuilt, its first
-- batches * preprocessing_batch_size items read but neither parsed nor
-- tokenized, the current batch prepared and its used rows skipped
function Stream:restore(st)
  if type(st) ~= "table" or type(st.pass) ~= "number" then
    error("stream: the checkpoint has no streaming position (was it written by a run without streaming?)", 0)
  end
  if st.preprocessing_batch_size and st.preprocessing_batch_size ~= self.pbs then
    error(fmt("stream: the checkpoint was written with preprocessing_batch_size %d, this run has %d",
      st.preprocessing_batch_size, self.pbs), 0)
  end
  self.stats = fresh_stats() -- (the skipped items are not counted)
  self:_start_pass(st.pass)
  for _ = 1, st.batches * self.pbs do
    if self.src() == nil then error("stream: the data ended before the checkpoint's position (did it change?)", 0) end
  end
  self.batches = st.batches
  if st.row > 0 then
    local part = self:_pull(true)
    local rows, dropped = self.approach.prepare(part, self.ctx)
    if #rows < st.row then error("stream: the data changed since the checkpoint (fewer rows in the current batch)", 0) end
    self.dropped = self.dropped + (dropped or 0)
    self.rows, self.row = rows, st.row
  end
  self.pass_rows, self.rows_used = st.pass_rows or 1, st.rows_used or 0
end

-- args: the recipe (dataset, eval_dataset, dataset_dir, datasets, stage, seed,
-- buffer_size, mix_strategy, interleave_probs, val_size, strict,
-- preprocessing_batch_size, disable_shuffling); approach.prepare(list, ctx)
-- turns canonical examples into rows.
function M.open(args, ctx, approach)
  local names = data.names_of(args.dataset)
  if #names == 0 then error("data: no dataset given", 0) end
  local vs = args.val_size or 0
  if vs > 0 and vs ~= math.floor(vs) then
    error(fmt("stream: val_size must be a whole number of examples with streaming (got %s)", tostring(vs)), 0)
  end
  if vs > 0 and args.eval_dataset then error("data: val_size and eval_dataset cannot both be given", 0) end
  local self = setmetatable({args = args, ctx = ctx, approach = approach, attrs = {}, files = {}, n_eval = vs,
    pbs = math.max(1, math.floor(args.preprocessing_batch_size or 1000)), dropped = 0, rows_used = 0,
    stats = fresh_stats(), scratch = fresh_stats(), streaming = true, pass = 0}, Stream)
  for i, name in ipairs(names) do self.attrs[i] = data.describe_for(name, args) end
  if vs > 0 then
    -- LlamaFactory: eval = shuffled.take(val_size), train = shuffled.skip(val_size); the
    -- invalid ones among them are dropped by preprocessing (so eval may be smaller)
    local src = self:_source(0)
    local held, list = {}, {}
    for _ = 1, vs do
      local raw, di, fi, k, at = src()
      if raw == nil then break end
      held[di] = held[di] or {}
      held[di][fi] = held[di][fi] or {}
      held[di][fi][k] = true
      list[#list + 1] = self:_align(raw, di, fi, k, at)
    end
    self.held = held
    self.eval = approach.prepare(list, ctx)
    if #self.eval == 0 then error("stream: no valid eval examples among the first val_size (" .. data.summary(self.stats) .. ")", 0) end
    self.stats = fresh_stats() -- the training pass counts from its own start
  elseif args.eval_dataset then
    local ev = setmetatable({args = args, attrs = {}, files = {}, stats = fresh_stats(), pass = 0}, Stream)
    for i, name in ipairs(data.names_of(args.eval_dataset)) do ev.attrs[i] = data.describe_for(name, args) end
    local src = merged_source(ev.attrs, args, 0, ev.files)
    local list = {}
    while true do
      local raw, di, fi, k, at = src()
      if raw == nil then break end
      list[#list + 1] = ev:_align(raw, di, fi, k, at)
    end
    self.eval = approach.prepare(list, ctx)
  end
  self:_start_pass(0)
  return self
end

return M
