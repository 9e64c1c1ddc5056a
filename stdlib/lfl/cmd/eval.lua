-- `lfl eval`: MMLU-style multiple-choice evaluation from local files (as
-- llamafactory-cli eval), or BLEU-4/ROUGE of a predictions file.
local fmt = string.format

local M = {help = "evaluate: MMLU-style multiple choice from local files, or BLEU-4/ROUGE of predictions"}

M.usage = [[
usage: lfl eval --model PATH --task NAME_SPLIT [options]
       lfl eval --predictions generated_predictions.jsonl
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder)
  --template NAME       chat template (default fewshot, as LlamaFactory recommends)
  --task NAME_SPLIT     e.g. mmlu_test: <task_dir>/mmlu/mapping.json + <subject>_test.jsonl
  --task_dir DIR        (evaluation)      --n_shot N (5)      --seed N (42)
  --lang en|zh          (en)              --save_dir DIR  results.json + results.log
  --predictions FILE    {"predict", "label"} JSON lines -> bleu-4, rouge-1, rouge-2, rouge-l]]

local NUM = {n_shot = true, seed = true}
local STR = {model = true, adapter = true, template = true, task = true, task_dir = true, lang = true,
             save_dir = true, predictions = true}

function M.parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local k, inline = a:match("^%-%-([%w_%-]+)=(.*)$")
    k = k or a:match("^%-%-([%w_%-]+)$")
    if not k then error(fmt("lfl eval: unexpected argument '%s'\n%s", a, M.usage), 0) end
    k = k:gsub("%-", "_")
    if k == "help" then o.help = true
    elseif NUM[k] or STR[k] then
      local v = inline
      if v == nil then i = i + 1; v = args[i] end
      if v == nil then error(fmt("lfl eval: --%s needs a value", k), 0) end
      if NUM[k] then
        local n = tonumber(v)
        if not n or n ~= math.floor(n) or n < 0 then error(fmt("lfl eval: --%s expects a whole number, got '%s'", k, v), 0) end
        v = n
      end
      o[k] = v
    else
      error(fmt("lfl eval: unknown option --%s\n%s", k, M.usage), 0)
    end
    i = i + 1
  end
  return o
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  local ev = require("lfl.evaluate")
  if o.predictions then
    local s, n = ev.similarity_file(o.predictions)
    for _, k in ipairs({"bleu-4", "rouge-1", "rouge-2", "rouge-l"}) do print(fmt("%s: %.4f", k, s[k])) end
    print(fmt("(%d samples)", n))
    return 0
  end
  if not o.model or not o.task then error("lfl eval: --model and --task are required\n" .. M.usage, 0) end
  local model = require("lfl.cmd.chat").load(o)
  local tok = lfl.chat.tokenizer(model)
  local tpl = o.template and lfl.template.get(o.template) or ev.fewshot_template()
  ev.run{model = model, tokenizer = tok, template = tpl, task = o.task, task_dir = o.task_dir, n_shot = o.n_shot,
         seed = o.seed, lang = o.lang, save_dir = o.save_dir}
  return 0
end

return M
