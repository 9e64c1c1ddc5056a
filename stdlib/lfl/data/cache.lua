-- Tokenized-dataset cache: what approach.prepare made of the datasets (train
-- and eval rows, dropped count, load stats) stored as one safetensors file,
-- <LFL_CACHE or ~/.cache/lfl>/datasets/<sha256>.safetensors, so a second run
-- with the same inputs skips loading, aligning and tokenizing. The key hashes
-- everything that changes the result: the datasets' descriptions and files
-- (path, size, mtime), their mapper functions (bytecode and upvalues, so an
-- edited inline mapper rebuilds), the template's definition, the tokenizer
-- files' contents, the preprocessing arguments and the Lua sources of the
-- pipeline. prepare says why it reused a cache or built a new one (naming
-- the parts that changed since the last build of the same datasets).
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
--   -- r.train, r.eval (lfl.Dataset), r.dropped, r.stats, r.cached (true when read from disk), r.path,
--   -- r.why (the reason it was read from disk or built)
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
  "stdlib/lfl/text/tools.lua", "stdlib/lfl/text/pyjson.lua", "stdlib/lfl/text/pyint.lua", "stdlib/lfl/data/cache.lua"}
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

-- Values the key cannot hold (a userdata, a C function of no loaded module):
-- the cache is then skipped for the run, and the message says why.
local Unkeyable = {}
local function unkeyable(msg) error(setmetatable({msg = msg}, Unkeyable), 0) end

-- functions and tables of lfl's and the runtime's loaded modules
-- (string.gsub, lfl.json, lfl.data.align, ...) by their name: their code is
-- not the recipe's (lfl's own sources are in M.SOURCES). A user's module
-- (require "myutil") is keyed by content like any other value. Rebuilt for
-- every key, as modules load on first use.
local RUNTIME = {string = true, table = true, math = true, io = true, os = true, debug = true,
  coroutine = true, package = true, bit = true, jit = true, ffi = true}
local known
local function known_names()
  if known then return known end
  known = {}
  local mods = {}
  for name in pairs(package.loaded) do
    if RUNTIME[name] or name == "lfl" or name:match("^lfl%.") then mods[#mods + 1] = name end
  end
  table.sort(mods)
  -- a nested table is named only when it is a namespace (no strings, numbers
  -- or booleans in it): a data table (a loaded template, a role map) is keyed
  -- by its content, so editing what it was read from changes the key
  local function namespace(t)
    for _, v in pairs(t) do
      local tv = type(v)
      if tv == "string" or tv == "number" or tv == "boolean" then return false end
    end
    return true
  end
  local function walk(t, name, depth)
    if known[t] or depth > 2 or (depth > 1 and not namespace(t)) then return end
    known[t] = name
    local keys = {}
    for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = rawget(t, k)
      if type(v) == "function" and not known[v] then known[v] = name .. "." .. k
      elseif type(v) == "table" and getmetatable(v) == nil then walk(v, name .. "." .. k, depth + 1) end
    end
  end
  -- the base library (print, pairs, ...): the C functions among the globals
  for k, v in pairs(_G) do
    if type(k) == "string" and type(v) == "function" and not pcall(string.dump, v) then known[v] = k end
  end
  for _, name in ipairs(mods) do
    local m = package.loaded[name]
    if type(m) == "table" then walk(m, name, 1) end
  end
  if lfl.json and lfl.json.null then known[lfl.json.null] = "lfl.json.null" end
  return known
end

-- deterministic text of a Lua value: sorted keys; a Lua function by its
-- bytecode without debug information (so moving it to other lines of the
-- recipe keeps the key; editing its code or constants changes it) and the
-- values of its upvalues, recursively; functions and tables of loaded modules
-- by name; slot markers by their text; cycles cut. A value it cannot key on
-- raises Unkeyable.
local serialize
local function serialize_function(f, out, seen, where)
  local name = known_names()[f]
  if name then out[#out + 1] = "<" .. name .. ">"; return end
  local ok, code = pcall(string.dump, f, true)
  if not ok then unkeyable(where .. " is a C function outside the loaded modules") end
  out[#out + 1] = "<function " .. C.sha256(code)
  for i = 1, 255 do
    local up, v = debug.getupvalue(f, i)
    if not up then break end
    out[#out + 1] = " " .. up .. "="
    serialize(v, out, seen, where .. " (upvalue '" .. up .. "')")
  end
  out[#out + 1] = ">"
end

serialize = function(v, out, seen, where)
  local tv = type(v)
  if tv == "table" or tv == "function" then
    if seen[v] then out[#out + 1] = "<cycle>"; return end
    local name = known_names()[v]
    if name then out[#out + 1] = "<" .. name .. ">"; return end
  end
  if tv == "table" then
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
      if type(k) == "table" or type(k) == "function" then serialize(k, out, seen, where .. " (a key)")
      else out[#out + 1] = tostring(k) end
      out[#out + 1] = "="
      serialize(v[k], out, seen, type(k) == "string" and where .. "." .. k or where)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
    seen[v] = nil
  elseif tv == "function" then
    seen[v] = true
    serialize_function(v, out, seen, where)
    seen[v] = nil
  elseif tv == "string" then
    out[#out + 1] = fmt("%q", v)
  elseif tv == "userdata" or tv == "thread" then
    unkeyable(fmt("%s is a %s, whose content the key cannot record", where, tv))
  elseif tv == "number" then
    out[#out + 1] = fmt("%.17g", v)
  else
    out[#out + 1] = tostring(v)
  end
end

local function text_of(v, where)
  local out = {}
  serialize(v, out, {}, where or "a value")
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

-- what identifies one dataset, as named parts: its description, its mapper
-- (code and upvalues), its files, the Lua file that describes it
local function dataset_parts(parts, label, name, a)
  local ok, attr = pcall(lfl.data.describe, name, a.dataset_dir, a.datasets)
  if not ok then parts[#parts + 1] = {label .. " (description)", tostring(attr)}; return end
  local desc = {}
  for k, v in pairs(attr) do if k ~= "mapper" and k ~= "records" then desc[k] = v end end
  parts[#parts + 1] = {label .. " (description)", text_of(desc, label)}
  if attr.mapper then parts[#parts + 1] = {label .. " (mapper)", text_of(attr.mapper, label .. ": the mapper")} end
  if attr.records then
    parts[#parts + 1] = {label .. " (records)", text_of(attr.records, label .. ": the records")}
  elseif attr.load_from == "file_name" then
    local path = attr.source:sub(1, 1) == "/" and attr.source or (attr.dir .. "/" .. attr.source)
    local okf, files = pcall(lfl.data.collect_files, path, attr)
    local stamps = {}
    if okf then for _, f in ipairs(files) do stamps[#stamps + 1] = file_stamp(f) end
    else stamps[1] = "files: " .. tostring(files) end
    parts[#parts + 1] = {label .. " (files)", concat(stamps, "\n")}
  end
  if attr.where:match("%.lua$") then parts[#parts + 1] = {label .. " (" .. attr.where .. ")", file_hash(attr.where)} end
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

-- The named parts of the key: {{name, text}, ...}. Raises an Unkeyable error
-- object when a value cannot be keyed (M.key turns it into nil + why).
function M.parts(a, ctx, approach, opts)
  opts = opts or {}
  known = nil
  local aname = tostring(approach.name or a.stage)
  local parts = {{"cache layout", "lfl dataset cache v" .. M.VERSION}, {"training approach", aname}}
  for _, k in ipairs(M.ARG_KEYS) do parts[#parts + 1] = {"argument " .. k, text_of(a[k], "argument " .. k)} end
  for _, name in ipairs(dataset_names(a.dataset)) do dataset_parts(parts, "dataset '" .. name .. "'", name, a) end
  for _, name in ipairs(dataset_names(a.eval_dataset)) do
    dataset_parts(parts, "eval dataset '" .. name .. "'", name, a)
  end
  parts[#parts + 1] = {"template", text_of(ctx.template, "the template")}
  parts[#parts + 1] = {"tokenizer", tokenizer_part(opts.tokenizer_path)}
  local home = lfl.home or "."
  local srcs = {}
  for _, src in ipairs(M.SOURCES) do srcs[#srcs + 1] = src .. " " .. file_hash(home .. "/" .. src) end
  parts[#parts + 1] = {"lfl's data pipeline sources", concat(srcs, "\n")}
  local R = require("lfl.recipes")
  local asrc = R.valid_name(aname) and R.find("approaches", aname)
  if asrc then parts[#parts + 1] = {"approach source " .. asrc, file_hash(asrc)} end
  if opts.extra then parts[#parts + 1] = {"extra", text_of(opts.extra, "opts.extra")} end
  return parts
end

local function key_of(parts)
  local texts = {}
  for i, p in ipairs(parts) do texts[i] = p[1] .. "\n" .. p[2] end
  return C.sha256(concat(texts, "\n"))
end

-- cache key (hex sha256) for these arguments, approach and template; nil and
-- why when something in them cannot be keyed (a userdata upvalue of a mapper)
function M.key(a, ctx, approach, opts)
  local ok, parts = pcall(M.parts, a, ctx, approach, opts)
  if not ok then
    if getmetatable(parts) == Unkeyable then return nil, parts.msg end
    error(parts, 0)
  end
  return key_of(parts), parts
end

-- ---------------------------------------------------------------- why (not) reused

-- The last build for one set of inputs (stage + dataset names) records its
-- key and the hash of each part under <dir>/last/, so a miss can say what
-- changed since.
local function last_path(a, approach)
  local who = concat({tostring(approach.name or a.stage), text_of(dataset_names(a.dataset)),
    text_of(dataset_names(a.eval_dataset))}, "\n")
  return M.dir() .. "/last/" .. C.sha256(who):sub(1, 32) .. ".json"
end

local function record_last(a, approach, key, parts)
  local hashes = {}
  for _, p in ipairs(parts) do hashes[p[1]] = C.sha256(p[2]) end
  lfl.fs.mkdir(M.dir() .. "/last")
  pcall(lfl.fs.write, last_path(a, approach), lfl.json.encode({key = key, parts = hashes}))
end

-- why a new cache is built: the parts that differ from the last build
local function changed_since_last(a, approach, key, parts)
  local s = read_file(last_path(a, approach))
  local ok, last = pcall(lfl.json.decode, s or "")
  if not ok or type(last) ~= "table" or type(last.parts) ~= "table" then
    return "no tokenized data cached for these datasets yet"
  end
  if last.key == key then return nil end
  local changed, seen = {}, {}
  for _, p in ipairs(parts) do
    seen[p[1]] = true
    if last.parts[p[1]] ~= C.sha256(p[2]) then changed[#changed + 1] = p[1] end
  end
  local names = {}
  for name in pairs(last.parts) do if not seen[name] then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do changed[#changed + 1] = name .. " (gone)" end
  if #changed == 0 then return "the inputs differ from the last build" end
  return "changed since the last build: " .. concat(changed, ", ")
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

-- ---------------------------------------------------------------- tokenized_path

-- LlamaFactory's tokenized_path: a folder the tokenized sets are saved to
-- after preprocessing, and loaded from (ignoring the other data arguments)
-- when it already holds them. LlamaFactory writes Hugging Face datasets' Arrow
-- files there; lfl writes its own dataset file, TOKENIZED_FILE, and refuses a
-- folder that holds something else rather than tokenizing over it.
M.TOKENIZED_FILE = "lfl_dataset.safetensors"

local function has_entries(dir)
  local ok, names = pcall(lfl.fs.list, dir)
  return ok and type(names) == "table" and #names > 0
end

-- the saved sets under a.tokenized_path, or nil when the folder is empty or absent
function M.load_tokenized(a)
  local dir = a.tokenized_path
  if not has_entries(dir) then return nil end
  local path = dir .. "/" .. M.TOKENIZED_FILE
  local f = io.open(path, "rb")
  if not f then
    error(fmt("tokenized_path: '%s' is not empty but holds no %s (a folder written by LlamaFactory holds Hugging "
      .. "Face datasets' Arrow files, which lfl does not read); name an empty or new folder and lfl saves its "
      .. "tokenized sets there", dir, M.TOKENIZED_FILE), 0)
  end
  f:close()
  local ok, splits, meta = pcall(lfl.dataset.load_all, path)
  local okm, m = pcall(lfl.json.decode, ok and meta and meta.lfl_tokenized or "", path)
  if not ok or not okm or type(m) ~= "table" or not splits.train then
    error(fmt("tokenized_path: %s is not a tokenized set written by lfl%s", path, ok and "" or ": " .. tostring(splits)), 0)
  end
  if m.version ~= M.VERSION then
    error(fmt("tokenized_path: %s was written in an older layout (%s); tokenize again into an empty folder", path,
      tostring(m.version)), 0)
  end
  if m.stage ~= a.stage then
    error(fmt("tokenized_path: %s holds rows tokenized for stage %s, not %s", path, tostring(m.stage), a.stage), 0)
  end
  print("[lfl] warning: loading the dataset from disk ignores the other data arguments (tokenized_path)")
  return {train = splits.train, eval = splits.eval, dropped = m.dropped or 0, stats = m.stats, cached = true,
    path = path, why = "tokenized data loaded from tokenized_path " .. path}
end

function M.save_tokenized(a, res)
  lfl.fs.mkdir(a.tokenized_path)
  local path = a.tokenized_path .. "/" .. M.TOKENIZED_FILE
  local splits = {train = res.train}
  if res.eval then splits.eval = res.eval end
  local meta = {version = M.VERSION, stage = a.stage, template = a.template, dropped = res.dropped or 0, stats = res.stats}
  lfl.dataset.save(path, splits, {lfl_tokenized = lfl.json.encode(meta)})
  print(fmt("[lfl] tokenized dataset is saved at %s; launch the training with `tokenized_path: %s` to reuse it",
    a.tokenized_path, a.tokenized_path))
  return path
end

-- the trainer's entry point: cached rows when the key matches (unless
-- a.overwrite_cache), else load + prepare + store. train and eval are
-- lfl.Dataset objects either way (#ds, ds[i] -> a row table). opts.tokenizer_path: what
-- the tokenizer was loaded from; opts.no_cache: do not read or write. r.why
-- says why the cache was used or why the data was tokenized anew.
function M.prepare(a, ctx, approach, opts)
  opts = opts or {}
  if a.tokenized_path then
    local res = M.load_tokenized(a)
    if res then return res end
    local tp = a.tokenized_path
    a.tokenized_path = nil
    local ok, r = pcall(M.prepare, a, ctx, approach, opts)
    a.tokenized_path = tp
    if not ok then error(r, 0) end
    res = r
    M.save_tokenized(a, res)
    return res
  end
  local key, parts, why
  if opts.no_cache then why = "tokenized without the cache (no_cache)"
  else
    key, parts = M.key(a, ctx, approach, opts)
    if not key then why = "tokenized without the cache: " .. parts; parts = nil end
  end
  if key and a.overwrite_cache then why = "tokenized anew: overwrite_cache is set"
  elseif key then
    local res, err = M.load(key)
    if res then
      res.cached = true; res.key = key
      res.why = fmt("tokenized data from the cache %s (same dataset files, descriptions and mappers, template, "
        .. "tokenizer and arguments)", res.path)
      return res
    end
    why = changed_since_last(a, approach, key, parts)
    if err ~= "absent" then why = (why and why .. "; " or "") .. "the cached file is unusable: " .. err
    elseif not why then why = "the cached file for these inputs is gone" end
    why = "tokenized anew: " .. why
  end
  local data = lfl.data.load(a)
  local rows, dropped = approach.prepare(data.train, ctx)
  local train = as_dataset(rows)
  rows = nil
  local eval = data.eval and as_dataset((approach.prepare(data.eval, ctx))) or nil
  data.train, data.eval = nil, nil -- the records and the Lua rows can go now
  local res = {train = train, eval = eval, dropped = dropped or 0, stats = data.stats, cached = false, key = key,
    why = why}
  if key and #train > 0 then
    local ok, path = pcall(M.save, key, res)
    if ok then res.path = path; record_last(a, approach, key, parts)
    else io.stderr:write("[lfl] warning: could not write the dataset cache: " .. tostring(path) .. "\n") end
  end
  return res
end

return M
