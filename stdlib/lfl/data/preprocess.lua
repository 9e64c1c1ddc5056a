-- Preprocessing per training approach, as LlamaFactory's data processors do:
-- supervised (label masking, train_on_prompt, mask_history, efficient_eos,
-- infer_seqlen truncation), packed supervised (greedy knapsack, per-sequence
-- positions and segment ids), pretrain (concatenate + chunk), pairwise, KTO
-- (with mismatched KL pairs) and unsupervised. Works on Lua arrays of token ids;
-- the template turns canonical examples into (source ids, target ids) pairs.
local floor, min, max = math.floor, math.min, math.max

local M = {}
M.IGNORE = -100

-- LlamaFactory's infer_seqlen(source_len, target_len, cutoff_len)
function M.infer_seqlen(src, tgt, cutoff)
  local max_tgt
  if 2 * tgt < cutoff then max_tgt = cutoff
  elseif 2 * src < cutoff then max_tgt = cutoff - src
  else max_tgt = floor(cutoff * tgt / (src + tgt)) end
  local new_tgt = min(max_tgt, tgt)
  local new_src = min(max(cutoff - new_tgt, 0), src)
  return new_src, new_tgt
end

local function head(ids, n)
  local out = {}
  for i = 1, n do out[i] = ids[i] end
  return out
end

local function append(dst, src) for i = 1, #src do dst[#dst + 1] = src[i] end end

local function fill(n, v)
  local out = {}
  for i = 1, n do out[i] = v end
  return out
end

-- pairs: {{src_ids, tgt_ids}, ...} for one conversation. opts: cutoff_len,
-- train_on_prompt, mask_history, efficient_eos, eos_id.
function M.supervised(pairs, opts)
  local cutoff = opts.cutoff_len
  local input_ids, labels = {}, {}
  local total = opts.efficient_eos and 1 or 0
  local order = {}
  if opts.mask_history then for i = #pairs, 1, -1 do order[#order + 1] = i end
  else for i = 1, #pairs do order[#order + 1] = i end end
  local segs = {}
  for k, i in ipairs(order) do
    if total >= cutoff then break end
    local src, tgt = pairs[i][1], pairs[i][2]
    local ls, lt = M.infer_seqlen(#src, #tgt, cutoff - total)
    src, tgt = head(src, ls), head(tgt, lt)
    total = total + ls + lt
    local src_label
    if opts.train_on_prompt then src_label = src
    elseif opts.efficient_eos and k ~= 1 then
      -- k counts turns in processing order (last turn first under mask_history), as LlamaFactory's turn_idx
      src_label = fill(ls, M.IGNORE)
      if ls > 0 then src_label[1] = opts.eos_id end
    else src_label = fill(ls, M.IGNORE) end
    local tgt_label
    if opts.mask_history and k ~= 1 then tgt_label = fill(lt, M.IGNORE) else tgt_label = tgt end
    segs[#segs + 1] = {src, src_label, tgt, tgt_label}
  end
  if opts.mask_history then
    -- processed last turn first; lay out in natural order
    for k = #segs, 1, -1 do
      local s = segs[k]
      append(input_ids, s[1]); append(input_ids, s[3]); append(labels, s[2]); append(labels, s[4])
    end
  else
    for _, s in ipairs(segs) do
      append(input_ids, s[1]); append(input_ids, s[3]); append(labels, s[2]); append(labels, s[4])
    end
  end
  if opts.efficient_eos then
    input_ids[#input_ids + 1] = opts.eos_id
    labels[#labels + 1] = opts.eos_id
  end
  return input_ids, labels
end

-- Greedy knapsack as LlamaFactory: sort lengths, repeatedly fill a bin with the
-- largest remaining that still fits (ties: the later example first, as its
-- length2indexes.pop() does). Returns bins as lists of example indices in the
-- order they are concatenated.
function M.knapsack(lengths, capacity)
  local idx = {}
  for i = 1, #lengths do idx[i] = i end
  table.sort(idx, function(a, b) if lengths[a] ~= lengths[b] then return lengths[a] < lengths[b] end return a < b end)
  local bins = {}
  local remaining = idx
  while #remaining > 0 do
    local bin, left, rest = {}, capacity, {}
    -- from the largest down, take what fits (equivalent to repeated binary search)
    local taken = {}
    for k = #remaining, 1, -1 do
      local i = remaining[k]
      if lengths[i] <= left then bin[#bin + 1] = i; left = left - lengths[i]; taken[k] = true end
    end
    for k = 1, #remaining do if not taken[k] then rest[#rest + 1] = remaining[k] end end
    bins[#bins + 1] = bin
    remaining = rest
  end
  return bins
end

-- Packs encoded examples ({input_ids, labels}) as LlamaFactory's
-- PackedSupervisedDatasetProcessor: examples longer than `capacity` are dropped,
-- the rest go into knapsacks of `capacity` tokens, and every row is padded to
-- capacity + 1 tokens (LlamaFactory lowers cutoff_len by one when packing, so
-- rows come out cutoff_len long). Per-example position ids restart at 0;
-- segment ids are 1, 2, ... (0 for padding), which is neat_packing's attention
-- mask. Returns rows and the number of dropped examples.
function M.pack(examples, capacity, pad_id)
  local lengths, keep = {}, {}
  for _, ex in ipairs(examples) do
    if #ex.input_ids <= capacity then keep[#keep + 1] = ex; lengths[#lengths + 1] = #ex.input_ids end
  end
  local rows = {}
  for _, bin in ipairs(M.knapsack(lengths, capacity)) do
    local ids, labels, pos, seg = {}, {}, {}, {}
    for s, i in ipairs(bin) do
      local ex = keep[i]
      for k = 1, #ex.input_ids do
        ids[#ids + 1] = ex.input_ids[k]; labels[#labels + 1] = ex.labels[k]
        pos[#pos + 1] = k - 1; seg[#seg + 1] = s
      end
    end
    for _ = #ids + 1, capacity + 1 do
      ids[#ids + 1] = pad_id; labels[#labels + 1] = M.IGNORE; pos[#pos + 1] = 0; seg[#seg + 1] = 0
    end
    rows[#rows + 1] = {input_ids = ids, labels = labels, position_ids = pos, segments = seg}
  end
  return rows, #examples - #keep
end

-- LlamaFactory runs its processors through datasets.map in batches of
-- preprocessing_batch_size (1000): packing, pretraining chunks and the KTO
-- KL rotation all happen inside one batch. fn(list) -> list (, count);
-- results are concatenated, counts summed.
function M.by_batches(list, size, fn)
  size = size or 1000
  if #list <= size then return fn(list) end
  local out, total = {}, 0
  for b = 1, #list, size do
    local part = {}
    for i = b, math.min(#list, b + size - 1) do part[#part + 1] = list[i] end
    local r, n = fn(part)
    append(out, r)
    total = total + (n or 0)
  end
  return out, total
end

-- Pretraining: texts (already tokenized, each followed by EOS) concatenated and
-- cut into blocks of `block` tokens; the remainder is dropped; a BOS-adding
-- tokenizer gets BOS as the first token of every block.
function M.pretrain_chunks(token_lists, block, bos_id)
  local all = {}
  for _, ids in ipairs(token_lists) do append(all, ids) end
  local blocks = {}
  local n = floor(#all / block)
  for b = 0, n - 1 do
    local blk = {}
    for k = 1, block do blk[k] = all[b * block + k] end
    if bos_id then blk[1] = bos_id end
    blocks[#blocks + 1] = {input_ids = blk, labels = blk}
  end
  return blocks
end

-- The template as LlamaFactory's get_template_and_fix_tokenizer leaves it for
-- these arguments (enable_thinking / preserve_thinking only reach reasoning
-- templates; default_system and tool_format any template).
function M.data_template(tpl, a)
  local changes, any = {}, false
  if tpl:is_reasoning() then
    if a.enable_thinking ~= nil and (a.enable_thinking and true or false) ~= tpl.enable_thinking then
      changes.enable_thinking = a.enable_thinking and true or false; any = true
    end
    if a.preserve_thinking ~= nil and (a.preserve_thinking and true or false) ~= tpl.preserve_thinking then
      changes.preserve_thinking = a.preserve_thinking and true or false; any = true
    end
  end
  if a.default_system and a.default_system ~= tpl.default_system then changes.default_system = a.default_system; any = true end
  if a.tool_format then changes.tool_format = a.tool_format; any = true end
  if any then return tpl:with(changes) end
  return tpl
end

-- The EOS id the template makes the tokenizer use (fix_special_tokens: a
-- replace_eos template's first stop word).
function M.eos_id(tok, tpl)
  if tpl.replace_eos then
    local id = tok:token_to_id(tpl:eos_token())
    if id == nil then error("preprocess: the tokenizer has no token " .. tpl:eos_token() .. " (the template's EOS)", 0) end
    return id
  end
  return tok.eos_id
end

-- Pairwise: prompt ids shared; chosen/rejected get the same target budget.
function M.pairwise(prompt, chosen, rejected, opts)
  if opts.efficient_eos then
    chosen = {unpack(chosen)}; chosen[#chosen + 1] = opts.eos_id
    rejected = {unpack(rejected)}; rejected[#rejected + 1] = opts.eos_id
  end
  local ls, lt = M.infer_seqlen(#prompt, max(#chosen, #rejected), opts.cutoff_len)
  local p = head(prompt, ls)
  local c, r = head(chosen, lt), head(rejected, lt)
  local function row(t)
    local ids, labels = {}, fill(#p, M.IGNORE)
    append(ids, p); append(ids, t); append(labels, t)
    return {input_ids = ids, labels = labels}
  end
  return row(c), row(r)
end

-- KTO (FeedbackDatasetProcessor): encoded = {{prompt=ids, response=ids,
-- kl_prompt=ids, kl_response=ids, kto_tag=bool}, ...} where the kl_* pair is the
-- prompt with the previous example's answer (the caller builds it, because the
-- template encodes prompt and answer together); both truncated independently.
function M.kto(encoded, opts)
  local out = {}
  local function build(prompt, resp)
    if opts.efficient_eos then resp = {unpack(resp)}; resp[#resp + 1] = opts.eos_id end
    local ls, lt = M.infer_seqlen(#prompt, #resp, opts.cutoff_len)
    local ids, labels = head(prompt, ls), fill(ls, M.IGNORE)
    local r = head(resp, lt)
    append(ids, r); append(labels, r)
    return ids, labels
  end
  for i, ex in ipairs(encoded) do
    local ids, labels = build(ex.prompt, ex.response)
    local kids, klabels = build(ex.kl_prompt, ex.kl_response)
    out[i] = {input_ids = ids, labels = labels, kl_input_ids = kids, kl_labels = klabels, kto_tag = ex.kto_tag}
  end
  return out
end

-- Unsupervised (prediction): the prompt with the assistant opener; labels are
-- the reference answer, both truncated by infer_seqlen.
function M.unsupervised(prompt, answer, opts)
  local ls, lt = M.infer_seqlen(#prompt, #answer, opts.cutoff_len)
  return {input_ids = head(prompt, ls), labels = head(answer, lt)}
end

return M
