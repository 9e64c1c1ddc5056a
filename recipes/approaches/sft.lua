-- Supervised fine-tuning: template-encoded (prompt, response) turns, prompt
-- labels masked, LlamaFactory's truncation; micro-batches packed into one row.
local lfl = lfl
local common = require("lfl.data.collate")
local preprocess = require("lfl.data.preprocess")

-- use_asft_loss: ASFT's KL term needs a reference model
local M = {name = "sft", kind = "supervised", metrics = nil,
           needs = {reference_model = function(a) return a.use_asft_loss == true end, reward_model = false,
                    value_head = false, generation = false}}

-- one canonical example -> input_ids, labels (nil when it is not a single-answer example)
function M.encode(ex, tok, tpl, a, eos_id, cutoff)
  if #ex.response ~= 1 then return nil end
  local messages = {}
  for _, m in ipairs(ex.prompt) do messages[#messages + 1] = m end
  messages[#messages + 1] = ex.response[1]
  local pairs = tpl:encode_ids(tok, messages, ex.system ~= "" and ex.system or nil,
    ex.tools ~= "" and ex.tools or nil, {eos_id = eos_id,
    discarding_history_cot = a.mask_history and not tpl.preserve_thinking,
    images = ex.images, videos = ex.videos, audios = ex.audios})
  return preprocess.supervised(pairs, {cutoff_len = cutoff, train_on_prompt = a.train_on_prompt,
    mask_history = a.mask_history, efficient_eos = tpl.efficient_eos, eos_id = eos_id})
end

-- examples (canonical) -> {input_ids, labels} lists; ctx = {tokenizer, template, args}.
-- Returns the list and how many examples were dropped.
function M.prepare(examples, ctx)
  local tok, a = ctx.tokenizer, ctx.args
  local tpl = preprocess.data_template(ctx.template, a)
  if a.train_on_prompt and tpl.efficient_eos then
    error("sft: template " .. tpl.name .. " (efficient_eos) does not support train_on_prompt", 0)
  end
  local eos_id = preprocess.eos_id(tok, tpl)
  -- LlamaFactory lowers cutoff_len by one when packing (rows are padded back to cutoff_len)
  local cutoff = a.packing and a.cutoff_len - 1 or a.cutoff_len
  local out, dropped = {}, 0
  for _, ex in ipairs(examples) do
    local ids, labels = M.encode(ex, tok, tpl, a, eos_id, cutoff)
    if ids then out[#out + 1] = {input_ids = ids, labels = labels} else dropped = dropped + 1 end
  end
  if a.packing then
    local pad = tok.pad_id or eos_id or 0
    local rows, too_long = preprocess.by_batches(out, a.preprocessing_batch_size, function(part)
      return preprocess.pack(part, cutoff, pad)
    end)
    return rows, dropped + (too_long or 0)
  end
  return out, dropped
end

-- Prediction (LlamaFactory's UnsupervisedDatasetProcessor): the prompt up to
-- the assistant opener as input, the reference answer as labels (EOS appended
-- for efficient_eos templates), both cut by infer_seqlen. Examples whose prompt
-- is not an odd number of messages are dropped; an example without exactly one
-- response gets an empty assistant turn (labels = the template's empty reply).
function M.encode_unsupervised(ex, tok, tpl, a, eos_id)
  if #ex.prompt % 2 ~= 1 then return nil end
  local messages = {}
  for _, m in ipairs(ex.prompt) do messages[#messages + 1] = m end
  messages[#messages + 1] = #ex.response == 1 and ex.response[1] or {role = "assistant", content = ""}
  local prompt, answer = tpl:encode_oneturn(messages, ex.system ~= "" and ex.system or nil,
    ex.tools ~= "" and ex.tools or nil, {images = ex.images, videos = ex.videos, audios = ex.audios})
  local ids = lfl.template.pieces_to_ids(tok, prompt, {eos_id = eos_id})
  local labels = lfl.template.pieces_to_ids(tok, answer, {eos_id = eos_id})
  if tpl.efficient_eos then labels[#labels + 1] = eos_id end
  local row = preprocess.unsupervised(ids, labels, {cutoff_len = a.cutoff_len})
  return row.input_ids, row.labels
end

-- examples (canonical) -> {input_ids, labels} rows for generation, and how many were dropped
function M.prepare_unsupervised(examples, ctx)
  local tok, a = ctx.tokenizer, ctx.args
  local tpl = preprocess.data_template(ctx.template, a)
  local eos_id = preprocess.eos_id(tok, tpl)
  local out, dropped = {}, 0
  for _, ex in ipairs(examples) do
    local ids, labels = M.encode_unsupervised(ex, tok, tpl, a, eos_id)
    if ids then out[#out + 1] = {input_ids = ids, labels = labels} else dropped = dropped + 1 end
  end
  return out, dropped
end

-- the same batches from a Dataset, in C: pre-packed rows (packing = true)
-- stacked, else the micro-batch packed into one row
function M.c_collate(ds) return ds:fields().segments and "stack_packed" or "pack" end

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
