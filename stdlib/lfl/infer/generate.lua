-- Text generation with a KV cache: one prefill over the prompt, then one
-- token per step attending over the cached keys/values (decoder opts.cache).
-- Batches (generate_batch): prompts of different lengths are left-padded into
-- one [B, T] prefill and decoded together, one forward of the active rows per
-- step; the padding keys are masked per row (attention's kv_start) and each
-- row's positions start after its padding, so a row's tokens do not depend on
-- the other rows. A finished row leaves the batch (and its cache rows).
-- Continuous batching (batcher, for lfl serve): rows join a running batch
-- between steps, their prompts prefilled apart (long ones a chunk per step)
-- and their caches joined to the running one; generate_batch runs on it.
-- Sampling (lfl.sample, C): greedy, temperature, top_k, top_p, min_p,
-- repetition_penalty, in transformers' order; stops on EOS, the template's stop
-- words, stop strings or max_new_tokens. Streaming goes through a callback with
-- text deltas that never end inside a UTF-8 character.
local lfl = lfl
local decoder = require("lfl.model.decoder")

local M = {}

-- LlamaFactory's generating_args defaults (do_sample true)
M.DEFAULTS = {temperature = 0.95, top_p = 0.7, top_k = 50, max_new_tokens = 1024, repetition_penalty = 1.0,
              min_p = 0, do_sample = true}

-- opts with LlamaFactory's defaults filled in where absent
function M.with_defaults(opts)
  local o = {}
  for k, v in pairs(M.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

-- prompt ids for a conversation, ending with the assistant opener
function M.prompt_ids(tok, tpl, messages, system, tools)
  local msgs = {}
  for _, m in ipairs(messages) do msgs[#msgs + 1] = m end
  msgs[#msgs + 1] = {role = "assistant", content = ""}
  local prs = tpl:encode_ids(tok, msgs, system, tools)
  local ids = {}
  for i, p in ipairs(prs) do
    for _, id in ipairs(p[1]) do ids[#ids + 1] = id end
    if i < #prs then for _, id in ipairs(p[2]) do ids[#ids + 1] = id end end
  end
  return ids
end

-- set of ids that end a reply: the tokenizer's EOS and the template's stop words
function M.stop_ids(tok, tpl)
  local s = {}
  if tok and tok.eos_id then s[tok.eos_id] = true end
  for _, w in ipairs(tpl and tpl.stop_words or {}) do
    local id = tok:token_to_id(w)
    if id then s[id] = true end
  end
  return s
end

local function sampling(opts)
  local greedy = opts.do_sample == false or (opts.temperature or 0) <= 0
  return {temperature = greedy and 0 or opts.temperature, top_k = opts.top_k, top_p = opts.top_p,
          min_p = opts.min_p, repetition_penalty = opts.repetition_penalty}
end

-- logits of the last position as a [V] f32 row
local function step(model, ids, cache)
  local logits = decoder.forward(model, lfl.tensor({ids}, "i64"), {cache = cache, last_only = true})
  return logits[1][1]
end

-- One sequence's state.
local function new_state(ids)
  local st = {cache = decoder.new_cache(), prev = {}, out = {}, done = false}
  for i, id in ipairs(ids) do st.prev[i] = id end
  return st
end

-- generate(model, ids, opts) -> new ids, finish_reason ("stop" | "length" | "cancelled")
-- generate(model, {ids1, ids2, ...}, opts) -> {{ids, finish_reason}, ...} (as generate_batch)
-- opts: max_new_tokens, temperature (0 or do_sample = false: greedy), top_k,
-- top_p, min_p, repetition_penalty, seed, stop_ids (a set {[id] = true}),
-- adapter (true/false: LoRA enabled or not for this call, unmerged adapters),
-- on_token(id, index) (return false to stop that sequence: "cancelled").
-- Missing sampling options mean greedy here; M.with_defaults gives LlamaFactory's.
function M.generate(model, ids, opts)
  opts = opts or {}
  if type(ids[1]) == "table" then return M.generate_batch(model, ids, opts) end
  if #ids == 0 then error("generate: prompt 1 is empty", 2) end
  local sp = sampling(opts)
  local maxn = opts.max_new_tokens or 64
  local stops = opts.stop_ids or {}
  if opts.seed then lfl.manual_seed(opts.seed) end
  local restore
  if opts.adapter ~= nil and model.lora then
    restore = model.lora.enabled
    require("lfl.train.peft").set_enabled(model, opts.adapter)
  end
  local st = new_state(ids)
  -- grad mode switched by hand rather than through lfl.no_grad (a C call), so
  -- a streaming caller may yield from on_token inside a coroutine
  local grad = lfl.set_grad_enabled(false)
  local ok, err = pcall(function()
    if maxn <= 0 then st.done, st.reason = true, "length" end
    st.row = not st.done and step(model, ids, st.cache) or nil
    while not st.done do
      lfl.sys.check_interrupt() -- Ctrl-C, also when this loop runs JIT-compiled
      local nxt = lfl.sample(st.row, sp, st.prev)
      if stops[nxt] then
        st.done, st.reason = true, "stop"
      else
        st.out[#st.out + 1] = nxt
        st.prev[#st.prev + 1] = nxt
        if opts.on_token and opts.on_token(nxt, 1) == false then
          st.done, st.reason = true, "cancelled"
        elseif #st.out >= maxn then
          st.done, st.reason = true, "length"
        else
          st.row = step(model, {nxt}, st.cache)
        end
      end
    end
  end)
  lfl.set_grad_enabled(grad)
  if restore ~= nil then model.lora.enabled = restore end
  if not ok then error(err, 0) end
  return st.out, st.reason
end

-- generate_batch(model, {ids1, ids2, ...}, opts) -> {{ids, finish_reason}, ...}
-- All prompts in one batch: a left-padded prefill, then one forward per step
-- over the rows still running. opts as generate (shared by all rows) plus
-- opts.rows[b], a table of per-row overrides of max_new_tokens, temperature,
-- do_sample, top_k, top_p, min_p, repetition_penalty, seed, stop_ids, adapter
-- and on_token. on_token(id, b) gets the row's index b. A row with a seed samples
-- from its own random stream (seed, as generate with that seed), so its tokens
-- do not depend on the other rows; rows without one share the global stream.
-- Rows asking for different `adapter` settings run as separate batches (the
-- unmerged LoRA switch is per model, not per row). opts.timings, a table, gets
-- prefill_s/prefill_tokens (the prefill forward and the first tokens; real
-- prompt tokens, not padding) and decode_s/decode_tokens (the later tokens),
-- and prefill_cpu_s/decode_cpu_s: the process's CPU seconds (os.clock, all
-- threads) over the same spans, steadier than wall time on a busy machine.
function M.generate_batch(model, prompts, opts)
  opts = opts or {}
  local rows_o = opts.rows or {}
  local ro = {}
  for b, s in ipairs(prompts) do
    if type(s) ~= "table" or #s == 0 then error(string.format("generate: prompt %d is empty", b), 2) end
    local o = {}
    for k, v in pairs(opts) do if k ~= "rows" then o[k] = v end end
    for k, v in pairs(rows_o[b] or {}) do o[k] = v end
    ro[b] = o
  end
  -- rows wanting different adapter switches: one batch per setting
  if model.lora then
    local groups, order = {}, {}
    for b, o in ipairs(ro) do
      local key = o.adapter == nil and "keep" or tostring(o.adapter)
      if not groups[key] then groups[key] = {}; order[#order + 1] = key end
      table.insert(groups[key], b)
    end
    if #order > 1 then
      local res = {}
      for _, key in ipairs(order) do
        local idx, sub, subrows = groups[key], {}, {}
        for i, b in ipairs(idx) do sub[i], subrows[i] = prompts[b], rows_o[b] or {} end
        local g = {}
        for k, v in pairs(opts) do g[k] = v end
        g.rows = subrows
        -- callbacks see the caller's row index
        for i, b in ipairs(idx) do
          local cb = ro[b].on_token
          if cb then
            local r = {}
            for k, v in pairs(subrows[i]) do r[k] = v end
            r.on_token = function(id) return cb(id, b) end
            subrows[i] = r
          end
        end
        for i, r in ipairs(M.generate_batch(model, sub, g)) do res[idx[i]] = r end
      end
      return res
    end
  end
  local restore
  local adapter = ro[1] and ro[1].adapter
  if adapter ~= nil and model.lora then
    restore = model.lora.enabled
    require("lfl.train.peft").set_enabled(model, adapter)
  end
  -- every prompt in one left-padded prefill, then one forward per step
  local bt = M.batcher(model, {prefill_chunk = math.huge, timings = opts.timings})
  local states = {}
  local ok, err = pcall(function()
    for b, s in ipairs(prompts) do
      local o = ro[b]
      local cb = o.on_token
      states[b] = bt:add(s, {max_new_tokens = o.max_new_tokens or 64, temperature = o.temperature,
        do_sample = o.do_sample, top_k = o.top_k, top_p = o.top_p, min_p = o.min_p,
        repetition_penalty = o.repetition_penalty, seed = o.seed, stop_ids = o.stop_ids,
        on_token = cb and function(id) return cb(id, b) end})
    end
    while bt:size() > 0 do bt:step() end
  end)
  if restore ~= nil then model.lora.enabled = restore end
  if not ok then error(err, 0) end
  local res = {}
  for b, st in ipairs(states) do res[b] = {st.out, st.reason} end
  return res
end

-- ---------------------------------------------------------------- continuous batching

-- A decode batch that rows join and leave between steps (continuous batching,
-- for lfl serve): bt = M.batcher(model, opts); row = bt:add(ids, ropts);
-- bt:step() -> rows finished by this step; bt:cancel(row); bt:size().
-- ropts: max_new_tokens (64), temperature / do_sample / top_k / top_p / min_p /
-- repetition_penalty (missing means greedy), seed (the row's own random
-- stream), stop_ids, on_token(id) (false cancels the row). A finished row has
-- out (ids), reason ("stop" | "length" | "cancelled") and done = true.
-- Each step prefills at most opts.prefill_chunk (512) prompt tokens, then
-- samples one token for every running row and runs one forward over those
-- still going: prompts that fit the chunk are prefilled together (left-padded),
-- a longer one a chunk per step in a cache of its own, taking turns with the
-- short ones, so a long prompt neither stalls the running rows for its whole
-- prefill nor holds up the short prompts queued behind it. A prefilled row's
-- cache joins the running one (decoder.cache_join) with its first token's
-- logits; a finished or cancelled row leaves it (decoder.cache_keep). Rows do
-- not see each other: a row's tokens are those it would get alone (greedy, or
-- sampled with a seed). The model's unmerged-adapter switch is whatever it is.
-- opts.timings as generate_batch's.
local Batcher = {}
Batcher.__index = Batcher

function M.batcher(model, opts)
  opts = opts or {}
  local chunk = opts.prefill_chunk or 512
  if type(chunk) ~= "number" or chunk < 1 then error("batcher: prefill_chunk must be >= 1", 2) end
  local tm = opts.timings
  if tm then
    tm.prefill_tokens, tm.prefill_s, tm.decode_tokens, tm.decode_s = 0, 0, 0, 0
    tm.prefill_cpu_s, tm.decode_cpu_s = 0, 0
  end
  return setmetatable({model = model, chunk = chunk, tm = tm, waiting = {}, running = {}, cache = nil,
                       ended = {}, turn = false}, Batcher)
end

function Batcher:add(ids, o)
  o = o or {}
  if type(ids) ~= "table" or #ids == 0 then error("batcher: the prompt is empty", 2) end
  local st = {ids = ids, prev = {}, out = {}, done = false, sp = sampling(o), maxn = o.max_new_tokens or 64,
              stops = o.stop_ids or {}, on_token = o.on_token, filled = 0}
  for i, id in ipairs(ids) do st.prev[i] = id end
  if o.seed then st.rng = {o.seed, 0} end
  if st.maxn <= 0 then
    st.done, st.reason = true, "length"
    self.ended[#self.ended + 1] = st
  else
    self.waiting[#self.waiting + 1] = st
  end
  return st
end

-- the row ends as "cancelled" at the next step (before any more compute)
function Batcher:cancel(st)
  if not st.done then st.cancelled = true end
end

-- rows waiting for their prefill or decoding, plus finished rows not yet returned
function Batcher:size() return #self.waiting + #self.running + #self.ended end

local function draw(st, row)
  if not st.rng then return lfl.sample(row, st.sp, st.prev) end
  local gs, go = lfl.rng_state()
  lfl.rng_state(st.rng[1], st.rng[2])
  local id = lfl.sample(row, st.sp, st.prev)
  st.rng[1], st.rng[2] = lfl.rng_state()
  lfl.rng_state(gs, go)
  return id
end

-- drops cancelled rows: waiting ones at once, running ones from the cache
function Batcher:drop_cancelled()
  local w = {}
  for _, st in ipairs(self.waiting) do
    if st.cancelled then
      st.done, st.reason, st.pcache = true, "cancelled", nil
      self.ended[#self.ended + 1] = st
    else
      w[#w + 1] = st
    end
  end
  self.waiting = w
  local keep, run = {}, {}
  for i, st in ipairs(self.running) do
    if st.cancelled then
      st.done, st.reason = true, "cancelled"
      self.ended[#self.ended + 1] = st
    else
      keep[#keep + 1], run[#run + 1] = i, st
    end
  end
  if #run < #self.running then self:keep_rows(keep, run) end
end

function Batcher:keep_rows(keep, run)
  if #run == 0 then self.cache = nil else decoder.cache_keep(self.cache, keep) end
  self.running = run
end

local function join(self, rows, cache, logits)
  for i, st in ipairs(rows) do
    st.row, st.first = logits[i][1], true
    self.running[#self.running + 1] = st
  end
  self.cache = decoder.cache_join(self.cache, cache)
end

-- one prefill unit: short prompts together, or a chunk of a long one
function Batcher:prefill()
  if #self.waiting == 0 then return end
  local model, chunk = self.model, self.chunk
  -- short: waiting rows whose whole prompt fits, as many as fit padded
  local short, T = {}, 0
  for _, st in ipairs(self.waiting) do
    if st.filled == 0 then
      local t = math.max(T, #st.ids)
      if t * (#short + 1) <= chunk then short[#short + 1], T = st, t end
    end
  end
  local long
  for _, st in ipairs(self.waiting) do
    if st.filled > 0 or #st.ids > chunk then long = st; break end
  end
  -- turns between the two when both wait
  local use_long = long and (#short == 0 or self.turn)
  self.turn = not self.turn
  local t0, c0 = lfl.sys.clock(), os.clock()
  local done = {}
  if use_long then
    local st = long
    st.pcache = st.pcache or decoder.new_cache()
    local n = math.min(chunk, #st.ids - st.filled)
    local piece = {}
    for j = 1, n do piece[j] = st.ids[st.filled + j] end
    local logits = decoder.forward(model, lfl.tensor({piece}, "i64"), {cache = st.pcache, last_only = true})
    st.filled = st.filled + n
    if self.tm then self.tm.prefill_tokens = self.tm.prefill_tokens + n end
    if st.filled == #st.ids then
      done[st] = true
      join(self, {st}, st.pcache, logits)
      st.pcache = nil
    end
  else
    local ids, pad = {}, {}
    for i, st in ipairs(short) do
      local p, r = st.ids, {}
      pad[i] = T - #p
      for j = 1, pad[i] do r[j] = 0 end
      for j = 1, #p do r[pad[i] + j] = p[j] end
      ids[i] = r
      st.filled = #p
      done[st] = true
      if self.tm then self.tm.prefill_tokens = self.tm.prefill_tokens + #p end
    end
    local cache = decoder.new_cache(pad)
    local logits = decoder.forward(model, lfl.tensor(ids, "i64"), {cache = cache, last_only = true})
    join(self, short, cache, logits)
  end
  local w = {}
  for _, st in ipairs(self.waiting) do if not done[st] then w[#w + 1] = st end end
  self.waiting = w
  if self.tm then
    self.tm.prefill_s = self.tm.prefill_s + lfl.sys.clock() - t0
    self.tm.prefill_cpu_s = (self.tm.prefill_cpu_s or 0) + os.clock() - c0
  end
end

-- one token for every running row, then one forward over those still going
function Batcher:decode()
  if #self.running == 0 then return end
  local t0, c0 = lfl.sys.clock(), os.clock()
  local keep, run, nxt_ids = {}, {}, {}
  local from_decode = 0
  for i, st in ipairs(self.running) do
    lfl.sys.check_interrupt() -- Ctrl-C, also when this loop runs JIT-compiled
    if not st.first then from_decode = from_decode + 1 end
    st.first = nil
    local nxt = draw(st, st.row)
    st.row = nil
    if st.stops[nxt] then
      st.done, st.reason = true, "stop"
    else
      st.out[#st.out + 1] = nxt
      st.prev[#st.prev + 1] = nxt
      if st.on_token and st.on_token(nxt) == false then
        st.done, st.reason = true, "cancelled"
      elseif #st.out >= st.maxn then
        st.done, st.reason = true, "length"
      end
    end
    if st.done then
      self.ended[#self.ended + 1] = st
    else
      keep[#keep + 1], run[#run + 1] = i, st
      nxt_ids[#keep] = {nxt}
    end
  end
  if #run < #self.running then self:keep_rows(keep, run) end
  if #run > 0 then
    local logits = decoder.forward(self.model, lfl.tensor(nxt_ids, "i64"), {cache = self.cache, last_only = true})
    for i, st in ipairs(run) do st.row = logits[i][1] end
  end
  if self.tm then
    self.tm.decode_tokens = self.tm.decode_tokens + from_decode
    self.tm.decode_s = self.tm.decode_s + lfl.sys.clock() - t0
    self.tm.decode_cpu_s = (self.tm.decode_cpu_s or 0) + os.clock() - c0
  end
end

-- One step: cancelled rows leave, one prefill unit, one decode step. Returns
-- the rows that ended since the last step (in the order they ended).
function Batcher:step()
  local grad = lfl.set_grad_enabled(false)
  local ok, err = pcall(function()
    lfl.sys.check_interrupt()
    self:drop_cancelled()
    self:prefill()
    self:decode()
  end)
  lfl.set_grad_enabled(grad)
  if not ok then error(err, 0) end
  local ended = self.ended
  self.ended = {}
  return ended
end

-- ---------------------------------------------------------------- streaming text

local FFFD = "\239\191\189"

-- An incremental detokenizer: push(id) returns the new text (possibly "")
-- once it forms whole characters. Decodes a short window of ids (from the last
-- emitted boundary) so SentencePiece's leading-space rules and byte-fallback
-- tokens come out as in a full decode.
function M.detokenizer(tok, dopts)
  dopts = dopts or {skip_special_tokens = true}
  local ids, prefix, read = {}, 1, 1
  local d = {}
  local function dec(a, b)
    if b < a then return "" end
    local sl = {}
    for i = a, b do sl[#sl + 1] = ids[i] end
    return tok:decode(sl, dopts)
  end
  function d.push(id)
    ids[#ids + 1] = id
    local old = dec(prefix, read - 1)
    local new = dec(prefix, #ids)
    if #new > #old and new:sub(-3) ~= FFFD and new:sub(1, #old) == old then
      prefix, read = read, #ids + 1
      return new:sub(#old + 1)
    end
    if #new > #old and new:sub(-3) ~= FFFD then
      -- the window's earlier text changed (rare): emit nothing, move on
      prefix, read = read, #ids + 1
    end
    return ""
  end
  -- whatever is left (an incomplete character decodes to U+FFFD as in HF)
  function d.flush()
    local old = dec(prefix, read - 1)
    local new = dec(prefix, #ids)
    prefix, read = #ids + 1, #ids + 1
    if #new > #old then return new:sub(#old + 1) end
    return ""
  end
  return d
end

-- ---------------------------------------------------------------- chat

-- One reply's text side: prompt ids (given, or templated from messages),
-- generation options whose on_token turns ids into text (stop strings,
-- streaming through opts.on_text), and finish(out, reason) -> text,
-- finish_reason, usage. lfl serve adds its rows to a batcher with these.
function M.reply_job(tok, tpl, messages, opts, ids)
  ids = ids or M.prompt_ids(tok, tpl, messages, opts.system, opts.tools)
  local stops = opts.stop
  if type(stops) == "string" then stops = {stops} end
  stops = stops or {}
  local maxstop = 0
  for _, s in ipairs(stops) do maxstop = math.max(maxstop, #s) end
  local det = M.detokenizer(tok)
  local sent = 0 -- sent: bytes of the joined text handed to on_text
  local acc = ""
  local stopped_by_string = false
  local function emit(upto)
    if opts.on_text and upto > sent then
      local r = opts.on_text(acc:sub(sent + 1, upto))
      sent = upto
      return r
    end
    sent = math.max(sent, upto)
  end
  local g = {}
  for k, v in pairs(opts) do g[k] = v end
  g.stop_ids = M.stop_ids(tok, tpl)
  g.on_token = function(id)
    local delta = det.push(id)
    if delta == "" then return true end
    acc = acc .. delta
    for _, s in ipairs(stops) do
      local a = acc:find(s, math.max(1, sent - #s + 1), true)
      if a then
        acc = acc:sub(1, a - 1)
        stopped_by_string = true
        emit(#acc)
        return false
      end
    end
    -- hold back a tail that could still become a stop string
    local r = emit(#acc - math.max(0, maxstop - 1))
    if r == false then return false end
    return true
  end
  local function finish(out, reason)
    if not stopped_by_string then
      if reason ~= "cancelled" then acc = acc .. det.flush() end
      emit(#acc)
    else
      reason = "stop"
    end
    return acc, reason, {prompt_tokens = #ids, completion_tokens = #out}
  end
  return {ids = ids, g = g, finish = finish}
end

-- Generates a reply to `messages` (already templated into prompt ids).
-- opts as generate plus: system, tools, stop (string or list of strings: the
-- text is cut before the first), on_text(delta) for streaming (return false to
-- stop). Returns text, finish_reason, {prompt_tokens =, completion_tokens =}.
function M.reply(model, tok, tpl, messages, opts)
  local j = M.reply_job(tok, tpl, messages, opts or {})
  local out, reason = M.generate(model, j.ids, j.g)
  return j.finish(out, reason)
end

-- Replies to several conversations decoded as one batch (generate_batch):
-- reqs[i] = {messages = ..., opts = ...} with opts as reply's (each its own
-- sampling options, seed, stop strings and on_text). Returns a list of
-- {text, finish_reason, usage}; a request whose on_text returns false is
-- cancelled alone.
function M.reply_batch(model, tok, tpl, reqs)
  local jobs, prompts, rows = {}, {}, {}
  for i, r in ipairs(reqs) do
    jobs[i] = M.reply_job(tok, tpl, r.messages, r.opts or {})
    prompts[i], rows[i] = jobs[i].ids, jobs[i].g
  end
  local res = M.generate_batch(model, prompts, {rows = rows})
  local out = {}
  for i, j in ipairs(jobs) do out[i] = {j.finish(res[i][1], res[i][2])} end
  return out
end

-- a reply to `messages` as text (kept for recipes; greedy unless opts say otherwise)
function M.chat(model, tok, tpl, messages, opts)
  return (M.reply(model, tok, tpl, messages, opts))
end

return M
