-- `lfl eval`: MMLU-style multiple-choice evaluation from local files (as
-- llamafactory-cli eval, also from its recipe: `lfl eval recipe.yaml [key=value]`
-- with task, task_dir, n_shot, lang, save_dir, batch_size, seed), or BLEU-4/ROUGE
-- of a predictions file.
local fmt = string.format

local M = {help = "evaluate: MMLU-style multiple choice from local files, or BLEU-4/ROUGE of predictions"}

M.usage = [[
usage: lfl eval --model PATH --task NAME_SPLIT [options]
       lfl eval --predictions generated_predictions.jsonl
       lfl eval RECIPE.yaml [key=value ...]   (LlamaFactory's eval recipe: model_name_or_path,
                        adapter_name_or_path, template, task, task_dir, n_shot, lang, save_dir,
                        batch_size (prompts are scored one at a time: the same results), seed)
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder)
  --template NAME       chat template (default fewshot, as LlamaFactory recommends)
  --task NAME_SPLIT     e.g. mmlu_test: <task_dir>/mmlu/mapping.json + <subject>_test.jsonl
  --task_dir DIR        (evaluation)      --n_shot N (5)      --seed N (42)
  --lang en|zh          (en)              --save_dir DIR  results.json + results.log
  --predictions FILE    {"predict", "label"} JSON lines -> bleu-4, rouge-1, rouge-2, rouge-l]]

local cmd = require("lfl.cmd")
local SPEC = {name = "lfl eval", usage = M.usage,
  whole = {"n_shot", "seed"},
  strings = {"model", "adapter", "device", "template", "task", "task_dir", "lang", "save_dir", "predictions"},
  recipe = cmd.recipe_keys(cmd.INFER_RECIPE, {seed = "seed"}),
  recipe_own = {task = "string", task_dir = "string", n_shot = "whole", lang = "string", save_dir = "string",
                batch_size = "whole", infer_backend = "string"},
  recipe_ignored = {"finetuning_type"}}

function M.parse(args)
  return cmd.parse_command(SPEC, args)
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  local ev = require("lfl.infer.evaluate")
  if o.predictions then
    local s, n = ev.similarity_file(o.predictions)
    for _, k in ipairs({"bleu-4", "rouge-1", "rouge-2", "rouge-l"}) do print(fmt("%s: %.4f", k, s[k])) end
    print(fmt("(%d samples)", n))
    return 0
  end
  if not o.model or not o.task then error("lfl eval: --model and --task are required\n" .. M.usage, 0) end
  local model = require("lfl.cmd.chat").load(o)
  local tok = lfl.chat.tokenizer(model)
  -- "fewshot" (LlamaFactory's recommended template) is built in when no recipe file defines it
  local tpl = (o.template and o.template ~= "fewshot") and lfl.template.get(o.template) or ev.fewshot_template()
  ev.run{model = model, tokenizer = tok, template = tpl, task = o.task, task_dir = o.task_dir, n_shot = o.n_shot,
         seed = o.seed, lang = o.lang, save_dir = o.save_dir}
  return 0
end

return M
