-- Tokenized-dataset cache: what approach.prepare made of the datasets (train
-- and eval rows, dropped count, load stats) stored as one safetensors file,
-- <LFL_CACHE or ~/.cache/lfl>/datasets/<sha256>.safetensors, so a second run
-- with the same inputs skips loading, aligning and tokenizing. The key hashes
-- everything that changes the result: the datasets' descriptions and files
-- (path, size, mtime), the template's definition, the tokenizer files'
-- contents, the preprocessing arguments and the Lua sources of the pipeline.
-- The rows become lfl.Dataset objects (core/data/dataset.h): each list field
-- (input_ids, labels, position_ids, chosen_*, ...) flat i32 values + i64
-- offsets, scalar fields (kto_tag) one value per row, labels that are the very
-- table of input_ids stored once. The file is lfl.dataset's format with the
-- splits "train" and "eval"; a cached set is used straight from the mapped file.
-- lfl.dataset.save writes a temp file and renames it, so a crash never leaves a
-- file that looks complete; a file whose metadata does not carry the expected
-- key (or an older layout: M.VERSION) is ignored and rebuilt.
--
--   local dc = require "lfl.data.cache"
--   local r = dc.prepare(args, ctx, approach, {tokenizer_path = path})
--   -- r.train, r.eval (lfl.Dataset), r.dropped, r.stats, r.cached (true when read from disk), r.path
local lfl = lfl
local C = assert(lfl._tokcache, "lfl.dataset_cache: the C bridge is missing")
local fmt, concat = string.format, table.concat

local M = {}
M.VERSION = 2 -- 2: lfl.dataset files (1: per-split tensors of Lua-table rows)

-- arguments that change what preprocessing produces
M.ARG_KEYS = {"stage", "template", "dataset", "eval_dataset", "dataset_dir", "cutoff_len", "train_on_prompt",
  "mask_history", "packing", "neat_packing", "tool_format", "default_system", "enable_thinking", "preserve_thinking",
  "max_samples", "val_size", "seed", "mix_strategy", "interleave_probs", "preprocessing_batch_size", "strict",
  "eval_on_each_dataset"}

-- sources whose code shapes the rows (a change invalidates old caches); the
-- Jinja interpreter's parts count because chat templates render through them
M.SOURCES = {"stdlib/lfl/data/init.lua", "stdlib/lfl/data/preprocess.lua", "stdlib/lfl/text/template.lua",
  "stdlib/lfl/text/tools.lua", "stdlib/lfl/text/pyjson.lua", "stdlib/lfl/data/cache.lua"}
for _, part in ipairs({"init", "pyvalue", "methods", "lexer", "parser", "filters", "runtime"}) do
  M.SOURCES[#M.SOURCES + 1] = "stdlib/lfl/text/jinja/" .. part .. ".lua"
end
for _, part in ipairs({"scan", "pyexpr", "gemma4", "glm4_moe", "lfm2", "ling", "minimax1", "minimax2", "qwen3_5",
  "seed_oss"}) do
  M.SOURCES[#M.SOURCES + 1] = "stdlib/lfl/text/tools/" .. part .. ".lua"
end

function M.dir()
  local base = os.getenv("LFL_CACHE")
  if not base or base == "" then base = (os.getenv("HOME") or "/tmp") .. "/.cache/lfl" end
  return base .. "/datasets"
end

local read_file = lfl.read_file

local function file_stamp(path)
  local ok, size, mtime = pcall(C.stat, path)
  if not ok then return path .. ":missing" end
  return fmt("%s:%d:%d", path, size, mtime)
end

-- sha256 of a file's content; big files (tokenizer.json is ~10 MB) remember
-- theirs under <cache>/datasets/hashes/, keyed by path + size + mtime
local memo = {}
local function file_hash(path)
  local stamp = file_stamp(path)
  if memo[stamp] then return memo[stamp] end
  local ok, size = pcall(C.stat, path)
  if not ok then return "missing" end
  local side
  if size > 1000000 then
    side = M.dir() .. "/hashes/" .. C.sha256(stamp)
    local h = read_file(side)
    if h and #h == 64 then memo[stamp] = h; return h end
  end
  local s = read_file(path)
  if not s then return "missing" end
  local h = C.sha256(s)
  memo[stamp] = h
  if side then
    lfl.fs.mkdir(M.dir() .. "/hashes")
    pcall(lfl.fs.write, side, h) -- a memo only: a failed write costs a re-hash next time
  end
  return h
end

-- deterministic text of a Lua value (sorted keys; functions by name only,
-- slot markers by their text; cycles cut)
local function serialize(v, out, seen)
  local tv = type(v)
  if tv == "table" then
    if seen[v] then out[#out + 1] = "<cycle>"; return end
    seen[v] = true
    local mt = getmetatable(v)
    if mt and mt.__tostring and mt.__name == "slot marker" then out[#out + 1] = tostring(v); seen[v] = nil; return end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      if ta == "number" or ta == "string" then return a < b end
      return tostring(a) < tostring(b)
    end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = tostring(k)
      out[#out + 1] = "="
      serialize(v[k], out, seen)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
    seen[v] = nil
  elseif tv == "function" then
    out[#out + 1] = "<function>"
  elseif tv == "string" then
    out[#out + 1] = fmt("%q", v)
  else
    out[#out + 1] = tostring(v)
  end
end

local function text_of(v)
  local out = {}
  serialize(v, out, {})
  return concat(out)
end
M.serialize = text_of

local function dataset_names(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  local t = {}
  for n in tostring(v):gmatch("[^,%s]+") do t[#t + 1] = n end
  return t
end

-- what identifies one dataset: its description and its files
local function dataset_part(name, a)
  local ok, attr = pcall(lfl.data.describe, name, a.dataset_dir, a.datasets)
  if not ok then return "dataset " .. name .. ": " .. tostring(attr) end
  local parts = {"dataset " .. name, text_of(attr)}
  if attr.records then
    parts[#parts + 1] = C.sha256(lfl.json.encode(attr.records))
  elseif attr.load_from == "file_name" then
    local path = attr.source:sub(1, 1) == "/" and attr.source or (attr.dir .. "/" .. attr.source)
    local okf, files = pcall(lfl.data.collect_files, path, attr)
    if okf then for _, f in ipairs(files) do parts[#parts + 1] = file_stamp(f) end
    else parts[#parts + 1] = "files: " .. tostring(files) end
  end
  if attr.where:match("%.lua$") then parts[#parts + 1] = file_hash(attr.where) end
  return concat(parts, "\n")
end

-- the tokenizer files: a folder's tokenizer.json (+ tokenizer_config.json), a
-- tokenizer.json, or (too big to hash) a GGUF's path, size and mtime
local function tokenizer_part(path)
  if not path then return "tokenizer: unknown" end
  local kind = lfl._hub and lfl._hub.path_kind(path)
  if kind == "directory" then
    return "tokenizer " .. file_hash(path .. "/tokenizer.json") .. " " .. file_hash(path .. "/tokenizer_config.json")
  elseif path:match("%.json$") then
    return "tokenizer " .. file_hash(path)
  end
  return "tokenizer " .. file_stamp(path)
end

-- cache key (hex sha256) for these arguments, approach and template
function M.key(a, ctx, approach, opts)
  opts = opts or {}
  local parts = {"lfl dataset cache v" .. M.VERSION, "approach " .. tostring(approach.name or a.stage)}
  for _, k in ipairs(M.ARG_KEYS) do parts[#parts + 1] = k .. "=" .. text_of(a[k]) end
  for _, name in ipairs(dataset_names(a.dataset)) do parts[#parts + 1] = dataset_part(name, a) end
  for _, name in ipairs(dataset_names(a.eval_dataset)) do parts[#parts + 1] = "eval " .. dataset_part(name, a) end
  parts[#parts + 1] = "template " .. text_of(ctx.template)
  parts[#parts + 1] = tokenizer_part(opts.tokenizer_path)
  local home = lfl.home or "."
  for _, src in ipairs(M.SOURCES) do parts[#parts + 1] = src .. " " .. file_hash(home .. "/" .. src) end
  local aname = tostring(approach.name or a.stage)
  local asrc = require("lfl.recipes").valid_name(aname) and require("lfl.recipes").find("approaches", aname)
  if asrc then parts[#parts + 1] = "approach source " .. file_hash(asrc) end
  if opts.extra then parts[#parts + 1] = text_of(opts.extra) end
  return C.sha256(concat(parts, "\n"))
end

-- ---------------------------------------------------------------- storing

-- rows (a Lua list) or a Dataset -> a Dataset
local function as_dataset(rows)
  if lfl.dataset.is_dataset(rows) then return rows end
  return lfl.dataset.from_rows(rows)
end

-- writes result {train, eval, dropped, stats} under key; returns the path
function M.save(key, result)
  local dir = M.dir()
  lfl.fs.mkdir(dir)
  local meta = {version = M.VERSION, key = key, dropped = result.dropped or 0, stats = result.stats}
  local splits = {train = as_dataset(result.train)}
  if result.eval then splits.eval = as_dataset(result.eval) end
  local path = dir .. "/" .. key .. ".safetensors"
  -- lfl.dataset.save writes <path>.tmp.<pid> and renames it into place
  lfl.dataset.save(path, splits, {lfl_dataset_cache = lfl.json.encode(meta)})
  return path
end

-- reads the cache for key (its splits stay mapped from the file, nothing is
-- copied); nil (and why) when absent or not usable
function M.load(key)
  local path = M.dir() .. "/" .. key .. ".safetensors"
  local f = io.open(path, "rb")
  if not f then return nil, "absent" end
  f:close()
  local ok, splits, meta = pcall(lfl.dataset.load_all, path)
  if not ok then return nil, tostring(splits) end
  local okm, m = pcall(lfl.json.decode, meta and meta.lfl_dataset_cache or "")
  if not okm or type(m) ~= "table" or m.key ~= key or m.version ~= M.VERSION or not splits.train then
    return nil, path .. ": not a dataset cache for this key"
  end
  return {train = splits.train, eval = splits.eval, dropped = m.dropped, stats = m.stats, path = path}
end

-- the trainer's entry point: cached rows when the key matches (unless
-- a.overwrite_cache), else load + prepare + store. train and eval are
-- lfl.Dataset objects either way (#ds, ds[i] -> a row table). opts.tokenizer_path: what
-- the tokenizer was loaded from; opts.no_cache: do not read or write.
function M.prepare(a, ctx, approach, opts)
  opts = opts or {}
  local key = (not opts.no_cache) and M.key(a, ctx, approach, opts) or nil
  if key and not a.overwrite_cache then
    local res = M.load(key)
    if res then res.cached = true; res.key = key; return res end
  end
  local data = lfl.data.load(a)
  local rows, dropped = approach.prepare(data.train, ctx)
  local train = as_dataset(rows)
  rows = nil
  local eval = data.eval and as_dataset((approach.prepare(data.eval, ctx))) or nil
  data.train, data.eval = nil, nil -- the records and the Lua rows can go now
  local res = {train = train, eval = eval, dropped = dropped or 0, stats = data.stats, cached = false, key = key}
  if key and #train > 0 then
    local ok, path = pcall(M.save, key, res)
    if ok then res.path = path
    else io.stderr:write("[lfl] warning: could not write the dataset cache: " .. tostring(path) .. "\n") end
  end
  return res
end

return M
