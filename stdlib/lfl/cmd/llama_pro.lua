-- `lfl llama_pro --model_name_or_path M --output_dir D --num_expand N`:
-- LlamaFactory's scripts/llama_pro.py (block expansion for LLaMA Pro) as a
-- command: writes the expanded model as an HF folder to fine-tune with
-- finetuning_type freeze, freeze_trainable_layers N and use_llama_pro: true.
local fmt = string.format

local M = {help = "LLaMA Pro block expansion (LlamaFactory's scripts/llama_pro.py): write the expanded model"}

M.usage = [[
usage: lfl llama_pro --model_name_or_path PATH|HUB_ID --output_dir DIR --num_expand N [--shard_size BYTES]
  --model_name_or_path  HF model folder, .gguf file or Hub repo id (L decoder layers)
  --output_dir          where the expanded HF folder is written
  --num_expand N        blocks to insert, one after every L/N-th layer (L must be divisible by N)
  --shard_size BYTES    largest safetensors shard (5e9)
The inserted blocks copy the layer before them with o_proj and down_proj zeroed,
so the expanded model computes what the original does until it is trained.]]

local SPEC = {name = "lfl llama_pro", usage = M.usage, whole = {"num_expand", "shard_size"},
  strings = {"model_name_or_path", "output_dir"}, rules = {num_expand = {type = "int", min = 1}}}

function M.run(args)
  local o = require("lfl.cmd").parse_options(SPEC, args)
  if o.help then print(M.usage) return 0 end
  for _, k in ipairs({"model_name_or_path", "output_dir", "num_expand"}) do
    if o[k] == nil then error(fmt("lfl llama_pro: --%s is required\n%s", k, M.usage), 0) end
  end
  local t0 = lfl.sys.clock()
  local model = lfl.model.load(o.model_name_or_path)
  local out, inserted = require("lfl.train.llama_pro").expand(model, o.num_expand)
  out:save(o.output_dir, {shard_size = o.shard_size})
  print(fmt("[lfl] %d layers -> %d: blocks inserted at layers %s; saved to %s in %.1fs", model.arch.layers,
    out.arch.layers, table.concat(inserted, ","), o.output_dir, lfl.sys.clock() - t0))
  print("- Fine-tune this model with:")
  print("model_name_or_path: " .. o.output_dir)
  print("finetuning_type: freeze")
  print("freeze_trainable_layers: " .. o.num_expand)
  print("use_llama_pro: true")
  return 0
end

return M
