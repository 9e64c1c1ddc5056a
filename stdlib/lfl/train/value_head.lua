-- The reward model's value head, as TRL's AutoModelForCausalLMWithValueHead
-- that LlamaFactory trains for stage rm: v_head.summary = Linear(hidden, 1)
-- on the decoder's last hidden state (after the final norm), dropout 0.1 on
-- its input while training (TRL's summary_dropout_prob default), torch's
-- nn.Linear initialisation. A sequence's score is the value at its last
-- token. Saved as LlamaFactory writes it: value_head.safetensors holding
-- v_head.summary.weight [1, H] and v_head.summary.bias [1], next to the
-- adapter (or the full model).
local lfl = lfl
local decoder = require("lfl.model.decoder")
local fmt = string.format

local M = {}

M.FILE = "value_head.safetensors"
M.WEIGHT, M.BIAS = "v_head.summary.weight", "v_head.summary.bias"
M.DROPOUT = 0.1

local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end

local function wrap(w, b, from)
  return {weight = w, bias = b, names = {M.WEIGHT, M.BIAS}, params = {w, b}, from = from}
end

-- a new head for hidden size H: weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)) (nn.Linear's default)
function M.new(hidden)
  local bound = 1 / math.sqrt(hidden)
  local w = lfl.zeros(1, hidden):uniform_(-bound, bound):requires_grad()
  local b = lfl.zeros(1):uniform_(-bound, bound):requires_grad()
  return wrap(w, b)
end

-- the head saved in dir (value_head.safetensors), checked against hidden size H; nil when dir has none
function M.load(dir, hidden)
  local path = dir .. "/" .. M.FILE
  if not exists(path) then
    if exists(dir .. "/value_head.bin") then
      error(fmt("%s: value_head.bin (a torch pickle) is not read; save the head as %s", dir, M.FILE), 0)
    end
    return nil
  end
  local ts = lfl.safetensors.load(path)
  local w, b = ts[M.WEIGHT], ts[M.BIAS]
  if not w or not b then error(fmt("%s: expected the tensors %s and %s", path, M.WEIGHT, M.BIAS), 0) end
  local ws, bs = w:size(), b:size()
  if #ws ~= 2 or ws[1] ~= 1 or ws[2] ~= hidden or #bs ~= 1 or bs[1] ~= 1 then
    error(fmt("%s: %s is [%s] and %s [%s], expected [1, %d] and [1] for this model", path, M.WEIGHT,
      table.concat(ws, ", "), M.BIAS, table.concat(bs, ", "), hidden), 0)
  end
  -- private f32 copies: the optimizer updates them in place
  return wrap(w:float():clone():requires_grad(), b:float():clone():requires_grad(), path)
end

-- the head's trainable copy on device dev (the trainer's device: cuda)
function M.to(head, dev)
  local function mv(t) return t:device() == dev and t or t:detach():to(dev):requires_grad() end
  return wrap(mv(head.weight), mv(head.bias), head.from)
end

-- value_head.safetensors in dir (from wherever the head lives)
function M.save(head, dir)
  lfl.fs.mkdir(dir)
  local function host(t) t = t:detach() return t:device() == "cpu" and t or t:to("cpu") end
  lfl.safetensors.save(dir .. "/" .. M.FILE, {[M.WEIGHT] = host(head.weight), [M.BIAS] = host(head.bias)},
    {format = "pt"})
  return dir .. "/" .. M.FILE
end

-- the head for a run: from the last of adapter_name_or_path, else from
-- model_name_or_path (a reward model trained in full), else a new one
-- (LlamaFactory's load_valuehead_params order)
function M.for_run(model, a)
  local H = model.arch.hidden
  local dirs = a.adapter_name_or_path and require("lfl.data").names_of(a.adapter_name_or_path) or {}
  if #dirs > 0 then
    local h = M.load(dirs[#dirs], H)
    if h then return h end
  end
  if lfl.fs.isdir(a.model_name_or_path) then
    local h = M.load(a.model_name_or_path, H)
    if h then return h end
  end
  return M.new(H)
end

-- 0-based token index of each sequence's last token in a packed row, from the sequence lengths
function M.last_tokens(lengths)
  local L = lengths:double()
  local ends, pos = {}, 0
  for i = 1, L:numel() do pos = pos + L[i]; ends[i] = pos - 1 end
  return lfl.tensor(ends, "i64")
end

-- Scores [S] of the sequences of a packed batch (input_ids, position_ids,
-- segments, lengths): the head on each sequence's last hidden state. opts:
-- train (dropout on the head's input), gradient_checkpointing, checkpoint_policy.
function M.scores(model, head, batch, opts)
  opts = opts or {}
  local h = decoder.hidden(model, batch.input_ids, {position_ids = batch.position_ids, segments = batch.segments,
    gradient_checkpointing = opts.gradient_checkpointing, checkpoint_policy = opts.checkpoint_policy})
  local sz = h:size()
  local last = h:reshape(sz[2], sz[3]):index_select(1, decoder.on_device(M.last_tokens(batch.lengths), h:device()))
  if opts.train and lfl.is_grad_enabled() and M.DROPOUT > 0 then last = lfl.dropout(last, M.DROPOUT) end
  return lfl.linear(last, head.weight, head.bias):reshape(-1)
end

-- Scores (Lua numbers) of token-id sequences without gradients: what
-- LlamaFactory's reward model gives for each (the value at its last token).
-- Sequences are packed into one row per forward, up to opts.max_tokens tokens
-- (a longer sequence goes alone); all in one forward by default. An empty
-- sequence has no last token and is refused.
function M.score_ids(model, head, seqs, opts)
  opts = opts or {}
  local budget = opts.max_tokens or math.huge
  local collate = require("lfl.data.collate")
  local out = {}
  local function run(list, lens)
    local b = collate.pack_row(list)
    b.lengths = lfl.tensor(lens, "i64")
    local s = M.scores(model, head, b):double()
    if s:device() ~= "cpu" then s = s:to("cpu") end
    for k = 1, s:numel() do out[#out + 1] = s[k] end
  end
  lfl.no_grad(function()
    local list, lens, used = {}, {}, 0
    for k, ids in ipairs(seqs) do
      if #ids == 0 then error(fmt("value head: sequence %d has no tokens to score", k), 0) end
      if #list > 0 and used + #ids > budget then
        run(list, lens)
        list, lens, used = {}, {}, 0
      end
      list[#list + 1] = {input_ids = ids, labels = ids}
      lens[#lens + 1] = #ids
      used = used + #ids
    end
    if #list > 0 then run(list, lens) end
  end)
  return out
end

return M
