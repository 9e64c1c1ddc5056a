-- SFT prediction as LlamaFactory's `do_predict` + `predict_with_generate`
-- (train/sft/workflow.py, CustomSeq2SeqTrainer.save_predictions, ComputeSimilarity):
-- the eval examples preprocessed "unsupervised" (prompt up to the assistant
-- opener; labels = the reference answer), a reply generated for each with the
-- recipe's generating arguments, BLEU-4 / ROUGE of the replies against the
-- references (lfl.metrics), generated_predictions.jsonl and predict_results.json
-- (+ all_results.json) in output_dir. For stage rm (LlamaFactory's run_rm
-- predict) the eval pairs are scored by the reward model instead: chosen and
-- rejected scores in generated_predictions.jsonl, predict_loss / accuracy.
-- Also the sliding-window perplexity of a text (transformers' perplexity
-- guide): M.perplexity(model, tok, text, opts).
--
--   local predict = require "lfl.infer.predict"
--   local r = predict.run(args)            -- args from lfl.args.resolve; loads the model
--   local r = predict.run(args, {model =, tokenizer =, template =})  -- after training
--   -- r.metrics["predict_bleu-4"], r.records[i].predict, r.path
--   -- stage rm: r.metrics.predict_accuracy, r.scores.chosen[i], r.scores.rejected[i]
--   local p = predict.perplexity(model, tok, text, {cutoff_len = 1024, stride = 512})
--   -- p.ppl, p.nll (mean per scored token), p.tokens, p.scored, p.windows
local lfl = lfl
local gen = require("lfl.infer.generate")
local metrics = require("lfl.infer.metrics")
local J = require("lfl.text.pyjson")
local fmt, floor, ceil, min, max = string.format, math.floor, math.ceil, math.min, math.max

local M = {}

M.METRIC_KEYS = {"bleu-4", "rouge-1", "rouge-2", "rouge-l"}

-- a comma list (LlamaFactory splits adapter_name_or_path on "," and strips
-- each part), so a path may hold spaces
local function names_of(v)
  if type(v) == "table" then return v end
  local t = {}
  for n in tostring(v):gmatch("[^,]+") do
    n = n:match("^%s*(.-)%s*$")
    if n ~= "" then t[#t + 1] = n end
  end
  return t
end

local read_file = lfl.read_file

-- Python's round(x, n): the decimal nearest to x's exact binary value, an
-- exact tie to the even last digit. LuaJIT's "%.nf" rounds right except on a
-- tie, which it takes away from zero; a tie is an x that is an odd multiple
-- of 2^-(n+1) (the only halves a double holds exactly).
local function round(x, n)
  if x ~= x or x == math.huge or x == -math.huge then return x end
  local t = x * 2 ^ (n + 1)
  if t == floor(t) and t % 2 == 1 and math.abs(t) < 2 ^ 40 then
    local q = floor(x * 10 ^ n) -- exact: x * 10^n ends in .5
    if q % 2 == 1 then q = q + 1 end
    if q == 0 and x < 0 then return -1 / math.huge end -- Python keeps the sign: -0.0
    return q / 10 ^ n
  end
  return tonumber(fmt("%." .. n .. "f", x))
end
M.round = round

-- ---------------------------------------------------------------- set-up

-- model (+ adapters), tokenizer and template from recipe arguments. As
-- LlamaFactory at inference every adapter of a comma list is applied; all but
-- the last are merged into the weights, the last stays a live LoRA.
function M.load(a)
  local model = lfl.model.load(a.model_name_or_path, {hub = lfl.args.hub_options(a),
                                                      rope_scaling = lfl.args.rope_option(a, false)})
  if a.adapter_name_or_path then
    local dirs = names_of(a.adapter_name_or_path)
    for i, dir in ipairs(dirs) do
      lfl.peft.load_adapter(model, dir)
      if i < #dirs then lfl.peft.merge(model) end
    end
  end
  local tok = require("lfl.train.trainer").load_tokenizer(model, a)
  local tpl = lfl.template.get(a.template or "empty")
  return {model = model, tokenizer = tok, template = tpl}
end

-- The canonical examples to predict on, and a description of where they came
-- from: eval_dataset; else the val_size split of dataset; else (no training)
-- dataset itself, as LlamaFactory's older split_dataset did for do_predict.
function M.eval_examples(a)
  local function load(over)
    local b = {}
    for k, v in pairs(a) do b[k] = v end
    for k, v in pairs(over) do b[k] = v end
    return lfl.data.load(b)
  end
  if a.eval_dataset then
    return load({dataset = a.eval_dataset, eval_dataset = false, val_size = 0}).train, "eval_dataset " .. table.concat(names_of(a.eval_dataset), ",")
  end
  if a.dataset and a.val_size and a.val_size > 0 then
    local d = load({})
    return d.eval or {}, fmt("val_size %s of %s", tostring(a.val_size), table.concat(names_of(a.dataset), ","))
  end
  if a.dataset and not a.do_train then
    return load({val_size = 0}).train, "dataset " .. table.concat(names_of(a.dataset), ",")
  end
  error("predict: do_predict needs eval_dataset (or val_size > 0, or dataset with do_train=false)", 0)
end

-- generate options from LlamaFactory's GeneratingArguments (to_dict: a positive
-- max_new_tokens wins over max_length, which counts the prompt too)
function M.generation_options(a)
  if (a.num_beams or 1) > 1 then
    error(fmt("predict: num_beams=%s: beam search is not supported (use num_beams=1)", tostring(a.num_beams)), 0)
  end
  local o = {do_sample = a.do_sample, temperature = a.temperature, top_p = a.top_p, top_k = a.top_k,
             repetition_penalty = a.repetition_penalty}
  if a.max_new_tokens and a.max_new_tokens > 0 then o.max_new_tokens = a.max_new_tokens
  else o.max_length = a.max_length or 1024 end
  return o
end

-- ids that end a prediction, as LlamaFactory's gen_kwargs eos_token_id: the
-- template's EOS, its stop words (fix_special_tokens makes them additional
-- special tokens) and the tokenizer's additional_special_tokens when the
-- model folder names them (a GGUF does not)
function M.stop_ids(tok, tpl, model)
  local s = {}
  local eos = require("lfl.data.preprocess").eos_id(tok, tpl)
  if eos then s[eos] = true end
  for _, id in ipairs(tpl:stop_token_ids(tok)) do s[id] = true end
  local cfg_text = model and model.path and read_file(model.path .. "/tokenizer_config.json")
  if cfg_text then
    local ok, cfg = pcall(lfl.json.decode, cfg_text)
    if ok and type(cfg) == "table" and type(cfg.additional_special_tokens) == "table" then
      for _, t in ipairs(cfg.additional_special_tokens) do
        local content = type(t) == "table" and t.content or t
        local id = type(content) == "string" and tok:token_to_id(content)
        if id then s[id] = true end
      end
    end
  end
  return s
end

-- ---------------------------------------------------------------- generation

-- rows ({input_ids, labels}) -> {{ids = generated ids (the stop token kept, as
-- transformers returns it), reason = "stop" | "length"}, ...}. Batches of
-- batch_size go through lfl.generate as one request list.
function M.generate(model, rows, gopts, stops, batch_size, on_batch)
  local out = {}
  batch_size = max(1, batch_size or 1)
  -- max_length bounds prompt + reply, so each row has its own budget
  if gopts.max_length then batch_size = 1 end
  for i = 1, #rows, batch_size do
    local prompts, budget = {}, nil
    for k = i, min(#rows, i + batch_size - 1) do prompts[#prompts + 1] = rows[k].input_ids end
    if gopts.max_length then budget = max(0, gopts.max_length - #prompts[1]) end
    local stopped = {}
    local g = {}
    for k, v in pairs(gopts) do g[k] = v end
    g.max_length = nil
    if budget then g.max_new_tokens = budget end
    g.on_token = function(id, b)
      if stops[id] then stopped[b] = true; return false end
      return true
    end
    local res = gen.generate(model, prompts, g)
    for b, r in ipairs(res) do
      out[#out + 1] = {ids = r[1], reason = stopped[b] and "stop" or "length"}
    end
    if on_batch then on_batch(#out, #rows) end
  end
  return out
end

-- ---------------------------------------------------------------- outputs

-- generated_predictions.jsonl lines as LlamaFactory writes them
-- (json.dumps(..., ensure_ascii=False): keys prompt, predict, label)
function M.jsonl_line(rec)
  return J.encode(J.odict("prompt", rec.prompt, "predict", rec.predict, "label", rec.label), {ensure_ascii = false})
end

local function boxed(t)
  local o = {}
  for k, v in pairs(t) do o[k] = type(v) == "number" and J.float(v) or v end
  return o
end

-- HF Trainer.save_metrics("predict", m): predict_results.json and the merged
-- all_results.json, json.dump(indent=4, sort_keys=True)
function M.save_metrics(dir, m)
  local W = require("lfl.model").write_atomic
  W(dir .. "/predict_results.json", J.encode(J.dict(boxed(m)), {indent = 4, sort_keys = true}))
  local all = {}
  local prev = read_file(dir .. "/all_results.json")
  if prev then
    local ok, v = pcall(J.decode, prev)
    if ok and type(v) == "table" then for _, k in ipairs(J.keys(v)) do all[k] = v[k] end end
  end
  for k, v in pairs(boxed(m)) do all[k] = v end
  W(dir .. "/all_results.json", J.encode(J.dict(all), {indent = 4, sort_keys = true}))
end

-- HF Trainer.log_metrics: "***** predict metrics *****" and aligned key = value
function M.format_metrics(split, m)
  local keys, kw, vals, vw = {}, 0, {}, 0
  for k in pairs(m) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = m[k]
    vals[k] = type(v) == "number" and v ~= floor(v) and J.float_repr(round(v, 4)) or tostring(v)
    kw, vw = max(kw, #k), max(vw, #vals[k])
  end
  local lines = {fmt("***** %s metrics *****", split)}
  for _, k in ipairs(keys) do lines[#lines + 1] = fmt("  %-" .. kw .. "s = %" .. vw .. "s", k, vals[k]) end
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------- the run

-- rows -> records {prompt, predict, label} (+ the texts the metrics use) and the
-- metrics. opts: model, tokenizer, template, args (a), log (print).
function M.predict_rows(rows, opts)
  local a, model, tok, tpl = opts.args, opts.model, opts.tokenizer, opts.template
  local skip = a.skip_special_tokens ~= false
  local gopts = M.generation_options(a)
  local stops = M.stop_ids(tok, require("lfl.data.preprocess").data_template(tpl, a), model)
  local bs = a.per_device_eval_batch_size or 1
  lfl.manual_seed(a.seed or 42) -- once, so sampled predictions are reproducible
  local tty = os.getenv("TERM") and lfl.fs.isatty(2)
  local t0 = lfl.sys.clock()
  local outs = M.generate(model, rows, gopts, stops, bs, function(done, total)
    if tty and not a.disable_tqdm then io.stderr:write(fmt("\r[lfl] predict %d/%d ", done, total)); io.stderr:flush() end
  end)
  if tty and not a.disable_tqdm then io.stderr:write("\n") end
  local runtime = lfl.sys.clock() - t0
  local records, preds, labels = {}, {}, {}
  for i, row in ipairs(rows) do
    local ids = outs[i].ids
    local rec = {prompt = tok:decode(row.input_ids, {skip_special_tokens = false}),
                 predict = tok:decode(ids, {skip_special_tokens = skip}),
                 label = tok:decode(row.labels, {skip_special_tokens = skip}),
                 finish_reason = outs[i].reason, predict_tokens = #ids}
    -- ComputeSimilarity always decodes with skip_special_tokens=True
    preds[i] = skip and rec.predict or tok:decode(ids, {skip_special_tokens = true})
    labels[i] = skip and rec.label or tok:decode(row.labels, {skip_special_tokens = true})
    records[i] = rec
  end
  local sim = metrics.similarity(preds, labels)
  local m = {}
  for _, k in ipairs(M.METRIC_KEYS) do m["predict_" .. k] = sim[k] end
  local steps = ceil(#rows / max(1, bs))
  m.predict_runtime = round(runtime, 4)
  m.predict_samples_per_second = round(#rows / max(runtime, 1e-9), 3)
  m.predict_steps_per_second = round(steps / max(runtime, 1e-9), 3)
  return records, m, {preds = preds, labels = labels}
end

-- Arguments that would make do_predict fail, checked before any model loads
-- (lfl train calls it before training, so a long run does not end in an error).
function M.check(a)
  if a.stage ~= "sft" and a.stage ~= "rm" then
    error(fmt("predict: do_predict is implemented for stage sft (generation) and rm (scores), not '%s'",
      tostring(a.stage)), 0)
  end
  if a.stage == "sft" then
    if not a.predict_with_generate then error("predict: do_predict for sft needs predict_with_generate=true", 0) end
    M.generation_options(a)
  end
  if not a.eval_dataset and not (a.dataset and ((a.val_size or 0) > 0 or not a.do_train)) then
    error("predict: do_predict needs eval_dataset (or val_size > 0, or dataset with do_train=false)", 0)
  end
end

-- The whole of do_predict: returns {metrics =, records =, path = jsonl path}.
-- `loaded` = {model, tokenizer, template} when the caller has them (after training).
function M.run(a, loaded)
  M.check(a)
  if a.stage == "rm" then return M.run_rm(a, loaded) end
  local log = print
  local t_load = lfl.sys.clock()
  loaded = loaded or M.load(a)
  local model, tok, tpl = loaded.model, loaded.tokenizer, loaded.template
  if a.default_system and tpl.default_system ~= a.default_system then tpl = tpl:with({default_system = a.default_system}) end
  local out = a.output_dir or "saves/lfl-run"
  lfl.fs.mkdir(out)
  local examples, source = M.eval_examples(a)
  local approach = require("lfl.train.approach").load("sft")
  local rows, dropped = approach.prepare_unsupervised(examples, {tokenizer = tok, template = tpl, args = a})
  if #rows == 0 then
    error(fmt("predict: no valid examples in %s (%d dropped: the prompt must be an odd number of messages)",
      source, dropped), 0)
  end
  log(fmt("[lfl] predicting %d examples from %s%s (%.1fs to load)", #rows, source,
    dropped > 0 and fmt(", %d dropped", dropped) or "", lfl.sys.clock() - t_load))
  local records, m = M.predict_rows(rows, {args = a, model = model, tokenizer = tok, template = tpl})
  local lines = {}
  for i, rec in ipairs(records) do lines[i] = M.jsonl_line(rec) end
  local path = out .. "/generated_predictions.jsonl"
  require("lfl.model").write_atomic(path, #lines > 0 and table.concat(lines, "\n") .. "\n" or "")
  M.save_metrics(out, m)
  log(M.format_metrics("predict", m))
  log(fmt("[lfl] saved prediction results to %s", path))
  return {metrics = m, records = records, path = path, rows = rows}
end

-- ---------------------------------------------------------------- reward model

-- one line of a reward model's generated_predictions.jsonl, as PairwiseTrainer.save_predictions
-- writes it: json.dumps({"chosen": round(float(c), 2), "rejected": round(float(r), 2)})
function M.rm_jsonl_line(chosen, rejected)
  return J.encode(J.odict("chosen", J.float(round(chosen, 2)), "rejected", J.float(round(rejected, 2))))
end

-- pairwise rows -> {chosen = {...}, rejected = {...}} scores and the predict
-- metrics of LlamaFactory's rm workflow (trainer.predict with ComputeAccuracy):
-- predict_loss (-logsigmoid(chosen - rejected), mean over pairs), predict_accuracy
-- (chosen > rejected), runtime and rates. Each batch of per_device_eval_batch_size
-- pairs is one packed forward, chosen rows first, as training scores them.
function M.score_pairs(rows, opts)
  local a, model, head = opts.args, opts.model, opts.value_head
  local pw = require("lfl.data.pairwise")
  local vh = require("lfl.train.value_head")
  local bs = max(1, a.per_device_eval_batch_size or 1)
  local chosen, rejected = {}, {}
  local loss, right = 0, 0
  local t0 = lfl.sys.clock()
  lfl.no_grad(function()
    for i = 1, #rows, bs do
      lfl.sys.check_interrupt()
      local list = {}
      for k = i, min(#rows, i + bs - 1) do list[#list + 1] = rows[k] end
      local b = pw.collate_pairwise_packed(list)
      local s = vh.scores(model, head, b):double()
      for k = 1, b.n do
        local c, r = s[k], s[b.n + k]
        chosen[#chosen + 1], rejected[#rejected + 1] = c, r
        local d = c - r
        -- -logsigmoid(d), stable for either sign
        loss = loss + (d >= 0 and math.log(1 + math.exp(-d)) or -d + math.log(1 + math.exp(d)))
        if c > r then right = right + 1 end
      end
    end
  end)
  local runtime = lfl.sys.clock() - t0
  local n = #rows
  local m = {predict_loss = loss / n, predict_accuracy = right / n, predict_runtime = round(runtime, 4),
    predict_samples_per_second = round(n / max(runtime, 1e-9), 3),
    predict_steps_per_second = round(ceil(n / bs) / max(runtime, 1e-9), 3)}
  return {chosen = chosen, rejected = rejected}, m
end

-- the value head of a reward model to predict with: the trained one, else the
-- one saved with the last adapter (or in a full model's folder)
local function rm_head(a, model, loaded)
  if loaded and loaded.value_head then return loaded.value_head end
  local vh = require("lfl.train.value_head")
  local dirs = a.adapter_name_or_path and names_of(a.adapter_name_or_path) or {}
  local where = #dirs > 0 and dirs[#dirs] or a.model_name_or_path
  local head = #dirs > 0 and vh.load(dirs[#dirs], model.arch.hidden)
  if not head and lfl.fs.isdir(a.model_name_or_path) then head = vh.load(a.model_name_or_path, model.arch.hidden) end
  if not head then
    error(fmt("predict: stage rm needs a trained value head: %s has no %s (train one with stage rm, "
      .. "or give its folder as adapter_name_or_path)", where, vh.FILE), 0)
  end
  return head
end

-- do_predict for stage rm (LlamaFactory's run_rm: trainer.predict, save_predictions):
-- the eval pairs scored by the reward model, generated_predictions.jsonl (one
-- {"chosen", "rejected"} line per pair, 2 decimals, lines joined by "\n" without
-- a final one, as LlamaFactory writes it), predict_results.json / all_results.json.
-- Returns {metrics, scores = {chosen, rejected} (unrounded), path, rows}.
function M.run_rm(a, loaded)
  local log = print
  local t_load = lfl.sys.clock()
  local model, tok, tpl
  if loaded then model, tok, tpl = loaded.model, loaded.tokenizer, loaded.template
  else
    local l = M.load(a)
    model, tok, tpl = l.model, l.tokenizer, l.template
  end
  local head = rm_head(a, model, loaded)
  if a.default_system and tpl.default_system ~= a.default_system then tpl = tpl:with({default_system = a.default_system}) end
  local out = a.output_dir or "saves/lfl-run"
  lfl.fs.mkdir(out)
  local examples, source = M.eval_examples(a)
  local approach = require("lfl.train.approach").load("rm")
  local rows, dropped = approach.prepare(examples, {tokenizer = tok, template = tpl, args = a})
  if #rows == 0 then
    error(fmt("predict: no valid pairs in %s (%d dropped: a pair needs an odd number of prompt messages and "
      .. "two responses)", source, dropped), 0)
  end
  log(fmt("[lfl] scoring %d pairs from %s%s (%.1fs to load)", #rows, source,
    dropped > 0 and fmt(", %d dropped", dropped) or "", lfl.sys.clock() - t_load))
  local scores, m = M.score_pairs(rows, {args = a, model = model, value_head = head})
  local lines = {}
  for i = 1, #rows do lines[i] = M.rm_jsonl_line(scores.chosen[i], scores.rejected[i]) end
  local path = out .. "/generated_predictions.jsonl"
  require("lfl.model").write_atomic(path, table.concat(lines, "\n"))
  M.save_metrics(out, m)
  log(M.format_metrics("predict", m))
  log(fmt("[lfl] saved prediction results to %s", path))
  return {metrics = m, scores = scores, path = path, rows = rows}
end

-- ---------------------------------------------------------------- perplexity

-- Sliding-window perplexity (transformers' "Perplexity of fixed-length models"):
-- windows of cutoff_len tokens starting every `stride` tokens; in each window
-- only the tokens not scored by the previous one count, with the rest as
-- context. Unlike the guide, which weighs every window's mean loss by its label
-- count minus one, the NLL here is the exact sum over scored tokens (the first
-- token of the text has no prediction, every other is scored once), so
-- ppl = exp(sum NLL / (tokens - 1)). opts: cutoff_len (1024), stride (512),
-- add_special_tokens (true, as tokenizer(text) adds BOS where the tokenizer
-- does), ids (pre-tokenized instead of text).
function M.perplexity(model, tok, text, opts)
  opts = opts or {}
  local L = opts.cutoff_len or 1024
  local stride = opts.stride or 512
  if L < 2 or L ~= floor(L) then error(fmt("perplexity: cutoff_len must be a whole number >= 2, got %s", tostring(L)), 0) end
  if stride < 1 or stride > L or stride ~= floor(stride) then
    error(fmt("perplexity: stride must be a whole number in [1, cutoff_len = %d], got %s", L, tostring(stride)), 0)
  end
  local ids = opts.ids or tok:encode(text, {add_special_tokens = opts.add_special_tokens ~= false})
  local n = #ids
  if n < 2 then error(fmt("perplexity: the text has %d token(s); at least 2 are needed", n), 0) end
  local total, scored, windows, prev_end, begin = 0, 0, 0, 0, 0
  lfl.no_grad(function()
    while true do
      lfl.sys.check_interrupt()
      local stop = min(begin + L, n)
      local len, trg = stop - begin, stop - prev_end
      local win, lab = {}, {}
      for k = 1, len do
        win[k] = ids[begin + k]
        lab[k] = k > len - trg and win[k] or -100
      end
      local count = min(trg, len - 1) -- labels left after the shift
      if count > 0 then
        local loss = model:loss(lfl.tensor({win}, "i64"), lfl.tensor({lab}, "i64")):item()
        total, scored = total + loss * count, scored + count
      end
      windows = windows + 1
      prev_end = stop
      if stop == n then break end
      begin = begin + stride
    end
  end)
  local nll = total / scored
  return {tokens = n, scored = scored, windows = windows, nll = nll, ppl = math.exp(nll)}
end

return M
