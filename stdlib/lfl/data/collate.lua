-- Shared pieces of the training approaches: packing a micro-batch of encoded
-- examples into one row (positions restart per example, segment ids keep
-- attention inside each example) and the shifted next-token labels.
local lfl = lfl
local M = {}

local IGNORE = -100

-- examples: list of {input_ids = {...}, labels = {...}} -> batch tensors [1, N]
-- with labels already shifted (the last token of each example predicts nothing)
function M.pack_row(examples)
  local ids, shifted, pos, seg = {}, {}, {}, {}
  local ntok = 0
  for s, ex in ipairs(examples) do
    local n = #ex.input_ids
    for k = 1, n do
      ids[#ids + 1] = ex.input_ids[k]
      local nxt = ex.labels[k + 1]
      shifted[#shifted + 1] = nxt == nil and IGNORE or nxt
      pos[#pos + 1] = k - 1
      seg[#seg + 1] = s
      if nxt ~= nil and nxt ~= IGNORE then ntok = ntok + 1 end
    end
  end
  local N = #ids
  return {
    input_ids = lfl.tensor({ids}, "i64"), labels = lfl.tensor({shifted}, "i64"),
    position_ids = lfl.tensor({pos}, "i64"), segments = #examples > 1 and lfl.tensor({seg}, "i64") or nil,
    ntokens = N, nlabels = ntok, nexamples = #examples,
  }
end

-- the decoder loss's token_weight for the run's SFT loss variant
-- (use_dft_loss, use_eaft_loss with eaft_alpha, use_asft_loss with asft_alpha
-- and the trainer's reference; lfl.args allows them for stage sft only), nil
-- for the plain cross-entropy
function M.token_weight(a, reference)
  if not a then return nil end
  if a.use_dft_loss then return {kind = "dft"} end
  if a.use_eaft_loss then return {kind = "eaft", alpha = a.eaft_alpha or 1.0} end
  if a.use_asft_loss then
    if not reference then error("use_asft_loss: this run has no reference model", 0) end
    return {kind = "asft", alpha = a.asft_alpha or 0.1, reference = reference}
  end
  return nil
end

-- The prompt of an on-policy approach (grpo, ppo): ids of the conversation up
-- to the assistant opener, as generation sees it; a long prompt keeps its last
-- cutoff tokens (TRL truncates max_prompt_length from the left), so it still
-- ends with the opener. nil for an example that is not u/a/.../u.
function M.rollout_prompt(ex, tok, tpl, cutoff)
  if #ex.prompt % 2 ~= 1 then return nil end
  local ids = require("lfl.infer.generate").prompt_ids(tok, tpl, ex.prompt, ex.system ~= "" and ex.system or nil,
    ex.tools ~= "" and ex.tools or nil)
  if #ids > cutoff then ids = {unpack(ids, #ids - cutoff + 1)} end
  return ids
end

-- rows of prompts (rollout_prompt's) as a batch: the approach generates from them
function M.prompt_rows(list)
  local n = 0
  for _, r in ipairs(list) do n = n + #r.prompt_ids end
  return {rows = list, ntokens = n, nlabels = #list, nexamples = #list}
end

-- mean next-token cross-entropy of a packed row (or the run's SFT variant of it)
function M.lm_loss(model, batch, state)
  local loss = model:loss(batch.input_ids, batch.labels, {shifted = true, position_ids = batch.position_ids,
    segments = batch.segments, gradient_checkpointing = state and state.gradient_checkpointing,
    checkpoint_policy = state and state.checkpoint_policy,
    token_weight = M.token_weight(state and state.args, state and state.reference)})
  return loss, {}
end

return M
