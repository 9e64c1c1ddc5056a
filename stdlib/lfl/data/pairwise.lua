-- Data side of the preference approaches, as LlamaFactory's processors and
-- collators: pairwise (rm, dpo, orpo, simpo: PairwiseDatasetProcessor; a batch
-- of n examples becomes 2n rows, chosen first, rejected second) and KTO
-- (FeedbackDatasetProcessor: each example plus a mismatched KL pair, the prompt
-- with the previous example's answer in the same preprocessing batch). Only
-- preprocessing and collation; the approaches that use them bring the losses.
local lfl = lfl
local preprocess = require("lfl.data.preprocess")
local T = require("lfl.text.template")

local M = {}
local IGNORE = preprocess.IGNORE

-- encode_oneturn at the token level: prompt ids, answer ids
local function oneturn(tok, tpl, ex, answer, eos_id)
  local messages = {}
  for _, m in ipairs(ex.prompt) do messages[#messages + 1] = m end
  messages[#messages + 1] = answer
  local prompt, resp = tpl:encode_oneturn(messages, ex.system ~= "" and ex.system or nil,
    ex.tools ~= "" and ex.tools or nil, {images = ex.images, videos = ex.videos, audios = ex.audios})
  return T.pieces_to_ids(tok, prompt, {eos_id = eos_id}), T.pieces_to_ids(tok, resp, {eos_id = eos_id})
end

-- canonical ranking examples (response = {chosen, rejected}) -> {chosen_input_ids,
-- chosen_labels, rejected_input_ids, rejected_labels} rows; ctx = {tokenizer,
-- template, args}. Returns rows and how many examples were dropped.
function M.prepare_pairwise(examples, ctx)
  local tok, a = ctx.tokenizer, ctx.args
  local tpl = preprocess.data_template(ctx.template, a)
  local eos_id = preprocess.eos_id(tok, tpl)
  local out, dropped = {}, 0
  for _, ex in ipairs(examples) do
    if #ex.prompt % 2 ~= 1 or #ex.response < 2 then
      dropped = dropped + 1
    else
      local p, c = oneturn(tok, tpl, ex, ex.response[1], eos_id)
      local _, r = oneturn(tok, tpl, ex, ex.response[2], eos_id)
      local ch, rj = preprocess.pairwise(p, c, r, {cutoff_len = a.cutoff_len, efficient_eos = tpl.efficient_eos,
        eos_id = eos_id})
      out[#out + 1] = {chosen_input_ids = ch.input_ids, chosen_labels = ch.labels,
                       rejected_input_ids = rj.input_ids, rejected_labels = rj.labels}
    end
  end
  return out, dropped
end

-- the answer of a KTO example: response = {answer, ""} (desirable) or {"", answer}
local function kto_answer(ex)
  if ex.response[1].content ~= "" then return ex.response[1], true end
  return ex.response[2], false
end

-- canonical KTO examples -> {input_ids, labels, kl_input_ids, kl_labels, kto_tag} rows
function M.prepare_kto(examples, ctx)
  local tok, a = ctx.tokenizer, ctx.args
  local tpl = preprocess.data_template(ctx.template, a)
  local eos_id = preprocess.eos_id(tok, tpl)
  local dropped = 0
  local valid = {}
  for _, ex in ipairs(examples) do
    if #ex.prompt % 2 ~= 1 or #ex.response < 2 then dropped = dropped + 1 else valid[#valid + 1] = ex end
  end
  local rows = preprocess.by_batches(valid, a.preprocessing_batch_size, function(part)
    local enc = {}
    local n = #part
    for i, ex in ipairs(part) do
      local answer, tag = kto_answer(ex)
      local kl_answer = kto_answer(part[(i - 2) % n + 1]) -- responses rotated by one: the previous example's
      local p, r = oneturn(tok, tpl, ex, answer, eos_id)
      local kp, kr = oneturn(tok, tpl, ex, kl_answer, eos_id)
      enc[i] = {prompt = p, response = r, kl_prompt = kp, kl_response = kr, kto_tag = tag}
    end
    return preprocess.kto(enc, {cutoff_len = a.cutoff_len, efficient_eos = tpl.efficient_eos, eos_id = eos_id})
  end)
  return rows, dropped
end

-- right-pads lists of ids/labels into [n, L] (L rounded up to pad_to_multiple_of)
-- with next-token labels already shifted (-100 where nothing is predicted)
local function pad_rows(id_lists, label_lists, pad_id, multiple)
  local L = 0
  for _, ids in ipairs(id_lists) do if #ids > L then L = #ids end end
  if multiple and multiple > 1 then L = math.ceil(L / multiple) * multiple end
  local ids_out, lab_out, mask_out, nlabels = {}, {}, {}, 0
  for r, ids in ipairs(id_lists) do
    local labels = label_lists[r]
    local row, lab, mask = {}, {}, {}
    for k = 1, L do
      row[k] = ids[k] or pad_id
      mask[k] = ids[k] and 1 or 0
      local nxt = labels[k + 1]
      lab[k] = nxt == nil and IGNORE or nxt
      if lab[k] ~= IGNORE then nlabels = nlabels + 1 end
    end
    ids_out[r], lab_out[r], mask_out[r] = row, lab, mask
  end
  return ids_out, lab_out, mask_out, nlabels, L
end

-- rows from prepare_pairwise -> {input_ids, labels (shifted), attention_mask}
-- of shape [2n, L]: rows 1..n chosen, n+1..2n rejected (split with n).
function M.collate_pairwise(list, opts)
  opts = opts or {}
  local ids, labels = {}, {}
  for i, ex in ipairs(list) do ids[i], labels[i] = ex.chosen_input_ids, ex.chosen_labels end
  for i, ex in ipairs(list) do ids[#list + i], labels[#list + i] = ex.rejected_input_ids, ex.rejected_labels end
  local I, Lb, Mk, n, L = pad_rows(ids, labels, opts.pad_id or 0, opts.pad_to_multiple_of)
  return {input_ids = lfl.tensor(I, "i64"), labels = lfl.tensor(Lb, "i64"), attention_mask = lfl.tensor(Mk, "i64"),
          n = #list, ntokens = 2 * #list * L, nlabels = n, nexamples = #list}
end

-- rows from prepare_pairwise -> one packed row [1, N]: the n chosen sequences,
-- then the n rejected ones (segments 1..n chosen, n+1..2n rejected; positions
-- restart per sequence, so attention never crosses sequences), labels shifted,
-- and lengths [2n] (each sequence's token count). What the preference
-- approaches train on: one forward for both halves, no padding.
function M.collate_pairwise_packed(list)
  local seqs, lens = {}, {}
  for i, ex in ipairs(list) do seqs[i] = {input_ids = ex.chosen_input_ids, labels = ex.chosen_labels} end
  for i, ex in ipairs(list) do seqs[#list + i] = {input_ids = ex.rejected_input_ids, labels = ex.rejected_labels} end
  for i, s in ipairs(seqs) do lens[i] = #s.input_ids end
  local b = require("lfl.data.collate").pack_row(seqs)
  b.lengths = lfl.tensor(lens, "i64")
  b.n, b.nexamples = #list, #list
  return b
end

-- rows from prepare_kto -> one packed row [1, N]: the n target sequences
-- (segments 1..n), then their n mismatched KL sequences (n+1..2n), as
-- collate_pairwise_packed lays out chosen / rejected; kto_tags a Lua list of
-- booleans. What the kto approach trains on: one forward for both.
function M.collate_kto_packed(list)
  local seqs, tags = {}, {}
  for i, ex in ipairs(list) do
    seqs[i] = {input_ids = ex.input_ids, labels = ex.labels}
    seqs[#list + i] = {input_ids = ex.kl_input_ids, labels = ex.kl_labels}
    tags[i] = ex.kto_tag and true or false
  end
  local b = require("lfl.data.collate").pack_row(seqs)
  b.n, b.nexamples, b.kto_tags = #list, #list, tags
  return b
end

-- rows from prepare_kto -> the target batch and the KL batch padded separately, plus kto_tags
function M.collate_kto(list, opts)
  opts = opts or {}
  local ids, labels, kids, klabels, tags = {}, {}, {}, {}, {}
  for i, ex in ipairs(list) do
    ids[i], labels[i], kids[i], klabels[i] = ex.input_ids, ex.labels, ex.kl_input_ids, ex.kl_labels
    tags[i] = ex.kto_tag and 1 or 0
  end
  local I, Lb, Mk, n, L = pad_rows(ids, labels, opts.pad_id or 0, opts.pad_to_multiple_of)
  local KI, KL, KM = pad_rows(kids, klabels, opts.pad_id or 0, opts.pad_to_multiple_of)
  return {input_ids = lfl.tensor(I, "i64"), labels = lfl.tensor(Lb, "i64"), attention_mask = lfl.tensor(Mk, "i64"),
          kl_input_ids = lfl.tensor(KI, "i64"), kl_labels = lfl.tensor(KL, "i64"), kl_attention_mask = lfl.tensor(KM, "i64"),
          kto_tags = lfl.tensor(tags, "i64"), ntokens = #list * L, nlabels = n, nexamples = #list}
end

return M
