-- Preprocessing conformance with LlamaFactory itself: the dataset files in
-- tests/golden/preprocess/data go through lfl.data.load and the approaches'
-- prepare (sft, pt, pairwise_data) with the real tokenizers from
-- ../shared/data/tokenizers, and every input_ids / labels / position_ids /
-- chosen / rejected / kl_* row must equal what LlamaFactory's own get_dataset
-- produced (tests/ref/make_preprocess_goldens.py).
local t = lfl.test
local root = lfl.home .. "/tests/golden/preprocess"
local toks_dir = lfl.home .. "/../shared/data/tokenizers/"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local golden = lfl.json.decode(read(root .. "/goldens.json"))
local sft = lfl.recipes.load("approaches", "sft")
local pt = lfl.recipes.load("approaches", "pt")
local pw = require("lfl.data.pairwise")

local toks = {}
local function tokenizer(name)
  toks[name] = toks[name] or lfl.tokenizer.load(toks_dir .. name)
  return toks[name]
end

-- the llama3 tool prompt carries today's date; the goldens pinned 26 Jul 2024
local function with_date(fn)
  local real = os.date
  os.date = function(f, ...) if f == "%d %b %Y" then return "26 Jul 2024" end return real(f, ...) end
  local ok, a, b = pcall(fn)
  os.date = real
  if not ok then error(a, 0) end
  return a, b
end

local function unpack_labels(ids, mask, other)
  local out = {}
  for i = 1, #mask do
    local c = mask:sub(i, i)
    if c == "1" then out[i] = ids[i]
    elseif c == "0" then out[i] = -100
    else out[i] = other[tostring(i - 1)] end
  end
  return out
end

local function first_diff(a, b)
  for i = 1, math.max(#a, #b) do
    if a[i] ~= b[i] then return i end
  end
  return nil
end

local function same(what, got, want)
  local i = first_diff(got, want)
  if i then
    local function around(l)
      local s = {}
      for k = math.max(1, i - 3), math.min(#l, i + 3) do s[#s + 1] = tostring(l[k]) end
      return table.concat(s, " ")
    end
    error(string.format("%s: differs at position %d (len got %d, want %d): got ... %s ..., want ... %s ...",
      what, i, #got, #want, around(got), around(want)), 0)
  end
end

local function run_case(c)
  local tok = tokenizer(c.tokenizer)
  local a = {template = c.template, stage = c.stage, dataset = c.dataset, dataset_dir = root .. "/data",
             cutoff_len = c.args.cutoff_len, packing = c.args.packing, train_on_prompt = c.args.train_on_prompt,
             mask_history = c.args.mask_history, neat_packing = c.args.neat_packing,
             enable_thinking = c.args.enable_thinking == nil and true or c.args.enable_thinking,
             preprocessing_batch_size = 1000}
  local data = lfl.data.load(a)
  local ctx = {tokenizer = tok, template = lfl.template.get(c.template), args = a}
  local rows = with_date(function()
    if c.stage == "sft" then return (sft.prepare(data.train, ctx))
    elseif c.stage == "pt" then return (pt.prepare(data.train, ctx))
    elseif c.stage == "rm" then return (pw.prepare_pairwise(data.train, ctx))
    elseif c.stage == "kto" then return (pw.prepare_kto(data.train, ctx)) end
    error("unknown stage " .. c.stage)
  end)
  t.assert_eq(#rows, #c.rows, c.name .. ": number of rows")
  for r, want in ipairs(c.rows) do
    local got = rows[r]
    for _, p in ipairs({"", "chosen_", "rejected_", "kl_"}) do
      if want[p .. "input_ids"] then
        same(string.format("%s row %d %sinput_ids", c.name, r, p), got[p .. "input_ids"], want[p .. "input_ids"])
        if want[p .. "labels_mask"] then
          local wl = unpack_labels(want[p .. "input_ids"], want[p .. "labels_mask"], want[p .. "labels_other"] or {})
          same(string.format("%s row %d %slabels", c.name, r, p), got[p .. "labels"], wl)
        end
      end
    end
    if want.position_ids then same(c.name .. " row " .. r .. " position_ids", got.position_ids, want.position_ids) end
    if want.attention_mask then same(c.name .. " row " .. r .. " segments", got.segments, want.attention_mask) end
    if want.kto_tag ~= nil then t.assert_eq(got.kto_tag, want.kto_tag, c.name .. " row " .. r .. " kto_tag") end
  end
end

-- rows of a 2-D (or 1-D) i64 tensor as Lua lists
local function rows_of(x)
  local sz = x:size()
  local c = x:contiguous()
  if #sz == 1 then
    local out = {}
    for i = 1, sz[1] do out[i] = c:_at(i) end
    return out
  end
  local out = {}
  for i = 1, sz[1] do
    out[i] = {}
    for j = 1, sz[2] do out[i][j] = c:_at((i - 1) * sz[2] + j) end
  end
  return out
end

local cases = {}
for _, c in ipairs(golden.cases) do
  cases[c.name] = function() run_case(c) end
end

cases.collate_pairwise_layout = function()
  local rows = {{chosen_input_ids = {1, 2, 3}, chosen_labels = {-100, 2, 3}, rejected_input_ids = {1, 2},
                 rejected_labels = {-100, 9}},
                {chosen_input_ids = {4, 5}, chosen_labels = {-100, 5}, rejected_input_ids = {4, 6, 7, 8},
                 rejected_labels = {-100, -100, 7, 8}}}
  local b = pw.collate_pairwise(rows, {pad_id = 0})
  t.assert_eq(b.input_ids:size(1), 4)
  t.assert_eq(b.input_ids:size(2), 4)
  local ids = rows_of(b.input_ids)
  t.assert_eq(table.concat(ids[1], ","), "1,2,3,0") -- chosen of example 1
  t.assert_eq(table.concat(ids[2], ","), "4,5,0,0") -- chosen of example 2
  t.assert_eq(table.concat(ids[3], ","), "1,2,0,0") -- rejected of example 1
  t.assert_eq(table.concat(rows_of(b.labels)[4], ","), "-100,7,8,-100") -- shifted
  t.assert_eq(table.concat(rows_of(b.attention_mask)[3], ","), "1,1,0,0")
  t.assert_eq(b.nlabels, 2 + 1 + 1 + 2)
end

cases.kto_rotation_and_collate = function()
  local d = lfl.data.load({dataset = "kto", dataset_dir = root .. "/data", stage = "kto"})
  local tok = tokenizer("qwen3")
  local rows = pw.prepare_kto(d.train, {tokenizer = tok, template = lfl.template.get("qwen"),
    args = {cutoff_len = 1024, preprocessing_batch_size = 2}})
  -- batches of 2: example 2's KL answer is example 1's, example 3 (alone in its batch) pairs with itself
  local txt = tok:decode(rows[2].kl_input_ids)
  t.assert(txt:find("Yes, usually.", 1, true), txt)
  t.assert_eq(table.concat(rows[3].kl_input_ids, ","), table.concat(rows[3].input_ids, ","))
  local b = pw.collate_kto(rows, {pad_id = tok.pad_id})
  t.assert_eq(table.concat(rows_of(b.kto_tags), ","), "1,0,1")
  t.assert_eq(b.kl_input_ids:size(1), 3)
end

t.suite("preprocess_goldens", cases)
t.run()
