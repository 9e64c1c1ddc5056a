-- Supervised fine-tuning: template-encoded (prompt, response) turns, prompt
-- labels masked, LlamaFactory's truncation; micro-batches packed into one row.
local lfl = lfl
local common = require("recipes.approaches.common")
local preprocess = require("lfl.preprocess")

local M = {name = "sft"}

-- examples (canonical) -> {input_ids, labels} lists; ctx = {tokenizer, template, args}
function M.prepare(examples, ctx)
  local tok, tpl, a = ctx.tokenizer, ctx.template, ctx.args
  local out, dropped = {}, 0
  local eos_id = tpl.replace_eos and tok:token_to_id(tpl:eos_token()) or tok.eos_id
  for _, ex in ipairs(examples) do
    if #ex.response ~= 1 then
      dropped = dropped + 1
    else
      local messages = {}
      for _, m in ipairs(ex.prompt) do messages[#messages + 1] = m end
      messages[#messages + 1] = ex.response[1]
      local pairs = tpl:encode_ids(tok, messages, ex.system ~= "" and ex.system or nil,
        ex.tools ~= "" and ex.tools or nil, {enable_thinking = a.enable_thinking})
      local ids, labels = preprocess.supervised(pairs, {cutoff_len = a.cutoff_len, train_on_prompt = a.train_on_prompt,
        mask_history = a.mask_history, efficient_eos = tpl.efficient_eos, eos_id = eos_id})
      out[#out + 1] = {input_ids = ids, labels = labels}
    end
  end
  if a.packing then
    local rows = preprocess.pack(out, a.cutoff_len, tok.pad_id or eos_id or 0)
    -- a packed row is one example made of several sequences
    local packed = {}
    for i, r in ipairs(rows) do packed[i] = r end
    return packed, dropped
  end
  return out, dropped
end

function M.collate(list)
  if list[1].segments then
    -- pre-packed rows (packing = true): stack them as separate rows of equal length
    local ids, lab, pos, seg = {}, {}, {}, {}
    for i, r in ipairs(list) do
      local sl = {}
      for k = 1, #r.labels do
        local same = r.segments[k + 1] == r.segments[k] and r.segments[k] ~= 0
        sl[k] = same and r.labels[k + 1] or -100
      end
      ids[i], lab[i], pos[i], seg[i] = r.input_ids, sl, r.position_ids, r.segments
    end
    local n = 0
    for _, l in ipairs(lab) do for _, v in ipairs(l) do if v ~= -100 then n = n + 1 end end end
    return {input_ids = lfl.tensor(ids, "i64"), labels = lfl.tensor(lab, "i64"), position_ids = lfl.tensor(pos, "i64"),
            segments = lfl.tensor(seg, "i64"), ntokens = #list * #list[1].input_ids, nlabels = n, nexamples = #list}
  end
  return common.pack_row(list)
end

M.loss = common.lm_loss

return M
