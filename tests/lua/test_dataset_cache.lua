-- Tokenized-dataset cache: a second prepare with the same inputs reads the
-- safetensors file (much faster, identical rows), a change of template,
-- tokenizer, cutoff_len or dataset file rebuilds, overwrite_cache forces a
-- rebuild, a corrupt or foreign file is ignored; the splits come back as
-- lfl.Dataset objects; the C pack/unpack helpers; an inline mapper is keyed by
-- its code and upvalues (the README's demo recipe edited), and prepare says
-- why it used the cache or built anew.
local t = lfl.test
local dc = require("lfl.data.cache")
local sft = lfl.recipes.load("approaches", "sft")
local pt = lfl.recipes.load("approaches", "pt")
local pw = require("lfl.data.pairwise")

local toks = lfl.home .. "/../shared/data/tokenizers/"
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "/data' '" .. tmp .. "/cache'")
-- point the cache at a scratch folder (LFL_CACHE is read through os.getenv)
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return tmp .. "/cache" end return real_getenv(k) end

local function write(name, s) local f = assert(io.open(tmp .. "/data/" .. name, "wb")); f:write(s); f:close() end
local function read(path) local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s end

-- ~2000 alpaca examples: recipes/data/alpaca_demo.json repeated with a counter
local demo = lfl.json.decode(read(lfl.home .. "/recipes/data/alpaca_demo.json"))
local recs = {}
for i = 1, 2000 do
  local r = demo[(i - 1) % #demo + 1]
  recs[i] = {instruction = r.instruction .. " #" .. i, input = r.input or "", output = r.output}
end
write("big.json", lfl.json.encode(recs))
write("dataset_info.json", [[{"big": {"file_name": "big.json"}, "pref": {"file_name": "pref.json", "ranking": true,
  "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
  "kto": {"file_name": "kto.json", "columns": {"prompt": "instruction", "response": "output", "kto_tag": "tag"}}}]])
write("pref.json", [=[[{"instruction": "a?", "chosen": "yes", "rejected": "no"}, {"instruction": "b?", "chosen": "x", "rejected": "yy"}]]=])
write("kto.json", [=[[{"instruction": "a?", "output": "yes", "tag": true}, {"instruction": "b?", "output": "no", "tag": false}]]=])

local tok3 = lfl.tokenizer.load(toks .. "llama3")

local function args(over)
  local a = {stage = "sft", template = "llama3", dataset = "big", dataset_dir = tmp .. "/data", cutoff_len = 256,
             preprocessing_batch_size = 1000, enable_thinking = true, val_size = 0.05, seed = 42}
  for k, v in pairs(over or {}) do a[k] = v end
  return a
end

local function ctx(a, tok) return {tokenizer = tok or tok3, template = lfl.template.get(a.template), args = a} end

local function same_rows(x, y)
  t.assert_eq(#x, #y)
  for i = 1, #x do
    for k, v in pairs(x[i]) do
      if type(v) == "table" then
        t.assert_eq(#v, #y[i][k], "row " .. i .. " " .. k)
        for j = 1, #v do if v[j] ~= y[i][k][j] then error(("row %d %s[%d]: %s vs %s"):format(i, k, j, v[j], y[i][k][j]), 0) end end
      else
        t.assert_eq(v, y[i][k], "row " .. i .. " " .. k)
      end
    end
  end
end

t.suite("dataset_cache", {
  pack_unpack = function()
    local v, o = lfl._tokcache.pack({{1, 2, 3}, {}, {-100, 2147483647}}, "i32")
    t.assert_eq(v:numel(), 5); t.assert_eq(o:numel(), 4)
    local back = lfl._tokcache.unpack(v, o)
    t.assert_eq(#back, 3); t.assert_eq(#back[2], 0)
    t.assert_eq(back[3][1], -100); t.assert_eq(back[3][2], 2147483647)
    t.assert_error(function() lfl._tokcache.pack({{1, "x"}}) end, "not a number")
    t.assert_eq(lfl._tokcache.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  end,

  -- every source the key hashes exists (a renamed file would silently stop
  -- invalidating), and each part of the Jinja interpreter is among them
  sources_exist = function()
    local listed = {}
    for _, src in ipairs(dc.SOURCES) do
      local f = io.open(lfl.home .. "/" .. src, "rb")
      t.assert(f ~= nil, "dataset_cache.SOURCES names a missing file: " .. src)
      f:close()
      listed[src] = true
    end
    for _, part in ipairs({"init", "pyvalue", "methods", "lexer", "parser", "filters", "runtime"}) do
      local src = "stdlib/lfl/text/jinja/" .. part .. ".lua"
      t.assert(package.searchpath("lfl.text.jinja." .. part, package.path), "no module for " .. src)
      t.assert(listed[src], "dataset_cache.SOURCES lacks " .. src)
    end
  end,

  reuse_and_rebuild = function()
    local a = args()
    local t0 = lfl.sys.clock()
    local r1 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    local first = lfl.sys.clock() - t0
    t.assert(not r1.cached, "first run builds")
    t.assert(r1.path and io.open(r1.path) ~= nil, "cache file written")
    t.assert_eq(#r1.train + #r1.eval, 2000)
    t0 = lfl.sys.clock()
    local r2 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    local second = lfl.sys.clock() - t0
    t.assert(r2.cached, "second run reads the cache")
    -- both runs hand out C datasets; the cached one is mapped from the file
    t.assert(lfl.dataset.is_dataset(r1.train) and lfl.dataset.is_dataset(r1.eval), "built rows are a Dataset")
    t.assert(lfl.dataset.is_dataset(r2.train) and lfl.dataset.is_dataset(r2.eval), "cached rows are a Dataset")
    t.assert_eq(r2.train:num_tokens(), r1.train:num_tokens())
    same_rows(r1.train, r2.train)
    same_rows(r1.eval, r2.eval)
    t.assert_eq(r2.stats.kept, r1.stats.kept)
    print(("      first prepare %.3fs, cached %.3fs (%.1fx)"):format(first, second, first / second))
    t.assert(second * 3 < first, ("cached prepare not much faster: %.3fs vs %.3fs"):format(second, first))
    -- no temp file left behind
    local p = io.popen("ls '" .. tmp .. "/cache/datasets'")
    for name in p:lines() do t.assert(name == "hashes" or name == "last" or name:match("^%x+%.safetensors$"), "unexpected file " .. name) end
    p:close()
    -- what must rebuild
    local k0 = dc.key(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    t.assert_eq(k0, r1.key)
    local a2 = args({cutoff_len = 128})
    t.assert(dc.key(a2, ctx(a2), sft, {tokenizer_path = toks .. "llama3"}) ~= k0, "cutoff_len changes the key")
    local a3 = args({template = "default"})
    t.assert(dc.key(a3, ctx(a3), sft, {tokenizer_path = toks .. "llama3"}) ~= k0, "template changes the key")
    t.assert(dc.key(a, ctx(a), sft, {tokenizer_path = toks .. "qwen3"}) ~= k0, "tokenizer changes the key")
    local a4 = args({mask_history = true})
    t.assert(dc.key(a4, ctx(a4), sft, {tokenizer_path = toks .. "llama3"}) ~= k0, "mask_history changes the key")
    t.assert(dc.key(a, ctx(a), pt, {tokenizer_path = toks .. "llama3"}) ~= k0, "approach changes the key")
    -- a changed template definition (same name) changes the key
    local c5 = ctx(a); c5.template = c5.template:with({default_system = "Be terse."})
    t.assert(dc.key(a, c5, sft, {tokenizer_path = toks .. "llama3"}) ~= k0, "template definition changes the key")
    -- dataset file touched: size/mtime differ -> rebuild with the new content
    recs[1].output = "changed answer"
    write("big.json", lfl.json.encode(recs))
    t.assert(dc.key(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"}) ~= k0, "dataset file changes the key")
    local r3 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r3.cached, "changed data rebuilds")
    -- overwrite_cache forces a rebuild
    local r4 = dc.prepare(args({overwrite_cache = true}), ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r4.cached, "overwrite_cache rebuilds")
  end,

  -- LlamaFactory's tokenized_path: the first run saves its tokenized sets
  -- there, a later run loads them and ignores the other data arguments; a
  -- folder holding something else (LlamaFactory's Arrow files) or rows of
  -- another stage is refused
  tokenized_path = function()
    local dir = tmp .. "/tokenized"
    local a = args({max_samples = 40, val_size = 0.25, cutoff_len = 64, tokenized_path = dir})
    local r1 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r1.cached and r1.path, "the first run tokenizes")
    t.assert_eq(a.tokenized_path, dir, "the arguments are left as they were")
    t.assert(io.open(dir .. "/" .. dc.TOKENIZED_FILE, "rb") ~= nil, "saved into tokenized_path")
    t.assert_eq(#r1.train + #r1.eval, 40)
    -- other data arguments are ignored: max_samples 10 still gives the 40 saved rows
    local b = args({max_samples = 10, val_size = 0.25, cutoff_len = 64, tokenized_path = dir})
    local r2 = dc.prepare(b, ctx(b), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(r2.cached and r2.why:find("tokenized_path", 1, true), tostring(r2.why))
    same_rows(r1.train, r2.train)
    same_rows(r1.eval, r2.eval)
    local c = args({stage = "pt", tokenized_path = dir})
    t.assert_error(function() dc.prepare(c, ctx(c), pt, {tokenizer_path = toks .. "llama3"}) end,
      "holds rows tokenized for stage sft, not pt")
    local hf = tmp .. "/hf_tokenized"
    lfl.fs.mkdir(hf)
    lfl.fs.write(hf .. "/dataset_dict.json", '{"splits": ["train"]}')
    local d = args({tokenized_path = hf})
    t.assert_error(function() dc.prepare(d, ctx(d), sft, {tokenizer_path = toks .. "llama3"}) end,
      "tokenized_path: '" .. hf .. "' is not empty but holds no " .. dc.TOKENIZED_FILE)
  end,

  corrupt_file_is_ignored = function()
    local a = args({cutoff_len = 64, dataset = "big", max_samples = 50, val_size = 0})
    local c = ctx(a)
    local key = dc.key(a, c, sft, {tokenizer_path = toks .. "llama3"})
    local path = dc.dir() .. "/" .. key .. ".safetensors"
    os.execute("mkdir -p '" .. dc.dir() .. "'")
    local f = assert(io.open(path, "wb")); f:write("garbage"); f:close()
    local r = dc.prepare(a, c, sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r.cached, "garbage is not taken as a cache")
    t.assert_eq(#r.train, 50)
    local again = dc.prepare(a, c, sft, {tokenizer_path = toks .. "llama3"})
    t.assert(again.cached)
    same_rows(r.train, again.train)
  end,

  packed_pairwise_kto_rows = function()
    local a = args({packing = true, max_samples = 300, val_size = 0, cutoff_len = 512})
    local r1 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    local r2 = dc.prepare(a, ctx(a), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(r2.cached); same_rows(r1.train, r2.train)
    t.assert(r2.train[1].segments and r2.train[1].position_ids, "packed fields kept")
    local ap = args({stage = "rm", dataset = "pref", val_size = 0})
    local p1 = dc.prepare(ap, ctx(ap), {name = "rm", prepare = pw.prepare_pairwise}, {tokenizer_path = toks .. "llama3"})
    local p2 = dc.prepare(ap, ctx(ap), {name = "rm", prepare = pw.prepare_pairwise}, {tokenizer_path = toks .. "llama3"})
    t.assert(p2.cached); same_rows(p1.train, p2.train)
    local ak = args({stage = "kto", dataset = "kto", val_size = 0})
    local q1 = dc.prepare(ak, ctx(ak), {name = "kto", prepare = pw.prepare_kto}, {tokenizer_path = toks .. "llama3"})
    local q2 = dc.prepare(ak, ctx(ak), {name = "kto", prepare = pw.prepare_kto}, {tokenizer_path = toks .. "llama3"})
    t.assert(q2.cached); same_rows(q1.train, q2.train)
    t.assert_eq(q2.train[2].kto_tag, false)
    -- pretraining rows share one list for input_ids and labels; the cache keeps that
    local apt = args({stage = "pt", dataset = "big", packing = true, val_size = 0, max_samples = 100})
    local x1 = dc.prepare(apt, ctx(apt), pt, {tokenizer_path = toks .. "llama3"})
    local x2 = dc.prepare(apt, ctx(apt), pt, {tokenizer_path = toks .. "llama3"})
    t.assert(x2.cached); same_rows(x1.train, x2.train)
    local row = x2.train[1]
    t.assert(rawequal(row.input_ids, row.labels))
    local _, alias = x2.train:fields()
    t.assert_eq(alias.labels, "input_ids", "labels stored once")
  end,

  -- the demo recipe (recipes/examples/lora_sft.lua, the README's) with its
  -- inline identity mapper: editing the mapper or the values it captures
  -- changes the key, moving it to other lines does not
  inline_mapper_is_keyed = function()
    local src = read(lfl.home .. "/recipes/examples/lora_sft.lua")
    local function recipe(text)
      local r = assert(loadstring(text, "=lora_sft.lua"))()
      r.dataset_dir = tmp .. "/data"
      return r
    end
    local base = recipe(src)
    local function key(r) return (dc.key(r, ctx(r), sft, {tokenizer_path = toks .. "llama3"})) end
    local k0 = key(base)
    t.assert(k0, "the demo recipe can be keyed")
    t.assert_eq(key(recipe(src)), k0, "the same recipe, the same key")
    local moved = src:gsub("local function identity_mapper", "-- a comment\n\n\nlocal function identity_mapper", 1)
    t.assert_eq(key(recipe(moved)), k0, "line moves keep the key")
    local renamed = src:gsub('"Lumen"', '"Nova"', 1)
    t.assert(renamed ~= src)
    t.assert(key(recipe(renamed)) ~= k0, "an upvalue of the mapper (NAME) changes the key")
    local edited = src:gsub('fill%(r%.output%)', 'fill(r.output) .. "!"', 1)
    t.assert(edited ~= src)
    t.assert(key(recipe(edited)) ~= k0, "the mapper's code changes the key")
    local nested = src:gsub('gsub%("{{author}}", AUTHOR%)', 'gsub("{{author}}", AUTHOR:upper())', 1)
    t.assert(nested ~= src)
    t.assert(key(recipe(nested)) ~= k0, "a nested function's code changes the key")
    -- a userdata the mapper captures cannot be keyed: no cache, and the reason
    local r = recipe(src)
    local tok = tok3
    r.datasets.identity_filled.mapper = function(rec) local _ = tok; return {prompt = {{role = "user",
      content = rec.instruction}}, response = {{role = "assistant", content = rec.output}}} end
    local k, why = dc.key(r, ctx(r), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(k == nil, "a userdata upvalue is not keyed")
    t.assert(why:find("upvalue 'tok'", 1, true) and why:find("userdata", 1, true), why)
  end,

  -- prepare says why: built (nothing cached), cached (same inputs), built
  -- again naming what changed
  prepare_says_why = function()
    local function mk(suffix)
      return function(rec) return {prompt = {{role = "user", content = rec.q}},
        response = {{role = "assistant", content = rec.a .. suffix}}} end
    end
    local records = {{q = "1+1?", a = "2"}, {q = "2+2?", a = "4"}, {q = "3+3?", a = "6"}}
    local function a_with(mapper)
      return args({dataset = "inline_qa", val_size = 0, datasets = {inline_qa = {records = records, mapper = mapper}}})
    end
    local a1 = a_with(mk(""))
    local r1 = dc.prepare(a1, ctx(a1), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r1.cached)
    t.assert(r1.why:find("no tokenized data cached for these datasets yet", 1, true), r1.why)
    local r2 = dc.prepare(a1, ctx(a1), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(r2.cached, "same mapper: cached")
    t.assert(r2.why:find("tokenized data from the cache " .. r2.path, 1, true), r2.why)
    t.assert(r2.why:find("mappers", 1, true), r2.why)
    local a3 = a_with(mk("."))
    local r3 = dc.prepare(a3, ctx(a3), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(not r3.cached, "an edited mapper rebuilds")
    t.assert(r3.why:find("changed since the last build: dataset 'inline_qa' (mapper)", 1, true), r3.why)
    t.assert(not r3.why:find("records", 1, true), r3.why)
    t.assert(r3.train[1].input_ids[#r3.train[1].input_ids] ~= r1.train[1].input_ids[#r1.train[1].input_ids]
      or #r3.train[1].input_ids ~= #r1.train[1].input_ids, "the new rows use the edited mapper")
    local a4 = args({dataset = "inline_qa", val_size = 0, cutoff_len = 100,
      datasets = {inline_qa = {records = records, mapper = mk(".")}}})
    local r4 = dc.prepare(a4, ctx(a4), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(r4.why:find("argument cutoff_len", 1, true), r4.why)
    local r5 = dc.prepare(args({dataset = "inline_qa", val_size = 0, cutoff_len = 100, overwrite_cache = true,
      datasets = {inline_qa = {records = records, mapper = mk(".")}}}), ctx(a4), sft, {tokenizer_path = toks .. "llama3"})
    t.assert(r5.why:find("overwrite_cache", 1, true), r5.why)
  end,
})

local ok = t.run()
os.getenv = real_getenv
os.execute("rm -rf '" .. tmp .. "'")
return ok
