-- lfl.dataset (lua/l_dataset.c over core/data/dataset.c) on real prepared rows:
-- the demo datasets of recipes/data tokenized with SmolLM2's tokenizer through
-- the sft (plain and packed), pt (input_ids and labels one table), pairwise
-- and kto prepare functions. Every row read back equals the row stored; the
-- shuffle order equals lfl.data.shuffle; every C collator returns what its Lua
-- collator returns, value for value; save/load round trips; the batch
-- iterator resumes where a position says; bad input gets a clear error.
local t = lfl.test
local sft = require("recipes.approaches.sft")
local pt = require("recipes.approaches.pt")
local pw = require("lfl.data.pairwise")
local common = require("lfl.data.collate")

local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_dataset: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local tok = lfl.tokenizer.load(model)
local data_dir = lfl.home .. "/recipes/data"
local tmp = os.tmpname()

local function args(over)
  local a = {stage = "sft", template = "smollm", dataset_dir = data_dir, cutoff_len = 256,
             preprocessing_batch_size = 1000, enable_thinking = true, val_size = 0, seed = 42}
  for k, v in pairs(over) do a[k] = v end
  return a
end

local function prepared(prepare, over)
  local a = args(over)
  local data = lfl.data.load(a)
  local rows = prepare(data.train, {tokenizer = tok, template = lfl.template.get(a.template), args = a})
  return rows
end

local sets = {
  sft = prepared(sft.prepare, {dataset = "alpaca_demo,identity"}),
  packed = prepared(sft.prepare, {dataset = "alpaca_demo,identity", packing = true, cutoff_len = 512}),
  pt = prepared(pt.prepare, {stage = "pt", dataset = "pretrain_demo", packing = true, cutoff_len = 128}),
  pt_rows = prepared(pt.prepare, {stage = "pt", dataset = "pretrain_demo", packing = false, cutoff_len = 64}),
  pairwise = prepared(pw.prepare_pairwise, {stage = "rm", dataset = "preference_demo"}),
  kto = prepared(pw.prepare_kto, {stage = "kto", dataset = "kto_demo", preprocessing_batch_size = 64}),
}

local function same_rows(x, y, what)
  t.assert_eq(#x, #y, what .. ": row count")
  for i = 1, #y do
    local a, b = x[i], y[i]
    local n = 0
    for k, v in pairs(b) do
      n = n + 1
      if type(v) == "table" then
        local w = a[k]
        t.assert(type(w) == "table", ("%s row %d: %s is a %s"):format(what, i, k, type(w)))
        t.assert_eq(#w, #v, ("%s row %d %s length"):format(what, i, k))
        for j = 1, #v do
          if w[j] ~= v[j] then error(("%s row %d %s[%d]: %s vs %s"):format(what, i, k, j, w[j], v[j]), 0) end
        end
      else
        t.assert_eq(a[k], v, ("%s row %d %s"):format(what, i, k))
      end
    end
    local m = 0
    for _ in pairs(a) do m = m + 1 end
    t.assert_eq(m, n, what .. " row " .. i .. ": field count")
  end
end

-- two tensors with the same dtype, shape and values
local function same_tensor(a, b, what)
  t.assert(lfl.is_tensor(a) and lfl.is_tensor(b), what .. ": both tensors")
  t.assert_eq(a:dtype(), b:dtype(), what .. ": dtype")
  t.assert_eq(table.concat(a:size(), "x"), table.concat(b:size(), "x"), what .. ": shape")
  local ca, cb = a:contiguous(), b:contiguous()
  for i = 1, a:numel() do
    if ca:_at(i) ~= cb:_at(i) then error(("%s: element %d: %s vs %s"):format(what, i, ca:_at(i), cb:_at(i)), 0) end
  end
end

-- a C batch and a Lua batch: the same keys, tensors equal, numbers equal
local function same_batch(c, l, what)
  for k, v in pairs(l) do
    if lfl.is_tensor(v) then same_tensor(c[k], v, what .. " " .. k)
    else t.assert_eq(c[k], v, what .. " " .. k) end
  end
  for k in pairs(c) do t.assert(l[k] ~= nil, what .. ": the C batch has an extra field " .. k) end
end

-- batches of 1..5 indices in a shuffled order, with a repeat and the last row
local function batches_of(n, seed)
  local order = {}
  for i = 1, n do order[i] = i end
  lfl.data.shuffle(order, seed)
  local out, i, size = {}, 1, 1
  while i <= n and #out < 40 do
    local b = {}
    for k = i, math.min(n, i + size - 1) do b[#b + 1] = order[k] end
    out[#out + 1] = b
    i = i + size
    size = size % 5 + 1
  end
  out[#out + 1] = {n, 1, n}
  return out
end

t.suite("dataset", {
  rows_round_trip = function()
    for name, rows in pairs(sets) do
      t.assert(#rows > 10, name .. ": rows were prepared")
      local ds = lfl.dataset.from_rows(rows)
      t.assert_eq(#ds, #rows, name)
      same_rows(ds, rows, name)
      t.assert(lfl.dataset.is_dataset(ds) and not lfl.dataset.is_dataset(rows))
    end
    -- pretraining rows: labels is input_ids, stored once, read back as one table
    local ds = lfl.dataset.from_rows(sets.pt)
    local fields, alias = ds:fields()
    t.assert_eq(alias.labels, "input_ids")
    t.assert_eq(fields.labels, "list")
    local r1 = ds[1]
    t.assert(rawequal(r1.input_ids, r1.labels))
    t.assert(not rawequal(ds[1], ds[1]), "every ds[i] is a fresh table")
    local kto = lfl.dataset.from_rows(sets.kto)
    local kf = kto:fields()
    t.assert_eq(kf.kto_tag, "bool")
    t.assert_eq(type(kto[1].kto_tag), "boolean")
  end,

  index_and_fields = function()
    local rows = sets.sft
    local ds = lfl.dataset.from_rows(rows)
    same_rows({ds[-1]}, {rows[#rows]}, "ds[-1]")
    same_rows({ds[-#rows]}, {rows[1]}, "ds[-n]")
    t.assert_error(function() return ds[0] end, "row 0 is out of range (1.." .. #rows .. ")")
    t.assert_error(function() return ds[#rows + 1] end, "row " .. (#rows + 1) .. " is out of range")
    t.assert_error(function() return ds[1.5] end, "not an integer")
    t.assert_error(function() return ds:row(1, "arrays") end, "neither \"tables\" nor \"tensors\"")
    t.assert_eq(ds.no_such_method, nil)
    local f, alias = ds:fields()
    t.assert_eq(f.input_ids, "list"); t.assert_eq(f.labels, "list"); t.assert_eq(next(alias), nil)
    local ntok = 0
    for _, r in ipairs(rows) do ntok = ntok + #r.input_ids end
    t.assert_eq(ds:num_tokens(), ntok)
    local s = tostring(ds)
    t.assert(s:find(#rows .. " rows", 1, true) and s:find("input_ids list", 1, true) and s:find(ntok .. " tokens", 1, true), s)
    -- rows as tensors
    local r = ds:row(7, "tensors")
    t.assert_eq(r.input_ids:dtype(), "i64")
    same_tensor(r.labels, lfl.tensor(rows[7].labels, "i64"), "row 7 labels")
    local p = lfl.dataset.from_rows(sets.pt):row(2, "tensors")
    t.assert(rawequal(p.input_ids, p.labels), "an alias is one tensor")
    local k = lfl.dataset.from_rows(sets.kto):row(2, "tensors")
    t.assert_eq(k.kto_tag, sets.kto[2].kto_tag)
    -- pairwise tokens: chosen + rejected
    local pd = lfl.dataset.from_rows(sets.pairwise)
    local pt_tok = 0
    for _, x in ipairs(sets.pairwise) do pt_tok = pt_tok + #x.chosen_input_ids + #x.rejected_input_ids end
    t.assert_eq(pd:num_tokens(), pt_tok)
    -- columns are the dataset's tensors
    local v, o = ds:column("input_ids")
    t.assert_eq(v:dtype(), "i32"); t.assert_eq(o:numel(), #rows + 1); t.assert_eq(v:numel(), ntok)
    t.assert_error(function() ds:column("nope") end, "no column 'nope'")
  end,

  from_rows_errors = function()
    local E = lfl.dataset.from_rows
    t.assert_error(function() E({{input_ids = {1}}, {input_ids = {1}, labels = {2}}}) end, "row 2 has 2 fields, row 1 has 1")
    t.assert_error(function() E({{input_ids = {1}, labels = {1}}, {input_ids = {1}}}) end, "row 2: field 'labels' is missing")
    t.assert_error(function() E({{input_ids = {1}}, {input_ids = true}}) end, "row 2: field 'input_ids' is boolean (row 1 has a list)")
    t.assert_error(function() E({{input_ids = {1, "x"}}}) end, "row 1: input_ids[2] is string")
    t.assert_error(function() E({{input_ids = {1}}, {input_ids = {1, 2.5}}}) end, "row 2: input_ids[2] is 2.5")
    t.assert_error(function() E({{input_ids = {2 ^ 31}}}) end, "fits in i32")
    t.assert_error(function() E({{input_ids = "abc"}}) end, "field 'input_ids' is a string")
    t.assert_error(function() E({{input_ids = {1}}, 5}) end, "row 2 is a number, not a table")
    t.assert_error(function() E({{input_ids = {1}, n = 0.5}}) end, "field 'n' = 0.5 is not an integer")
    -- empty
    local e = E({})
    t.assert_eq(#e, 0); t.assert_eq(e:num_tokens(), 0)
    -- a list shared in the first rows only: stored separately from the row that differs
    local a, b = {1, 2, 3}, {4, 5}
    local rows = {{input_ids = a, labels = a}, {input_ids = b, labels = b}, {input_ids = {6}, labels = {-100}},
                  {input_ids = {7, 8}, labels = {7, 8}}}
    local ds = E(rows)
    local _, alias = ds:fields()
    t.assert_eq(alias.labels, nil)
    same_rows(ds, rows, "unaliased")
    local u = ds[1]
    t.assert(not rawequal(u.input_ids, u.labels))
    -- numbers and booleans
    local ns = E({{x = 5, ok = true, ids = {}}, {x = -7, ok = false, ids = {1}}})
    t.assert_eq(ns[2].x, -7); t.assert_eq(ns[2].ok, false); t.assert_eq(#ns[1].ids, 0)
  end,

  from_tensors = function()
    local src = lfl.dataset.from_rows(sets.kto)
    local cols = {}
    for name, kind in pairs(src:fields()) do
      local v, o = src:column(name)
      cols[name] = kind == "list" and {values = v, offsets = o} or {scalar = v, kind = kind}
    end
    local ds = lfl.dataset.from_tensors(cols)
    same_rows(ds, sets.kto, "from_tensors")
    -- i64 lists from lfl.tensor, an alias
    local d2 = lfl.dataset.from_tensors({input_ids = {values = lfl.tensor({5, 6, 7}, "i64"),
      offsets = lfl.tensor({0, 1, 3}, "i64")}, labels = "input_ids"})
    t.assert_eq(#d2, 2); t.assert_eq(d2[2].labels[2], 7); local r2 = d2[2]; t.assert(rawequal(r2.labels, r2.input_ids))
    t.assert_error(function() lfl.dataset.from_tensors({ids = {values = lfl.tensor({1, 2, 3}, "i32"),
      offsets = lfl.tensor({0, 2, 4}, "i64")}}) end, "column 'ids': offsets end at 4 but there are 3 values")
    t.assert_error(function() lfl.dataset.from_tensors({ids = {values = lfl.tensor({1, 2, 3}, "i32"),
      offsets = lfl.tensor({0, 2, 1, 3}, "i64")}}) end, "offsets decrease at row 1")
    t.assert_error(function() lfl.dataset.from_tensors({ids = {values = lfl.tensor({1, 2, 3}, "i32"),
      offsets = lfl.tensor({0, 3}, "i64")}, tag = {scalar = lfl.tensor({1, 0}, "i64"), kind = "bool"}}) end,
      "column 'tag': 2 values for 1 rows")
    t.assert_error(function() lfl.dataset.from_tensors({ids = {values = lfl.tensor({1}, "i32"),
      offsets = lfl.tensor({0, 1}, "i64")}, labels = "idz"}) end, "no column 'idz' (its columns: ids)")
    t.assert_error(function() lfl.dataset.from_tensors({ids = {values = lfl.tensor({1.5}), offsets = lfl.tensor({0, 1}, "i64")}}) end,
      "values must be i32 or i64 (got f32)")
    t.assert_error(function() lfl.dataset.from_tensors({ids = 5}) end, "column 'ids' is a number")
  end,

  order_is_lfl_data_shuffle = function()
    local ds = lfl.dataset.from_rows(sets.sft)
    for _, seed in ipairs({42, 43, 0, 1, 7, -3, 123456789, 2147483647}) do
      local want = {}
      for i = 1, #ds do want[i] = i end
      lfl.data.shuffle(want, seed)
      local got = ds:order(seed)
      t.assert_eq(#got, #want)
      for i = 1, #want do
        if got[i] ~= want[i] then error(("seed %d: position %d: %d vs %d"):format(seed, i, got[i], want[i]), 0) end
      end
    end
    local id = ds:order()
    t.assert_eq(id[1], 1); t.assert_eq(id[#ds], #ds)
    t.assert_error(function() ds:order(1.5) end, "seed must be an integer")
  end,

  collate_matches_lua = function()
    local function check(rows, kind, lua_collate, opts, what)
      local ds = lfl.dataset.from_rows(rows)
      for bi, idx in ipairs(batches_of(#rows, 11)) do
        local list = {}
        for i, k in ipairs(idx) do list[i] = rows[k] end
        same_batch(ds:collate(idx, kind, opts), lua_collate(list, opts), ("%s batch %d"):format(what, bi))
      end
    end
    check(sets.sft, "pack", common.pack_row, nil, "sft pack")
    check(sets.sft, "pack", sft.collate, nil, "sft.collate unpacked")
    check(sets.pt, "pack", common.pack_row, nil, "pt pack")
    check(sets.pt_rows, "pack", require("recipes.approaches.pt").collate, nil, "pt rows")
    check(sets.packed, "stack_packed", sft.collate, nil, "sft packed")
    check(sets.pairwise, "pairwise", pw.collate_pairwise, {pad_id = 0}, "pairwise")
    check(sets.pairwise, "pairwise", pw.collate_pairwise, {pad_id = 2, pad_to_multiple_of = 8}, "pairwise padded")
    check(sets.pairwise, "pairwise_packed", pw.collate_pairwise_packed, nil, "pairwise packed")
    check(sets.kto, "kto", pw.collate_kto, {pad_id = tok.pad_id or 0}, "kto")
    check(sets.kto, "kto", pw.collate_kto, {pad_id = 1, pad_to_multiple_of = 16}, "kto padded")
    -- the trainer's way: rows read back from the C dataset through the Lua collator
    local ds = lfl.dataset.from_rows(sets.packed)
    same_batch(ds:collate({3, 1}, "stack_packed"), sft.collate({ds[3], ds[1]}), "ds rows through sft.collate")
  end,

  collate_errors = function()
    local ds = lfl.dataset.from_rows(sets.sft)
    t.assert_error(function() ds:collate({1, 2}, "padded") end, "unknown kind 'padded' (pack, stack_packed, pairwise, kto, pairwise_packed)")
    t.assert_error(function() ds:collate({1, #ds + 1}, "pack") end, "indices[2]: row " .. (#ds + 1) .. " is out of range")
    t.assert_error(function() ds:collate({1, "x"}, "pack") end, "indices[2] is a string")
    t.assert_error(function() ds:collate({}, "pack") end, "no indices")
    t.assert_error(function() ds:collate({1}, "pack", {pad_idx = 0}) end, "unknown option 'pad_idx' (known: pad_id, pad_to_multiple_of)")
    t.assert_error(function() ds:collate({1}, "stack_packed") end, "no column 'position_ids' (its columns: input_ids, labels)")
    t.assert_error(function() ds:collate({1}, "kto") end, "no column 'kl_input_ids'")
    t.assert_error(function() ds:collate({1}, "pairwise_packed") end, "no column 'chosen_input_ids'")
    t.assert_error(function() ds:collate({1}, "pairwise", {pad_id = "x"}) end, "pad_id must be a number")
    local packed = lfl.dataset.from_rows({{input_ids = {1, 2}, labels = {1, 2}, position_ids = {0, 1}, segments = {1, 1}},
                                          {input_ids = {1}, labels = {1}, position_ids = {0}, segments = {1}}})
    t.assert_error(function() packed:collate({1, 2}, "stack_packed") end, "pre-packed rows share one length")
  end,

  save_load = function()
    local path = tmp .. "_ds.safetensors"
    local ds = lfl.dataset.from_rows(sets.kto)
    ds:save(path, {note = "kto rows"})
    local back, meta = lfl.dataset.load(path)
    t.assert_eq(meta.note, "kto rows")
    same_rows(back, sets.kto, "kto reloaded")
    t.assert_eq(back:num_tokens(), ds:num_tokens())
    same_batch(back:collate({1, 2, 3}, "kto"), pw.collate_kto({sets.kto[1], sets.kto[2], sets.kto[3]}), "reloaded kto collate")
    -- splits in one file
    local p2 = tmp .. "_ds2.safetensors"
    lfl.dataset.save(p2, {train = lfl.dataset.from_rows(sets.pt), eval = lfl.dataset.from_rows(sets.pairwise)}, {k = "v"})
    local all, m2 = lfl.dataset.load_all(p2)
    t.assert_eq(m2.k, "v")
    same_rows(all.train, sets.pt, "pt split")
    same_rows(all.eval, sets.pairwise, "pairwise split")
    local r5 = all.train[5]
    t.assert(rawequal(r5.input_ids, r5.labels), "the alias survives the file")
    same_rows(lfl.dataset.load(p2, "eval"), sets.pairwise, "load(path, split)")
    t.assert_error(function() lfl.dataset.load(p2) end, "holds 2 splits ('eval', 'train')")
    t.assert_error(function() lfl.dataset.load(p2, "test") end, "has no split 'test'")
    t.assert_error(function() ds:save(path, {lfl_dataset = "x"}) end, "the dataset's own")
    t.assert_error(function() ds:save(path, {n = 5}) end, "metadata keys and values must be strings")
    -- saving over the file a dataset is mapped from leaves the mapped one intact
    back:save(path, {note = "again"})
    same_rows(back, sets.kto, "still mapped after the rewrite")
    same_rows(lfl.dataset.load(path), sets.kto, "rewritten")
    -- not a dataset, truncated
    lfl.safetensors.save(path, {x = lfl.tensor({1, 2})})
    t.assert_error(function() lfl.dataset.load(path) end, "not an lfl dataset")
    local f = assert(io.open(p2, "rb")); local s = f:read("*a"); f:close()
    f = assert(io.open(p2, "wb")); f:write(s:sub(1, #s - 100)); f:close()
    t.assert_error(function() lfl.dataset.load(p2) end, p2)
    t.assert_error(function() lfl.dataset.load(tmp .. "_missing") end, "cannot open")
    os.remove(path); os.remove(p2)
  end,

  batches_and_resume = function()
    local ds = lfl.dataset.from_rows(sets.sft)
    local bs, seed, n = 7, 42, #ds
    local nb = math.ceil(n / bs)
    -- the trainer's loop (stdlib/lfl/train/trainer.lua) for two epochs
    local want = {}
    for epoch = 0, 1 do
      local order = {}
      for i = 1, n do order[i] = i end
      lfl.data.shuffle(order, seed + epoch)
      for b = 1, nb do
        local list = {}
        for k = (b - 1) * bs + 1, math.min(n, b * bs) do list[#list + 1] = order[k] end
        want[#want + 1] = {epoch = epoch, batch = b, idx = table.concat(list, ",")}
      end
    end
    local it = ds:batches{batch_size = bs, seed = seed, epochs = 2}
    t.assert_eq(it:batches_per_epoch(), nb)
    local k = 0
    for idx, epoch, batch in it do
      k = k + 1
      t.assert_eq(table.concat(idx, ","), want[k].idx, "batch " .. k)
      t.assert_eq(epoch, want[k].epoch); t.assert_eq(batch, want[k].batch)
      local e, b = it:position()
      t.assert_eq(e, epoch); t.assert_eq(b, batch)
    end
    t.assert_eq(k, 2 * nb)
    t.assert_eq(it:next(), nil, "done after the last epoch")
    -- resume from a checkpoint's position (epoch 1, 3 batches done)
    local r = ds:batches{batch_size = bs, seed = seed, epoch = 1, start = 3}
    local idx, e, b = r()
    t.assert_eq(table.concat(idx, ","), want[nb + 4].idx)
    t.assert_eq(e, 1); t.assert_eq(b, 4)
    -- seek back and replay
    r:seek(0, 0)
    t.assert_eq(table.concat(r:next(), ","), want[1].idx)
    t.assert_error(function() r:seek(0, nb + 1) end, "outside 0.." .. nb)
    -- no shuffle: 1..n in order; endless
    local plain = ds:batches{batch_size = n, shuffle = false, epochs = math.huge}
    for _ = 1, 3 do
      local x = plain()
      t.assert_eq(#x, n); t.assert_eq(x[1], 1); t.assert_eq(x[n], n)
    end
    t.assert_eq(select(1, plain:position()), 2)
    t.assert(tostring(plain):find("epoch 2", 1, true))
    -- a position at the end of an epoch with epochs = 1 yields nothing
    local done = ds:batches{batch_size = bs, seed = seed, start = nb}
    t.assert_eq(done(), nil)
    t.assert_error(function() ds:batches{seed = 1} end, "batch_size is required")
    t.assert_error(function() ds:batches{batch_size = 0} end, "batch_size must be at least 1")
    t.assert_error(function() ds:batches{batch_size = 2, shufle = true} end, "unknown option 'shufle'")
    t.assert_error(function() ds:batches{batch_size = 2, start = nb * 4} end, "outside 0..")
  end,

  lifetime = function()
    -- datasets, iterators and mapped files dropped in any order
    local path = tmp .. "_life.safetensors"
    lfl.dataset.from_rows(sets.pt):save(path)
    for _ = 1, 20 do
      local ds = lfl.dataset.load(path)
      local it = ds:batches{batch_size = 3}
      ds = nil
      collectgarbage()
      t.assert(it() ~= nil)
    end
    local rows = lfl.dataset.load(path)
    os.remove(path) -- the mapping outlives the name
    collectgarbage()
    same_rows(rows, sets.pt, "after unlink")
  end,
})

t.run()
