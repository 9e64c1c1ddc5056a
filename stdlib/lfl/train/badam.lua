-- BAdam (Luo et al. 2024, Ledzy/BAdam as LlamaFactory uses it): block coordinate
-- descent with Adam.
--  * layer mode (BlockOptimizer): one block = one decoder layer ("model.layers.N.");
--    only the active block requires grad and holds Adam state; every
--    switch_every steps the block switches (ascending / descending / random /
--    fixed) and the state is dropped. Embedding, final norm and lm_head stay
--    frozen (BAdam's include_embedding / include_lm_head default to false).
--  * ratio mode (BlockOptimizerRatio): every trainable matrix updates only a
--    update_ratio fraction of its entries (mask "adjacent": a contiguous run that
--    moves on by its length every switch_every steps; "scatter": a seeded random
--    subset), with Adam states for the selected entries only, reset every
--    switch_every steps; embedding and lm_head frozen; no weight decay.
local lfl = lfl
local optim = require("lfl.train.optim")
local K = lfl.optim_kernels
local fmt, floor, sqrt = string.format, math.floor, math.sqrt

local M = {}

-- Decoder-layer blocks in layer order: {prefix = "model.layers.N.", names = {...}}
function M.layer_blocks(names)
  local by, order = {}, {}
  for _, n in ipairs(names) do
    local pre, l = n:match("^(.-layers%.(%d+)%.)")
    if pre then
      if not by[pre] then by[pre] = {prefix = pre, index = tonumber(l), names = {}}; order[#order + 1] = by[pre] end
      local b = by[pre]
      b.names[#b.names + 1] = n
    end
  end
  table.sort(order, function(x, y) return x.index < y.index end)
  return order
end

-- a permutation of 0..n-1 from the global RNG (reproducible under manual_seed)
local function randperm(n)
  local r, out = lfl.rand(n), {}
  for i = 1, n do out[i] = i - 1 end
  for i = n, 2, -1 do
    local j = floor(r:_at(i) * i) + 1
    out[i], out[j] = out[j], out[i]
  end
  return out
end

-- ---------------------------------------------------------------- layer mode

local Block = {}
Block.__index = Block

-- opts: lr, beta1, beta2, eps, weight_decay, switch_every (50; -1 never),
-- start_block (0-based), switch_mode, verbose
function M.BlockOptimizer(names, params, opts)
  local blocks = M.layer_blocks(names)
  if #blocks == 0 then error("badam: no decoder-layer parameters (model.layers.N.*) among the trainable ones", 0) end
  local mode = opts.switch_mode or "ascending"
  if not ({ascending = true, descending = true, random = true, fixed = true})[mode] then
    error(fmt("badam_switch_mode '%s' is not supported (ascending, descending, random, fixed)", tostring(mode)), 0)
  end
  local self = setmetatable({kind = "badam_layer", names = names, params = params, blocks = blocks,
    switch_every = opts.switch_every or 50, switch_mode = mode, opts = opts, global_step = 0, verbose = opts.verbose or 0,
    block_order = {}, history = {}}, Block)
  local nb = #blocks
  if opts.start_block then
    if opts.start_block < 0 or opts.start_block >= nb then
      error(fmt("badam_start_block %d is outside 0..%d", opts.start_block, nb - 1), 0)
    end
    self.current = opts.start_block
  elseif mode == "descending" then self.current = nb - 1
  elseif mode == "random" then self.block_order = randperm(nb); self.current = table.remove(self.block_order)
  else self.current = 0 end
  self:switch()
  return self
end

function Block:advance()
  local nb = #self.blocks
  if self.switch_mode == "random" then
    if #self.block_order == 0 then self.block_order = randperm(nb) end
    self.current = table.remove(self.block_order)
  elseif self.switch_mode == "ascending" then self.current = (self.current + 1) % nb
  elseif self.switch_mode == "descending" then self.current = (self.current - 1) % nb end
end

-- Makes block `current` the trainable one with a fresh AdamW, then picks the next.
function Block:switch()
  local b = self.blocks[self.current + 1]
  self.active = b
  local set = {}
  for _, n in ipairs(b.names) do set[n] = true end
  local o = self.opts
  -- BAdam's groups: weight decay on all but biases
  local decay = {params = {}, names = {}, lr = o.lr, weight_decay = o.weight_decay or 0}
  local nodecay = {params = {}, names = {}, lr = o.lr, weight_decay = 0}
  for i, n in ipairs(self.names) do
    local p = self.params[i]
    if set[n] then
      p:requires_grad(true)
      local g = n:find("bias", 1, true) and nodecay or decay
      g.params[#g.params + 1] = p
      g.names[#g.names + 1] = n
    else
      p:requires_grad(false)
      p.grad = nil
    end
  end
  local groups = {}
  if #decay.params > 0 then groups[#groups + 1] = decay end
  if #nodecay.params > 0 then groups[#groups + 1] = nodecay end
  self.inner = optim.AdamW(groups, {lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps})
  self.history[#self.history + 1] = {step = self.global_step, block = self.current}
  if self.verbose >= 1 then print(fmt("[lfl] badam: training block %s", b.prefix)) end
  self:advance()
end

function Block:step(lr_factor)
  self.inner:step(lr_factor)
  self.global_step = self.global_step + 1
  -- BAdam switches when (global_step + 1) % switch_every == 0, so the first block
  -- gets switch_every - 1 steps and the later ones switch_every
  if self.switch_every > 0 and (self.global_step + 1) % self.switch_every == 0 then self:switch() end
end

function Block:zero_grad() for _, p in ipairs(self.params) do p.grad = nil end end

function Block:state_tensors()
  local out, meta = self.inner:state_tensors()
  meta.__badam = {global_step = self.global_step, current = self.current, active = self.active.index,
                  order = self.block_order}
  return out, meta
end

function Block:load_state_tensors(ts, meta)
  local b = meta.__badam
  if b then
    self.global_step, self.block_order = b.global_step, b.order or {}
    self.current = b.active
    self:switch()              -- re-activates the saved block (and advances past it)
    self.current = b.current
  end
  self.inner:load_state_tensors(ts, meta)
end

-- ---------------------------------------------------------------- ratio mode

local Ratio = {}
Ratio.__index = Ratio

-- opts: update_ratio (0.05), mask_mode ("adjacent"|"scatter"), switch_every (100,
-- BlockOptimizerRatio's default; LlamaFactory does not pass it), preserve_threshold
-- (100), lr, beta1, beta2, eps, seed (scatter masks)
function M.RatioOptimizer(names, params, opts)
  local mode = opts.mask_mode or "adjacent"
  if mode ~= "adjacent" and mode ~= "scatter" then
    error(fmt("badam_mask_mode '%s' is not supported (adjacent, scatter)", tostring(mode)), 0)
  end
  local ratio = opts.update_ratio or 0.05
  if not (ratio > 0 and ratio <= 1) then error(fmt("badam_update_ratio must be in (0, 1], got %s", tostring(ratio)), 0) end
  local self = setmetatable({kind = "badam_ratio", names = {}, params = {}, info = {}, state = {}, mask_cache = {},
    ratio = ratio, mask_mode = mode, switch_every = opts.switch_every or 100, global_step = 0, opts = opts,
    beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.999, eps = opts.eps or 1e-8, lr = opts.lr or 1e-5}, Ratio)
  local seed = opts.seed or 0
  for i, n in ipairs(names) do
    local p = params[i]
    if n:find("embed", 1, true) or n:find("lm_head", 1, true) then
      p:requires_grad(false)
      p.grad = nil
    else
      self.names[#self.names + 1] = n
      self.params[#self.params + 1] = p
      self.info[p] = {offset = 0, seed = seed + i, name = n}
    end
  end
  return self
end

local function shape_key(p) return table.concat(p:size(), "x") end

-- The flat indices (sorted, i64) a parameter updates now.
function Ratio:mask(p)
  local key = shape_key(p)
  local c = self.mask_cache[key]
  if c then return c end
  local n, info = p:numel(), self.info[p]
  local k = floor(n * self.ratio)
  local idx = {}
  if self.ratio == 1 then
    for j = 1, n do idx[j] = j - 1 end
  elseif self.mask_mode == "adjacent" then
    for j = 0, k - 1 do idx[#idx + 1] = (info.offset + j) % n end
  else
    -- a permutation fixed by the parameter's seed, read from the offset on
    local saved_seed, saved_off = lfl.rng_state()
    lfl.manual_seed(info.seed)
    local perm = randperm(n)
    lfl.rng_state(saved_seed, saved_off)
    for j = 0, k - 1 do idx[#idx + 1] = perm[(info.offset + j) % n + 1] end
  end
  table.sort(idx)
  local t = #idx > 0 and lfl.tensor(idx, "i64") or false
  -- BAdam keeps one mask per shape (keep_mask): parameters of a shape share it
  self.mask_cache[key] = t
  return t
end

-- Zeroes the gradient outside each mask, as BAdam's post-accumulate hook does
-- before the trainer clips (the clipped norm is that of the masked gradient).
-- Also moves the offsets on at the switch step, as the hook does.
function Ratio:before_clip()
  local switching = (self.global_step + 1) % self.switch_every == 0
  for _, p in ipairs(self.params) do
    if p.grad then
      local idx = self:mask(p)
      local g = p.grad:contiguous()
      local masked = lfl.zeros(p:numel())
      if idx then masked = lfl.scatter_add(masked, 1, idx, g:view(-1):index_select(1, idx)) end
      p.grad = masked:view(p:size())
      self.info[p].idx = idx
      if switching then
        local info = self.info[p]
        info.offset = (info.offset + floor(p:numel() * self.ratio)) % p:numel()
        self.mask_cache[shape_key(p)] = nil
      end
    end
  end
  self.masked = true
end

function Ratio:step(lr_factor)
  if not self.masked then self:before_clip() end
  self.masked = false
  local lr = self.lr * (lr_factor or 1)
  local b1, b2 = self.beta1, self.beta2
  for _, p in ipairs(self.params) do
    local idx = self.info[p].idx
    if p.grad and idx then
      local st = self.state[p]
      if not st then
        st = {m = lfl.zeros(idx:numel()), v = lfl.zeros(idx:numel()), step = 0}
        self.state[p] = st
      end
      st.step = st.step + 1
      local step_size = lr * sqrt(1 - b2 ^ st.step) / (1 - b1 ^ st.step)
      local grad = p.grad:contiguous()
      -- a 16-bit parameter (pure_bf16) steps on an f32 copy written back rounded
      require("lfl.train.optim").update_param(p, function(q)
        K.sparse_adam_step(q, grad, idx, st.m, st.v, step_size, b1, b2, self.eps)
      end)
    end
  end
  self.global_step = self.global_step + 1
  if self.global_step % self.switch_every == 0 then self.state = {} end
end

function Ratio:zero_grad() for _, p in ipairs(self.params) do p.grad = nil end end

function Ratio:state_tensors()
  local out, meta = {}, {__badam_ratio = {global_step = self.global_step, offsets = {}}}
  for i, p in ipairs(self.params) do
    local n = self.names[i]
    meta.__badam_ratio.offsets[n] = self.info[p].offset
    local st = self.state[p]
    if st then out[n .. ".exp_avg"], out[n .. ".exp_avg_sq"] = st.m, st.v; meta[n] = st.step end
  end
  return out, meta
end

function Ratio:load_state_tensors(ts, meta)
  local r = meta.__badam_ratio
  if r then
    self.global_step = r.global_step
    for i, p in ipairs(self.params) do self.info[p].offset = r.offsets[self.names[i]] or 0 end
    self.mask_cache = {}
  end
  for i, p in ipairs(self.params) do
    local n = self.names[i]
    if ts[n .. ".exp_avg"] then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = meta[n] or 0}
      self.info[p].idx = self:mask(p)
    end
  end
end

-- The optimizer for recipe args (use_badam, badam_*) over the trainable params.
function M.from_args(names, params, a)
  local common = {lr = a.learning_rate, beta1 = a.adam_beta1, beta2 = a.adam_beta2, eps = a.adam_epsilon,
                  weight_decay = a.weight_decay, verbose = a.badam_verbose}
  if a.badam_mode == "ratio" then
    common.update_ratio, common.mask_mode, common.seed = a.badam_update_ratio, a.badam_mask_mode, a.seed
    return M.RatioOptimizer(names, params, common)
  elseif a.badam_mode == "layer" or a.badam_mode == nil then
    common.switch_every, common.start_block, common.switch_mode = a.badam_switch_interval, a.badam_start_block,
      a.badam_switch_mode
    return M.BlockOptimizer(names, params, common)
  end
  error(fmt("badam_mode '%s' is not supported (layer, ratio)", tostring(a.badam_mode)), 0)
end

return M
