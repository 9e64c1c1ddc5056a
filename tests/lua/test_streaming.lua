-- Streaming datasets (lfl.stream, lfl._stream): the record reader against the
-- in-memory loader (JSON arrays with tricky strings, JSONL, CSV with quoted
-- newlines, text), malformed files, the stream in the same order as lfl.data
-- (concat, interleave_under/over) when the shuffle buffer is 1, the buffer
-- shuffle, val_size held out, skipped rows counted, several passes, packing,
-- restore to a saved position, a streaming training run resumed from a
-- checkpoint step for step, and a ~150 MB JSONL trained on with flat memory
-- (peak RSS of a child process well under the file size).
local t = lfl.test
local stream = require("lfl.data.stream")
local data = lfl.data
local sft = lfl.recipes.load("approaches", "sft")
local pt = lfl.recipes.load("approaches", "pt")
local fmt = string.format

local base = os.tmpname()
os.remove(base)
local tmp = base .. "_stream"
os.execute("rm -rf '" .. tmp .. "' && mkdir -p '" .. tmp .. "/data' '" .. tmp .. "/model'")
local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end
local function dpath(name) return tmp .. "/data/" .. name end

-- the tiny llama (vocab 64) with the 64-token tokenizer of the serve tests
local home = lfl.home
os.execute(fmt("ln -sf '%s/tests/golden/models/llama/config.json' '%s/tests/golden/models/llama/model.safetensors' "
  .. "'%s/tests/golden/serve/tokenizer.json' '%s/model/'", home, home, home, tmp))
local model_dir = tmp .. "/model"
-- runs without streaming write the tokenized-data cache: into the scratch folder
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return tmp .. "/cache" end return real_getenv(k) end
local tok = lfl.tokenizer.load(model_dir)

-- ~200 alpaca records over three files
local demo = lfl.json.decode(io.open(home .. "/recipes/data/alpaca_demo.json"):read("*a"))
local function alpaca(i) local r = demo[(i - 1) % #demo + 1]; return {instruction = r.instruction .. " #" .. i, input = r.input or "", output = r.output} end
local a1, a2 = {}, {}
for i = 1, 120 do a1[i] = alpaca(i) end
for i = 1, 70 do a2[i] = alpaca(1000 + i) end
a1[7] = {instruction = "bad history", output = "x", history = 5} -- skipped: history is not a list
a2[3] = {instruction = "another bad one", output = "y", history = "no"}
write(dpath("a1.json"), lfl.json.encode(a1, {indent = true}))
do
  local f = assert(io.open(dpath("a2.jsonl"), "wb"))
  for i, r in ipairs(a2) do f:write(lfl.json.encode(r), i % 10 == 0 and "\r\n\n" or "\n") end
  f:close()
end
-- clean copies (no invalid rows) for comparing interleave draws with the in-memory path, which
-- drops invalid rows before merging where LlamaFactory (and the stream) drop them after
local c1, c2 = {}, {}
for i = 1, 40 do c1[i] = alpaca(2000 + i) end
for i = 1, 25 do c2[i] = alpaca(3000 + i) end
write(dpath("c1.json"), lfl.json.encode(c1))
write(dpath("c2.json"), lfl.json.encode(c2))
write(dpath("pt.txt"), "first line of text\n\nsecond line\nthird line without newline")
write(dpath("dataset_info.json"), [[{"a1": {"file_name": "a1.json", "columns": {"history": "history"}},
  "a2": {"file_name": "a2.jsonl", "columns": {"history": "history"}},
  "c1": {"file_name": "c1.json"}, "c2": {"file_name": "c2.json"},
  "text": {"file_name": "pt.txt", "columns": {"prompt": "text"}}}]])

local function args(over)
  local a = {stage = "sft", dataset = "a1,a2", dataset_dir = tmp .. "/data", seed = 42, buffer_size = 1, val_size = 0,
             cutoff_len = 48, preprocessing_batch_size = 16, template = "chatml"}
  for k, v in pairs(over or {}) do a[k] = v end
  return a
end
local function ctx(a) return {tokenizer = tok, template = lfl.template.get(a.template), args = a} end

-- canonical examples of a stream with an identity "approach" (src strings)
local ident = {prepare = function(list) local out = {}; for i, ex in ipairs(list) do out[i] = ex.src end; return out, 0 end}
local function srcs(a, n)
  local s = stream.open(a, ctx(a), ident)
  return s:next_rows(n), s
end

local function all_records(path)
  local out = {}
  for rec, k in stream.records(path) do out[#out + 1] = rec; t.assert_eq(k, #out) end
  return out
end

local function same(x, y, where)
  t.assert_eq(lfl.json.encode(x, {sort_keys = true}), lfl.json.encode(y, {sort_keys = true}), where)
end

t.suite("streaming", {
  reader_matches_in_memory = function()
    for _, f in ipairs({"alpaca_demo.json", "identity.json", "sharegpt_tools_demo.json", "preference_demo.json",
                        "kto_demo.json", "pretrain_demo.txt"}) do
      local p = home .. "/recipes/data/" .. f
      same(all_records(p), data.read_records(p), f)
    end
    same(all_records(dpath("a2.jsonl")), data.read_records(dpath("a2.jsonl")), "jsonl with CRLF and blank lines")
    local txt = all_records(dpath("pt.txt"))
    t.assert_eq(#txt, 3); t.assert_eq(txt[3].text, "third line without newline")
  end,

  json_array_scanner = function()
    local recs = {{a = "brackets ] } [ { and , commas"}, {a = "escaped \" quote and \\ backslash \\\" mix", b = {1, {2, 3}}},
                  {a = "unicode é 中 \u{1F600}", n = -1.5e3, t = true, z = lfl.json.null}, {}, {a = "\\"}}
    local text = "\239\187\191 \n[ " .. lfl.json.encode(recs[1]) .. " ,\n\t" .. lfl.json.encode(recs[2]) .. "," ..
      lfl.json.encode(recs[3]) .. ",{}," .. lfl.json.encode(recs[5]) .. "\n]\n"
    write(dpath("tricky.json"), text)
    local got = all_records(dpath("tricky.json"))
    t.assert_eq(#got, 5)
    for i = 1, 5 do same(got[i], recs[i], "element " .. i) end
    -- element larger than the 1 MB read chunk, and an empty array
    local big = {{x = string.rep("ab\"c", 400000)}, {y = 1}}
    write(dpath("big.json"), lfl.json.encode(big))
    got = all_records(dpath("big.json"))
    t.assert_eq(#got, 2); t.assert_eq(#got[1].x, 1600000); t.assert_eq(got[2].y, 1)
    write(dpath("empty.json"), " [ ] ")
    t.assert_eq(#all_records(dpath("empty.json")), 0)
    -- malformed
    local function bad(s, pat)
      write(dpath("bad.json"), s)
      t.assert_error(function() all_records(dpath("bad.json")) end, pat, s)
    end
    bad('{"a": 1}', "expected a JSON array")
    bad('[{"a": 1} {"b": 2}]', "expected ',' or ']'")
    bad('[{"a": 1},', "ends inside the JSON array")
    bad('[{"a": "1}', "ends inside a JSON array element")
    bad('[{"a": 1},]', "expected an array element")
    bad('[{"a": tru}]', "array element 1")
    write(dpath("bad.jsonl"), '{"a": 1}\n{"a": \n')
    t.assert_error(function() all_records(dpath("bad.jsonl")) end, "bad.jsonl: line 2: invalid JSON")
  end,

  csv_records = function()
    local text = 'instruction,input,output\r\nplain,,"a, b"\r\n"multi\nline","say ""hi""",x\n\nlast,one,"q"""'
    write(dpath("r.csv"), text)
    same(all_records(dpath("r.csv")), data.parse_csv(text, "r.csv"), "csv")
    local got = all_records(dpath("r.csv"))
    t.assert_eq(got[2].instruction, "multi\nline"); t.assert_eq(got[2].input, 'say "hi"'); t.assert_eq(got[3].output, 'q"')
    write(dpath("r2.csv"), 'a,b\n1,2,3\n')
    t.assert_error(function() all_records(dpath("r2.csv")) end, "row 2 has 3 fields, the header has 2")
    write(dpath("r3.csv"), 'a,b\n"open,2\n')
    t.assert_error(function() all_records(dpath("r3.csv")) end, "unterminated quoted field")
  end,

  same_order_as_in_memory = function()
    for _, mix in ipairs({"concat", "interleave_under", "interleave_over"}) do
      local a = args({mix_strategy = mix, interleave_probs = mix ~= "concat" and "0.3,0.7" or nil,
                      dataset = mix ~= "concat" and "c1,c2" or "a1,a2"})
      local mem = data.load(a)
      local n = #mem.train
      local got = srcs(a, n)
      for i = 1, n do t.assert_eq(got[i], mem.train[i].src, mix .. " example " .. i) end
      local s = stream.open(a, ctx(a), ident)
      local k = 0
      while s.pass == 0 do s:next_rows(1); k = k + 1 end
      t.assert_eq(k - 1, n, mix .. ": the pass ends where the in-memory list ends")
    end
  end,

  skipped_rows_counted = function()
    local a = args()
    local _, s = srcs(a, 1)
    while s.pass == 0 do s:next_rows(1) end
    t.assert_eq(s.stats.total, 190); t.assert_eq(s.stats.kept, 188)
    t.assert_eq(s.stats.skipped["history is not a list"], 2)
    t.assert_error(function() srcs(args({strict = true}), 200) end, "a1.json:7: history is not a list")
  end,

  buffer_shuffle = function()
    local a = args({buffer_size = 16})
    local x = srcs(a, 188)
    local y = srcs(a, 188)
    local z = srcs(args({buffer_size = 16, seed = 7}), 188)
    local order = srcs(args(), 188)
    local pos = {}
    for i, s in ipairs(order) do pos[s] = i end
    local seen, differs, far = {}, false, 0
    for i, s in ipairs(x) do
      t.assert_eq(s, y[i], "same seed, same order")
      if s ~= z[i] then differs = true end
      t.assert(not seen[s], "each example once per pass"); seen[s] = true
      -- an example cannot come out before the buffer has reached it
      t.assert(pos[s] <= i + 16, fmt("%s at %d came from %d", s, i, pos[s]))
      far = math.max(far, math.abs(pos[s] - i))
    end
    t.assert(differs, "another seed gives another order")
    t.assert(far > 8, "the buffer mixes")
    local nosh = srcs(args({buffer_size = 16, disable_shuffling = true}), 188)
    for i = 1, 188 do t.assert_eq(nosh[i], order[i]) end
  end,

  val_size_and_passes = function()
    local a = args({dataset = "c1,c2", buffer_size = 32, val_size = 5})
    local s = stream.open(a, ctx(a), ident)
    local shuffled = srcs(args({dataset = "c1,c2", buffer_size = 32}), 65)
    t.assert_eq(#s.eval, 5)
    for i = 1, 5 do t.assert_eq(s.eval[i], shuffled[i], "eval = the first val_size examples") end
    local held = {}
    for _, e in ipairs(s.eval) do held[e] = true end
    local first = s:next_rows(60)
    for i = 1, 60 do t.assert_eq(first[i], shuffled[i + 5], "train = the rest") end
    -- the next pass reshuffles (seed + 1) and still leaves out the eval examples
    local second = s:next_rows(60)
    t.assert_eq(s.pass, 1)
    local differs = false
    for i, x in ipairs(second) do
      t.assert(not held[x], "an eval example in pass 2")
      if x ~= first[i] then differs = true end
    end
    t.assert(differs, "pass 2 is reshuffled")
    -- as LlamaFactory, invalid records among the first val_size are dropped from eval
    local b = args({buffer_size = 1, val_size = 8})
    local sb = stream.open(b, ctx(b), ident)
    t.assert_eq(#sb.eval, 7, "a1's 7th record is invalid")
    t.assert_eq(sb:next_rows(1)[1], dpath("a1.json") .. ":9")
    t.assert_error(function() srcs(args({val_size = 0.1}), 1) end, "val_size must be a whole number")
    local se = stream.open(args({dataset = "a1", eval_dataset = "a2"}), ctx(args()), ident)
    t.assert_eq(#se.eval, 69, "eval_dataset read whole")
    t.assert_eq(se:next_rows(1)[1], dpath("a1.json") .. ":1")
  end,

  folder_file_order = function()
    os.execute("mkdir -p '" .. tmp .. "/folder/parts'")
    for f = 1, 4 do
      local lines = {}
      for i = 1, 5 do lines[i] = lfl.json.encode({instruction = fmt("f%d r%d", f, i), output = "o"}) end
      write(fmt("%s/folder/parts/p%d.jsonl", tmp, f), table.concat(lines, "\n") .. "\n")
    end
    write(tmp .. "/folder/dataset_info.json", [[{"parts": {"file_name": "parts"}}]])
    local function order(seed, disable)
      local a = args({dataset = "parts", dataset_dir = tmp .. "/folder", seed = seed, disable_shuffling = disable})
      local rows = srcs(a, 20)
      local files = {}
      for i, r in ipairs(rows) do
        local f = r:match("/p(%d)%.jsonl:")
        if i % 5 == 1 then files[#files + 1] = f else t.assert_eq(f, files[#files], "a file's records stay together") end
      end
      return table.concat(files)
    end
    t.assert_eq(order(1, true), "1234", "in name order without shuffling")
    local seen = {}
    for seed = 1, 6 do seen[order(seed)] = true end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    t.assert(n >= 3, "the file order is shuffled with the seed")
  end,

  restore_position = function()
    local a = args({buffer_size = 32, preprocessing_batch_size = 7})
    local s = stream.open(a, ctx(a), ident)
    s:next_rows(50)
    local st = lfl.json.decode(lfl.json.encode(s:state()))
    local want = s:next_rows(200) -- crosses into the second pass
    for _, at in ipairs({st, (function() local s2 = stream.open(a, ctx(a), ident); s2:next_rows(190); return s2:state() end)()}) do
      local r = stream.open(a, ctx(a), ident)
      r:restore(at)
      if at == st then
        local got = r:next_rows(200)
        for i = 1, 200 do t.assert_eq(got[i], want[i], "row " .. i .. " after restore") end
      else
        t.assert_eq(r.pass, 1)
      end
    end
    t.assert_error(function() stream.open(a, ctx(a), ident):restore({}) end, "no streaming position")
  end,

  tokenized_rows_and_packing = function()
    local a = args({buffer_size = 8})
    local s = stream.open(a, ctx(a), sft)
    local rows = s:next_rows(10)
    t.assert(#rows[1].input_ids > 0 and #rows[1].labels == #rows[1].input_ids, "sft rows")
    local ap = args({buffer_size = 8, packing = true})
    local sp = stream.open(ap, ctx(ap), sft)
    local packed = sp:next_rows(4)
    for _, r in ipairs(packed) do
      t.assert_eq(#r.input_ids, 48, "packed rows are cutoff_len long"); t.assert(r.segments, "segment ids")
    end
    local at = args({stage = "pt", dataset = "text", packing = true, cutoff_len = 9})
    local pr = stream.open(at, ctx(at), pt):next_rows(3)
    t.assert_eq(#pr[1].input_ids, 8, "pretraining blocks of cutoff_len - 1")
  end,

  trainer_resumes_stream = function()
    local function run(over, hooks)
      local r = {model_name_or_path = model_dir, stage = "sft", dataset = "a1,a2", dataset_dir = tmp .. "/data",
        template = "chatml", cutoff_len = 32, per_device_train_batch_size = 2, gradient_accumulation_steps = 2,
        max_steps = 8, logging_steps = 1, save_steps = 3, streaming = true, buffer_size = 16, val_size = 4,
        preprocessing_batch_size = 10, learning_rate = 1e-2, lr_scheduler_type = "constant", disable_tqdm = true,
        finetuning_type = "lora", seed = 3}
      for k, v in pairs(over) do r[k] = v end
      local a = lfl.args.resolve(r, {}, "test")
      local ok, err = pcall(lfl.trainer.run, a, hooks)
      local losses = {}
      for line in io.lines(a.output_dir .. "/trainer_log.jsonl") do
        local rec = lfl.json.decode(line)
        if rec.loss then losses[rec.current_steps] = rec.loss end
      end
      return losses, ok, err
    end
    -- the in-memory path through the same loop: resumes step for step as well
    local mref = run({output_dir = tmp .. "/mref", overwrite_output_dir = true, streaming = false, val_size = 0})
    t.assert_eq(#mref, 8)
    run({output_dir = tmp .. "/mcut", overwrite_output_dir = true, streaming = false, val_size = 0},
      {on_step = function(st) if st.global_step == 5 then error("stop here", 0) end end})
    local mres = run({output_dir = tmp .. "/mcut", streaming = false, val_size = 0})
    for step = 4, 8 do t.assert_close(mres[step], mref[step], 1e-5, "in memory, step " .. step) end
    local ref = run({output_dir = tmp .. "/ref", overwrite_output_dir = true})
    t.assert_eq(#ref, 8)
    local _, ok = run({output_dir = tmp .. "/cut", overwrite_output_dir = true},
      {on_step = function(st) if st.global_step == 5 then error("stop here", 0) end end})
    t.assert(not ok, "the first run stops at step 5")
    t.assert_eq(lfl.trainer.list_checkpoints(tmp .. "/cut")[1], 3)
    local st = lfl.json.decode(io.open(tmp .. "/cut/checkpoint-3/trainer_state.json"):read("*a"))
    t.assert_eq(st.data.stream.rows_used, 12, "3 steps x 2 micro-batches x 2 rows")
    local resumed = run({output_dir = tmp .. "/cut"})
    for step = 4, 8 do t.assert_close(resumed[step], ref[step], 1e-5, "step " .. step) end
    t.assert_error(function()
      local a = lfl.args.resolve({model_name_or_path = model_dir, dataset = "a1", dataset_dir = tmp .. "/data",
        template = "chatml", max_steps = 8, output_dir = tmp .. "/cut", resume_from_checkpoint = tmp .. "/cut/checkpoint-3"}, {}, "t")
      lfl.trainer.run(a)
    end, "written by a streaming run")
  end,

  -- a ~150 MB JSONL whose valid records are spread through the file: the
  -- stream reads all of it to fill the batches, and a child lfl's peak RSS
  -- stays far below what loading the file would take
  flat_memory_on_a_large_file = function()
    os.execute("mkdir -p '" .. tmp .. "/bigdata'")
    local big = tmp .. "/bigdata/big.jsonl"
    local f = assert(io.open(big, "wb"))
    local pad = string.rep("lorem ipsum dolor sit amet ", 8)
    local n, every = 300000, 30000
    for i = 1, n do
      local hist = (i % every == every / 2) and "[]" or "0"
      f:write('{"instruction": "record ', i, ' ', pad, '", "input": "", "output": "answer ', i, ' ', pad,
        '", "history": ', hist, '}\n')
    end
    f:close()
    local size_mb = io.open(big):seek("end") / 1e6
    t.assert(size_mb > 140, "file size " .. size_mb)
    write(tmp .. "/bigdata/dataset_info.json", [[{"big": {"file_name": "big.jsonl", "columns": {"history": "history"}}}]])
    local script = tmp .. "/child.lua"
    write(script, fmt([[
local a = lfl.args.resolve({model_name_or_path = %q, stage = "sft", dataset = "big", dataset_dir = %q,
  template = "chatml", cutoff_len = 32, per_device_train_batch_size = 2, max_steps = 5, logging_steps = 1,
  save_steps = 1000, streaming = true, learning_rate = 1e-3, disable_tqdm = true, finetuning_type = "lora",
  output_dir = %q, overwrite_output_dir = true}, {}, "child")
local stats
local t0 = lfl.sys.clock()
local res = lfl.trainer.run(a, {on_step = function(st) stats = st.stream.stats end})
local _, peak = lfl.sys.rss()
local f = io.open(%q, "w")
f:write(lfl.json.encode({peak = peak, total = stats.total, kept = stats.kept, seconds = lfl.sys.clock() - t0,
  skipped = stats.skipped["history is not a list"] or 0, steps = res.state.global_step}))
f:close()
]], model_dir, tmp .. "/bigdata", tmp .. "/big_out", tmp .. "/child.json"))
    local ok = os.execute(fmt("'%s' '%s' > '%s/child.log' 2>&1", lfl.sys.exe(), script, tmp))
    local rf = io.open(tmp .. "/child.json")
    if ok ~= 0 or not rf then error("the child run failed:\n" .. (io.open(tmp .. "/child.log"):read("*a"))) end
    local r = lfl.json.decode(rf:read("*a"))
    os.remove(big)
    t.assert_eq(r.steps, 5)
    -- every valid record was reached, the last one 15000 records before the end
    t.assert_eq(r.kept, n / every, "valid records used")
    t.assert(r.total > n - every - 16384, "records read " .. r.total); t.assert_eq(r.skipped, r.total - r.kept)
    if os.getenv("LFL_VERBOSE") then print(fmt("  %.0f MB file: peak RSS %.1f MB, %.1f s", size_mb, r.peak, r.seconds)) end
    -- loading it whole would hold the text alone (size_mb) plus its decoded tables
    t.assert(r.peak < 80 and r.peak < size_mb / 2, fmt("peak RSS %.1f MB for a %.0f MB file", r.peak, size_mb))
  end,
})

local res = t.run()
os.execute("rm -rf '" .. tmp .. "'")
return res
