-- Pretraining: texts + EOS concatenated and cut into cutoff_len blocks (with
-- packing, the default), or each text truncated on its own.
local lfl = lfl
local common = require("lfl.data.collate")
local preprocess = require("lfl.data.preprocess")

local M = {name = "pt", kind = "pretrain", metrics = nil,
           needs = {reference_model = false, reward_model = false, value_head = false, generation = false}}

-- as LlamaFactory's PretrainDatasetProcessor: text + the EOS token's text
-- ("<|end_of_text|>" with the llama3 template, else the tokenizer's EOS after
-- the template's fix_special_tokens) tokenized without special tokens; with
-- packing, concatenated per preprocessing batch and cut into cutoff_len - 1
-- blocks (LlamaFactory lowers cutoff_len by one when packing), else truncated.
function M.prepare(examples, ctx)
  local tok, a, tpl = ctx.tokenizer, ctx.args, ctx.template
  local eos_text
  if a.template == "llama3" or (tpl and tpl.name == "llama3") then eos_text = "<|end_of_text|>"
  else
    local id = tpl and preprocess.eos_id(tok, tpl) or tok.eos_id
    eos_text = id and tok:id_to_token(id) or ""
  end
  local bos = tok.add_bos and tok.bos_id or nil
  local function encode(part)
    local lists = {}
    for _, ex in ipairs(part) do
      lists[#lists + 1] = tok:encode(ex.prompt[1].content .. eos_text, {add_special_tokens = false})
    end
    return lists
  end
  if a.packing then
    return preprocess.by_batches(examples, a.preprocessing_batch_size, function(part)
      return preprocess.pretrain_chunks(encode(part), a.cutoff_len - 1, bos), 0
    end), 0
  end
  local out = {}
  for _, ids in ipairs(encode(examples)) do
    local t = {}
    if bos then t[1] = bos end
    for i = 1, math.min(#ids, a.cutoff_len - #t) do t[#t + 1] = ids[i] end
    out[#out + 1] = {input_ids = t, labels = t}
  end
  return out, 0
end

M.collate = common.pack_row
M.c_collate = function() return "pack" end -- the same, in C, from a Dataset
M.loss = common.lm_loss

return M
