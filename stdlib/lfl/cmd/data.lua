-- `lfl data preview|stats DATASET --template T --model PATH ...`: look at a
-- dataset the way training will see it. preview prints the first examples as
-- the template renders them with the trained (label != -100) spans
-- highlighted (green on a terminal, [[...]] otherwise); stats prints counts,
-- token length percentiles and how many examples were truncated or skipped.
local lfl = lfl
local fmt, concat, floor, ceil = string.format, table.concat, math.floor, math.ceil

local usage = [[
usage: lfl data preview DATASET --template T --model PATH [options]
       lfl data stats   DATASET --template T --model PATH [options]
  DATASET is a name (or comma-separated names) from dataset_info.json in
  --dataset_dir (default recipes/data) or a recipes/datasets/<name>.lua.
  --model is what the tokenizer is loaded from: a model folder, a tokenizer.json
  or a .gguf file.
options:
  --template T           chat template (recipes/templates/T.lua)
  --model PATH           tokenizer source (also --tokenizer)
  --dataset_dir DIR      folder with dataset_info.json
  --stage S              sft (default), pt or another approach found (lfl recipes
                         approaches: rm, dpo, orpo, simpo use pairwise rows); kto its rows
  -n N                   preview: how many examples (default 3)
  --cutoff_len N         default 2048
  --train_on_prompt, --mask_history, --packing, --no-enable_thinking
  --max_samples N        use only the first N examples of each dataset
  --color / --no-color   force or disable the ANSI highlight]]

local function fail(msg) error("lfl data: " .. msg .. "\n" .. usage, 0) end

local function parse(argv)
  local o = {n = 3, a = {stage = "sft", cutoff_len = 2048, enable_thinking = true, preprocessing_batch_size = 1000}}
  local i = 1
  local function value(flag)
    i = i + 1
    local v = argv[i]
    if v == nil then fail(flag .. " needs a value") end
    return v
  end
  local function number(flag)
    local v = tonumber(value(flag))
    if not v or v < 0 or v ~= floor(v) then fail(flag .. " needs a non-negative integer") end
    return v
  end
  -- a recipe argument's option, in that argument's range (lfl.args.SPEC)
  local function checked(key, flag) return require("lfl.train.args").check(key, number(flag), "lfl data", {label = flag}) end
  while i <= #argv do
    local x = argv[i]
    local flag, inline = x:match("^(%-%-[%w_%-]+)=(.*)$")
    if flag then x = flag; table.insert(argv, i + 1, inline) end
    if x == "--help" or x == "-h" then o.help = true
    elseif x == "--template" then o.a.template = value(x)
    elseif x == "--model" or x == "--tokenizer" then o.model = value(x)
    elseif x == "--dataset_dir" or x == "--dataset-dir" then o.a.dataset_dir = value(x)
    elseif x == "--stage" then o.a.stage = value(x)
    elseif x == "-n" or x == "--n" then o.n = number(x)
    elseif x == "--cutoff_len" or x == "--cutoff-len" then o.a.cutoff_len = checked("cutoff_len", x)
    elseif x == "--max_samples" or x == "--max-samples" then o.a.max_samples = checked("max_samples", x)
    elseif x == "--train_on_prompt" then o.a.train_on_prompt = true
    elseif x == "--mask_history" then o.a.mask_history = true
    elseif x == "--packing" then o.a.packing = true
    elseif x == "--no-enable_thinking" then o.a.enable_thinking = false
    elseif x == "--color" then o.color = true
    elseif x == "--no-color" then o.color = false
    elseif x:sub(1, 1) == "-" then fail("unknown option " .. x)
    elseif not o.cmd then o.cmd = x
    elseif not o.a.dataset then o.a.dataset = x
    else fail("unexpected argument " .. x) end
    i = i + 1
  end
  return o
end

-- LlamaFactory stages without an approach module whose rows the data helpers make
local DATA_ONLY = {kto = "prepare_kto"}

-- loads the datasets and the tokenizer/template; returns data, ctx, prepare(examples, args)
local function setup(o)
  local a = o.a
  if not a.dataset then fail("no dataset given") end
  if not o.model then fail("--model (the tokenizer to use) is required") end
  local ap = require("lfl.train.approach")
  if not ap.check_stage(a.stage) and not DATA_ONLY[a.stage] then
    fail(fmt("--stage must be one of %s or kto", table.concat(ap.stages(), ", ")))
  end
  if a.packing == nil then a.packing = a.stage == "pt" end
  local tok = lfl.tokenizer.load(o.model)
  local tpl = lfl.template.get(a.template or "empty")
  local data = lfl.data.load(a)
  local prepare
  if ap.check_stage(a.stage) then prepare = ap.load(a.stage).prepare
  else prepare = require("lfl.data.pairwise")[DATA_ONLY[a.stage]] end
  local function run(examples, args)
    return prepare(examples, {tokenizer = tok, template = tpl, args = args or a})
  end
  return data, tok, run
end

local function is_tty() return os.getenv("TERM") ~= nil and lfl.fs.isatty(1) end

-- token spans grouped by trained/not trained, each decoded with special tokens shown
local function render(tok, ids, labels, color)
  local out, group, trained = {}, {}, nil
  local function flush()
    if #group == 0 then return end
    local text = tok:decode(group, {skip_special_tokens = false})
    if trained then
      out[#out + 1] = color and ("\27[1;32m" .. text .. "\27[0m") or ("[[" .. text .. "]]")
    else
      out[#out + 1] = text
    end
    group = {}
  end
  for k = 1, #ids do
    local tr = labels[k] ~= nil and labels[k] ~= -100
    if tr ~= trained then flush(); trained = tr end
    group[#group + 1] = ids[k]
  end
  flush()
  return concat(out)
end

local function count_trained(labels)
  local n = 0
  for _, v in ipairs(labels) do if v ~= -100 then n = n + 1 end end
  return n
end

local function preview(o)
  local data, tok, prepare = setup(o)
  local color = o.color
  if color == nil then color = is_tty() end
  local examples = {}
  for i = 1, math.min(o.n, #data.train) do examples[i] = data.train[i] end
  local rows = prepare(examples)
  print(fmt("%s: %s; template %s, stage %s, cutoff_len %d; trained tokens %s", o.a.dataset,
    lfl.data.summary(data.stats), o.a.template or "empty", o.a.stage, o.a.cutoff_len,
    color and "\27[1;32mhighlighted\27[0m" or "in [[...]]"))
  for r, row in ipairs(rows) do
    local src = examples[r] and examples[r].src or "?"
    if o.a.packing and o.a.stage ~= "pt" then src = "packed row" end
    if row.chosen_input_ids then
      print(fmt("\n--- example %d (%s): chosen %d tokens (%d trained), rejected %d tokens (%d trained)", r, src,
        #row.chosen_input_ids, count_trained(row.chosen_labels), #row.rejected_input_ids,
        count_trained(row.rejected_labels)))
      print("[chosen]")
      print(render(tok, row.chosen_input_ids, row.chosen_labels, color))
      print("[rejected]")
      print(render(tok, row.rejected_input_ids, row.rejected_labels, color))
    else
      print(fmt("\n--- example %d (%s): %d tokens, %d trained%s", r, src, #row.input_ids, count_trained(row.labels),
        row.kto_tag ~= nil and (row.kto_tag and ", desirable" or ", undesirable") or ""))
      print(render(tok, row.input_ids, row.labels, color))
      if row.kl_input_ids then
        print("[KL pair]")
        print(render(tok, row.kl_input_ids, row.kl_labels, color))
      end
    end
  end
end

-- nearest-rank percentile of a sorted list
local function pct(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.min(#sorted, ceil(p / 100 * #sorted)))]
end

local function lengths_of(rows)
  local lens, trained = {}, {}
  for _, r in ipairs(rows) do
    if r.chosen_input_ids then
      lens[#lens + 1] = #r.chosen_input_ids; trained[#trained + 1] = count_trained(r.chosen_labels)
      lens[#lens + 1] = #r.rejected_input_ids; trained[#trained + 1] = count_trained(r.rejected_labels)
    else
      lens[#lens + 1] = #r.input_ids; trained[#trained + 1] = count_trained(r.labels)
    end
  end
  return lens, trained
end

local function line(name, list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local sum = 0
  for _, v in ipairs(s) do sum = sum + v end
  return fmt("%-24s mean %8.1f  p50 %6d  p90 %6d  p99 %6d  max %6d", name, #s > 0 and sum / #s or 0,
    pct(s, 50), pct(s, 90), pct(s, 99), s[#s] or 0)
end

local function stats(o)
  local a = o.a
  local t0 = lfl.sys.clock()
  local data, _, prepare = setup(o)
  local all = {}
  for _, e in ipairs(data.train) do all[#all + 1] = e end
  for _, e in ipairs(data.eval or {}) do all[#all + 1] = e end
  -- without the cutoff (and without packing) for the real lengths, then as training sees them
  local full_args = {}
  for k, v in pairs(a) do full_args[k] = v end
  full_args.cutoff_len, full_args.packing = 2 ^ 31 - 1, false
  local full, dropped = prepare(all, full_args)
  local rows, dropped2 = prepare(all)
  local full_len, _ = lengths_of(full)
  local cut_len, trained = lengths_of(rows)
  local truncated = 0
  if a.stage ~= "pt" or not a.packing then
    for _, n in ipairs(full_len) do if n > a.cutoff_len then truncated = truncated + 1 end end
  end
  local s = data.stats
  print(fmt("dataset %s (template %s, stage %s, cutoff_len %d%s)", a.dataset, a.template or "empty", a.stage,
    a.cutoff_len, a.packing and ", packing" or ""))
  print(fmt("records             %d", s.total))
  print(fmt("kept                %d", s.kept))
  local reasons = {}
  for r, n in pairs(s.skipped) do reasons[#reasons + 1] = {r, n} end
  table.sort(reasons, function(x, y) return x[1] < y[1] end)
  local nskip = 0
  for _, rn in ipairs(reasons) do nskip = nskip + rn[2] end
  print(fmt("skipped             %d", nskip))
  for _, rn in ipairs(reasons) do print(fmt("  %6d  %s", rn[2], rn[1])) end
  print(fmt("dropped (prepare)   %d", (dropped or 0)))
  if a.packing and a.stage == "sft" then
    print(fmt("dropped (too long for packing) %d", (dropped2 or 0) - (dropped or 0)))
  end
  print(fmt("rows                %d%s", #rows, (rows[1] and rows[1].chosen_input_ids) and " (chosen + rejected lengths below)" or ""))
  print(fmt("truncated           %d of %d (longer than cutoff_len %d)", truncated, #full_len, a.cutoff_len))
  print("token lengths:")
  print(line("  before cutoff", full_len))
  print(line("  as trained", cut_len))
  print(line("  trained tokens", trained))
  print(fmt("(%.2fs)", lfl.sys.clock() - t0))
end

local function run(argv)
  local o = parse(argv)
  if o.help or not o.cmd then print(usage); return end
  if o.cmd == "preview" then preview(o)
  elseif o.cmd == "stats" then stats(o)
  else fail("unknown subcommand " .. o.cmd .. " (preview or stats)") end
end

return {help = "preview or summarise a dataset as training will see it", usage = usage, run = run}
