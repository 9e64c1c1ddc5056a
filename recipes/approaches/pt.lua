-- Pretraining: texts + EOS concatenated and cut into cutoff_len blocks (with
-- packing, the default), or each text truncated on its own.
local lfl = lfl
local common = require("recipes.approaches.common")
local preprocess = require("lfl.preprocess")

local M = {name = "pt"}

function M.prepare(examples, ctx)
  local tok, a = ctx.tokenizer, ctx.args
  local eos = tok.eos_id
  local lists = {}
  for _, ex in ipairs(examples) do
    local ids = tok:encode(ex.prompt[1].content, {add_special_tokens = false})
    if eos then ids[#ids + 1] = eos end
    lists[#lists + 1] = ids
  end
  if a.packing then
    return preprocess.pretrain_chunks(lists, a.cutoff_len, tok.add_bos and tok.bos_id or nil), 0
  end
  local out = {}
  for _, ids in ipairs(lists) do
    local t = {}
    if tok.add_bos and tok.bos_id then t[1] = tok.bos_id end
    for i = 1, math.min(#ids, a.cutoff_len - #t) do t[#t + 1] = ids[i] end
    out[#out + 1] = {input_ids = t, labels = t}
  end
  return out, 0
end

M.collate = common.pack_row
M.loss = common.lm_loss

return M
