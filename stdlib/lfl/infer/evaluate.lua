-- Evaluation as LlamaFactory's eval/evaluator.py: MMLU-style multiple choice
-- from local files, n-shot prompts, the answer read from the logits of the
-- four letter tokens at the last prompt position; accuracy per category.
-- Task folder layout: <task_dir>/<name>/mapping.json ({subject: {name, category}})
-- and <subject>_<split>.jsonl files with {question, A, B, C, D, answer} rows
-- (the "train" split gives the exemplars). Exemplars are drawn with Lua's
-- generator seeded by opts.seed, not HF datasets' shuffle, so the exact shots
-- differ from LlamaFactory's run with the same seed.
local lfl = lfl
local gen = require("lfl.infer.generate")
local fmt = string.format

local M = {}

M.CHOICES = {"A", "B", "C", "D"}
M.SUBJECTS = {"Average", "STEM", "Social Sciences", "Humanities", "Other"}
local LANG = {
  en = {system = "The following are multiple choice questions (with answers) about %s.\n\n",
        choice = "\n%s. %s", answer = "\nAnswer:"},
  zh = {system = "以下是中国关于%s考试的单项选择题，请选出其中的正确答案。\n\n", choice = "\n%s. %s", answer = "\n答案："},
}

local function read_jsonl(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local rows, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, v = pcall(lfl.json.decode, line)
      if not ok or type(v) ~= "table" then f:close(); error(fmt("%s:%d: not a JSON object", path, n), 0) end
      for _, k in ipairs({"question", "A", "B", "C", "D", "answer"}) do
        if type(v[k]) ~= "string" then f:close(); error(fmt("%s:%d: field '%s' must be a string", path, n, k), 0) end
      end
      if not v.answer:match("^[ABCD]$") then f:close(); error(fmt("%s:%d: answer must be A, B, C or D, got '%s'", path, n, v.answer), 0) end
      rows[#rows + 1] = v
    end
  end
  f:close()
  return rows
end

function M.parse_example(ex, lang)
  local L = LANG[lang]
  local parts = {ex.question}
  for _, ch in ipairs(M.CHOICES) do if ex[ch] then parts[#parts + 1] = fmt(L.choice, ch, ex[ch]) end end
  parts[#parts + 1] = L.answer
  return table.concat(parts), ex.answer
end

function M.format_example(target, support, subject_name, lang)
  local msgs = {}
  for _, ex in ipairs(support) do
    local p, r = M.parse_example(ex, lang)
    msgs[#msgs + 1] = {role = "user", content = p}
    msgs[#msgs + 1] = {role = "assistant", content = r}
  end
  local p = M.parse_example(target, lang)
  msgs[#msgs + 1] = {role = "user", content = p}
  msgs[1].content = fmt(LANG[lang].system, subject_name) .. msgs[1].content
  return msgs
end

-- LlamaFactory's "fewshot" template: assistant "{{content}}\n\n", efficient EOS
function M.fewshot_template()
  local ok, t = pcall(lfl.template.get, "fewshot")
  if ok then return t end
  return lfl.template.new{name = "fewshot", format_assistant = {"{{content}}\n\n"}, efficient_eos = true}
end

-- opts: model, tokenizer, template, task_dir, task ("mmlu_demo_test" = folder
-- mmlu_demo, split test), n_shot (5), seed (42), lang ("en"), save_dir, log (print)
function M.run(opts)
  local lang = opts.lang or "en"
  if not LANG[lang] then error(fmt("eval: lang must be en or zh, got '%s'", tostring(lang)), 0) end
  local name, split = tostring(opts.task):match("^(.+)_([%w]+)$")
  if not name then error(fmt("eval: task '%s' should be <name>_<split>, e.g. mmlu_test", tostring(opts.task)), 0) end
  local dir = (opts.task_dir or "evaluation") .. "/" .. name
  local mf = io.open(dir .. "/mapping.json", "rb")
  if not mf then error(fmt("eval: %s/mapping.json not found", dir), 0) end
  local mapping = lfl.json.decode(mf:read("*a"), dir .. "/mapping.json")
  mf:close()
  local tok, tpl, model = opts.tokenizer, opts.template, opts.model
  local n_shot = opts.n_shot or 5
  local log = opts.log or print
  math.randomseed(opts.seed or 42)
  local choice_ids = {}
  for i, ch in ipairs(M.CHOICES) do
    local ids = tok:encode(ch, {add_special_tokens = false})
    choice_ids[i] = ids[#ids]
  end
  local subjects = {}
  for s in pairs(mapping) do subjects[#subjects + 1] = s end
  table.sort(subjects)
  local corrects = {}
  for _, c in ipairs(M.SUBJECTS) do corrects[c] = {n = 0, ok = 0} end
  local results = {}
  for _, subject in ipairs(subjects) do
    local info = mapping[subject]
    local test = read_jsonl(fmt("%s/%s_%s.jsonl", dir, subject, split))
    if not test then error(fmt("eval: %s/%s_%s.jsonl not found", dir, subject, split), 0) end
    local train = read_jsonl(fmt("%s/%s_train.jsonl", dir, subject)) or {}
    local preds = {}
    local sub_ok = 0
    for i, ex in ipairs(test) do
      -- a fresh random draw of exemplars for every question (as dataset.shuffle())
      local idx = {}
      for k = 1, #train do idx[k] = k end
      for k = #idx, 2, -1 do local j = math.random(k); idx[k], idx[j] = idx[j], idx[k] end
      local support = {}
      for k = 1, math.min(n_shot, #train) do support[k] = train[idx[k]] end
      local msgs = M.format_example(ex, support, info.name or subject, lang)
      local ids = gen.prompt_ids(tok, tpl, msgs)
      local row = lfl.no_grad(function()
        return model:forward(lfl.tensor({ids}, "i64"), {last_only = true})[1][1]
      end)
      local best, bv = 1, -math.huge
      for c = 1, 4 do
        local v = row[choice_ids[c] + 1]
        if v > bv then best, bv = c, v end
      end
      local pred = M.CHOICES[best]
      preds[tostring(i - 1)] = pred
      local ok = pred == ex.answer
      if ok then sub_ok = sub_ok + 1 end
      for _, cat in ipairs({info.category, "Average"}) do
        local c = corrects[cat] or {n = 0, ok = 0}
        corrects[cat] = c
        c.n = c.n + 1
        if ok then c.ok = c.ok + 1 end
      end
    end
    results[subject] = preds
    log(fmt("%s: %d/%d", subject, sub_ok, #test))
  end
  local lines = {}
  local cats = {}
  for _, c in ipairs(M.SUBJECTS) do cats[#cats + 1] = c end
  for c in pairs(corrects) do
    local known = false
    for _, k in ipairs(M.SUBJECTS) do if k == c then known = true end end
    if not known then cats[#cats + 1] = c end
  end
  local acc = {}
  for _, c in ipairs(cats) do
    local v = corrects[c]
    if v and v.n > 0 then
      acc[c] = 100 * v.ok / v.n
      lines[#lines + 1] = fmt("%15s: %.2f", c, acc[c])
    end
  end
  local report = table.concat(lines, "\n")
  log(report)
  if opts.save_dir then
    lfl.fs.mkdir(opts.save_dir)
    local W = require("lfl.model").write_atomic
    W(opts.save_dir .. "/results.json", lfl.json.encode(results, {indent = true}))
    W(opts.save_dir .. "/results.log", report .. "\n")
  end
  return acc, results
end

-- BLEU-4 / ROUGE over a generated_predictions.jsonl ({"predict", "label"} rows),
-- as LlamaFactory's scripts/eval_bleu_rouge.py
function M.similarity_file(path)
  local f = io.open(path, "rb")
  if not f then error("eval: cannot open " .. path, 0) end
  local preds, labels, n = {}, {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, v = pcall(lfl.json.decode, line)
      if not ok or type(v) ~= "table" or type(v.predict) ~= "string" or type(v.label) ~= "string" then
        f:close()
        error(fmt("%s:%d: expected {\"predict\": string, \"label\": string}", path, n), 0)
      end
      preds[#preds + 1], labels[#labels + 1] = v.predict, v.label
    end
  end
  f:close()
  return require("lfl.infer.metrics").similarity(preds, labels), #preds
end

return M
