-- Optimizers (AdamW, SGD; state in f32 tensors, updates fused in C) with
-- parameter groups, and the Hugging Face learning-rate schedules.
local lfl = lfl
local K = lfl.optim_kernels
local cos, pi, sqrt, max, min, fmt = math.cos, math.pi, math.sqrt, math.max, math.min, string.format

local M = {}

-- ---------------------------------------------------------------- optimizers

-- (name, parameter) over every group of an optimizer; the name is the one the
-- group gives (checkpoint keys) or "g<group>.<index>"
function M.named_params(opt)
  return coroutine.wrap(function()
    for gi, g in ipairs(opt.groups) do
      for i, p in ipairs(g.params) do
        coroutine.yield(g.names and g.names[i] or fmt("g%d.%d", gi, i), p)
      end
    end
  end)
end
local named_params = M.named_params

-- The fused kernels update f32 tensors. A 16-bit parameter (pure_bf16 training)
-- is stepped on a transient f32 copy (one tensor at a time) and written back
-- rounded to nearest even; there is no stochastic rounding, so an update
-- below half a bf16 ulp of the weight is lost. The states stay f32.
local function update(p, fn)
  if p:dtype() == "f32" then return fn(p) end
  local pf = lfl.no_grad(function() return p:detach():to("f32") end)
  fn(pf)
  lfl.no_grad(function() p:copy_(pf) end)
end
M.update_param = update

-- an f32 state tensor of p's shape on p's device (zeros)
local function state_like(p)
  local z = lfl.zeros(p:size())
  local d = p:device()
  return d == "cpu" and z or z:to(d)
end
M.state_like = state_like

local AdamW = {}
AdamW.__index = AdamW

-- groups: list of {params = {tensors}, names = {...}, lr = , weight_decay = }
-- opts: lr, betas {b1, b2}, eps, weight_decay
function M.AdamW(groups, opts)
  opts = opts or {}
  local self = setmetatable({kind = "adamw", groups = {}, state = {}, step_count = 0,
    beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.999, eps = opts.eps or 1e-8}, AdamW)
  for _, g in ipairs(groups) do
    self.groups[#self.groups + 1] = {params = g.params, names = g.names, lr = g.lr or opts.lr or 1e-3,
      weight_decay = g.weight_decay or opts.weight_decay or 0, lr_scale = g.lr_scale or 1}
  end
  return self
end

function AdamW:step(lr_factor)
  self.step_count = self.step_count + 1
  lr_factor = lr_factor or 1
  for _, g in ipairs(self.groups) do
    for i, p in ipairs(g.params) do
      local grad = p.grad
      if grad then
        local st = self.state[p]
        if not st then
          st = {m = state_like(p), v = state_like(p), step = 0}
          self.state[p] = st
        end
        st.step = st.step + 1
        local o = {lr = g.lr * g.lr_scale * lr_factor, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps,
                   weight_decay = g.weight_decay, step = st.step}
        update(p, function(q) K.adamw_step(q, grad:contiguous(), st.m, st.v, o) end)
      end
    end
  end
end

function AdamW:zero_grad()
  for _, g in ipairs(self.groups) do for _, p in ipairs(g.params) do p.grad = nil end end
end

-- state as {name = tensor} for checkpoints (names from the groups)
function AdamW:state_tensors()
  local out, meta = {}, {}
  for n, p in named_params(self) do
    local st = self.state[p]
    if st then
      out[n .. ".exp_avg"] = st.m
      out[n .. ".exp_avg_sq"] = st.v
      meta[n] = st.step
    end
  end
  return out, meta
end

function AdamW:load_state_tensors(ts, meta)
  for n, p in named_params(self) do
    if ts[n .. ".exp_avg"] then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = meta[n] or 0}
    end
  end
end

local SGD = {}
SGD.__index = SGD

function M.SGD(groups, opts)
  opts = opts or {}
  local self = setmetatable({kind = "sgd", groups = {}, state = {}, momentum = opts.momentum or 0}, SGD)
  for _, g in ipairs(groups) do
    self.groups[#self.groups + 1] = {params = g.params, names = g.names, lr = g.lr or opts.lr or 1e-3,
      weight_decay = g.weight_decay or opts.weight_decay or 0, lr_scale = g.lr_scale or 1}
  end
  return self
end

function SGD:step(lr_factor)
  lr_factor = lr_factor or 1
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do
      if p.grad then
        local buf, first = nil, false
        if self.momentum ~= 0 then
          buf = self.state[p]
          if not buf then buf = state_like(p); self.state[p] = buf; first = true end
        end
        local grad = p.grad:contiguous()
        update(p, function(q)
          K.sgd_step(q, grad, buf, g.lr * g.lr_scale * lr_factor, self.momentum, g.weight_decay, first)
        end)
      end
    end
  end
end
SGD.zero_grad = AdamW.zero_grad
-- drops every group's gradients: the zero_grad of the optimizers built on groups (Muon, APOLLO, ...)
M.zero_grad = AdamW.zero_grad
function SGD:state_tensors()
  local out = {}
  for n, p in named_params(self) do
    if self.state[p] then out[n .. ".momentum_buffer"] = self.state[p] end
  end
  return out, {}
end
function SGD:load_state_tensors(ts)
  for n, p in named_params(self) do
    local b = ts[n .. ".momentum_buffer"]
    if b then self.state[p] = b:clone() end
  end
end

-- Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_); returns the
-- norm before clipping.
function M.clip_grad_norm(params, max_norm)
  local total = 0
  for _, p in ipairs(params) do
    if p.grad then total = total + K.sum_squares(p.grad) end
  end
  local norm = sqrt(total)
  if max_norm and max_norm > 0 then
    local coef = max_norm / (norm + 1e-6)
    if coef < 1 then
      for _, p in ipairs(params) do
        if p.grad then
          local g = p.grad:contiguous()
          K.scale_(g, coef)
          p.grad = g
        end
      end
    end
  end
  return norm
end

-- ---------------------------------------------------------------- schedules

-- Returns f(step) -> lr multiplier, as transformers.get_scheduler's lambdas.
-- kw: num_cycles, lr_end/lr_init (polynomial), power, timescale, num_decay_steps,
-- num_stable_steps, warmup_type, decay_type, min_lr_ratio, min_lr_rate
function M.schedule(name, warmup, total, kw)
  kw = kw or {}
  local function warm(s) return s / max(1, warmup) end
  if name == "constant" then return function() return 1.0 end end
  if name == "constant_with_warmup" then
    return function(s) if s < warmup then return s / max(1.0, warmup) end return 1.0 end
  end
  if name == "linear" then
    return function(s)
      if s < warmup then return warm(s) end
      return max(0.0, (total - s) / max(1, total - warmup))
    end
  end
  if name == "cosine" or name == "cosine_with_min_lr" then
    local cycles, floor_rate = kw.num_cycles or 0.5, kw.min_lr_rate or 0.0
    return function(s)
      if s < warmup then return warm(s) end
      local prog = (s - warmup) / max(1, total - warmup)
      local f = 0.5 * (1.0 + cos(pi * cycles * 2.0 * prog))
      return max(0.0, f * (1 - floor_rate) + floor_rate)
    end
  end
  if name == "cosine_with_restarts" then
    local cycles = kw.num_cycles or 1
    return function(s)
      if s < warmup then return warm(s) end
      local prog = (s - warmup) / max(1, total - warmup)
      if prog >= 1.0 then return 0.0 end
      return max(0.0, 0.5 * (1.0 + cos(pi * ((cycles * prog) % 1.0))))
    end
  end
  if name == "polynomial" then
    local lr_init, lr_end, power = kw.lr_init or 1.0, kw.lr_end or 1e-7, kw.power or 1.0
    return function(s)
      if s < warmup then return warm(s) end
      if s > total then return lr_end / lr_init end
      local rem = 1 - (s - warmup) / (total - warmup)
      return ((lr_init - lr_end) * rem ^ power + lr_end) / lr_init
    end
  end
  if name == "inverse_sqrt" then
    local ts = kw.timescale or (warmup > 0 and warmup or 10000)
    return function(s)
      if s < warmup then return warm(s) end
      return 1.0 / sqrt((s + ts - warmup) / ts)
    end
  end
  if name == "warmup_stable_decay" then
    local decay = kw.num_decay_steps or math.floor(0.1 * total)
    local stable = kw.num_stable_steps or (total - warmup - decay)
    local wt, dt, mr, cyc = kw.warmup_type or "linear", kw.decay_type or "cosine", kw.min_lr_ratio or 0, kw.num_cycles or 0.5
    return function(s)
      local f
      if s < warmup then
        local p = s / max(1, warmup)
        f = wt == "linear" and p or wt == "cosine" and 0.5 * (1 - cos(pi * p)) or 1 - sqrt(1 - p)
        return max(0.0, f * (1 - mr) + mr)
      end
      if s < warmup + stable then return 1.0 end
      if s < warmup + stable + decay then
        local p = (s - warmup - stable) / max(1, decay)
        f = dt == "linear" and 1 - p or dt == "cosine" and 0.5 * (1 + cos(pi * cyc * 2 * p)) or 1 - sqrt(p)
        return max(0.0, f * (1 - mr) + mr)
      end
      return mr
    end
  end
  error(fmt("lr_scheduler_type '%s' is not supported (linear, cosine, cosine_with_restarts, polynomial, "
    .. "constant, constant_with_warmup, inverse_sqrt, warmup_stable_decay)", tostring(name)), 2)
end

-- ---------------------------------------------------------------- 8-bit AdamW

-- bitsandbytes' AdamW8bit (HF optim "adamw_8bit" / "adamw_bnb_8bit"): exp_avg and
-- exp_avg_sq stored as one byte per element (indices into the signed / unsigned
-- dynamic 8-bit maps) plus an f32 absmax per block of `block_size` (256, as
-- bitsandbytes' blockwise optimizers); the update dequantizes, steps and
-- requantizes each block in C. Tensors under min_8bit_size elements (4096, as
-- bitsandbytes) keep f32 states.
local AdamW8bit = setmetatable({}, {__index = AdamW})
AdamW8bit.__index = AdamW8bit

function M.AdamW8bit(groups, opts)
  opts = opts or {}
  local self = M.AdamW(groups, opts)
  self.kind, self.block = "adamw_8bit", opts.block_size or 256
  self.min_8bit_size = opts.min_8bit_size or 4096
  return setmetatable(self, AdamW8bit)
end

local function new_8bit_state(p, block)
  local n = p:numel()
  local nb = math.floor((n + block - 1) / block)
  return {q1 = lfl.zeros(n, "u8"), a1 = lfl.zeros(nb), q2 = lfl.zeros(n, "u8"), a2 = lfl.zeros(nb), step = 0}
end

function AdamW8bit:step(lr_factor)
  self.step_count = self.step_count + 1
  lr_factor = lr_factor or 1
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do
      local grad = p.grad
      if grad then
        local st = self.state[p]
        if not st then
          if p:numel() < self.min_8bit_size then st = {m = state_like(p), v = state_like(p), step = 0}
          else st = new_8bit_state(p, self.block) end
          self.state[p] = st
        end
        st.step = st.step + 1
        local o = {lr = g.lr * g.lr_scale * lr_factor, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps,
                   weight_decay = g.weight_decay, step = st.step}
        update(p, function(q)
          if st.q1 then K.adamw8bit_step(q, grad:contiguous(), st.q1, st.a1, st.q2, st.a2, self.block, o)
          else K.adamw_step(q, grad:contiguous(), st.m, st.v, o) end
        end)
      end
    end
  end
end

-- bytes held by the optimizer states (codes + absmax, or f32 for small tensors)
function AdamW8bit:state_bytes()
  local b = 0
  for _, st in pairs(self.state) do
    if st.q1 then b = b + st.q1:numel() + st.q2:numel() + 4 * (st.a1:numel() + st.a2:numel())
    else b = b + 4 * (st.m:numel() + st.v:numel()) end
  end
  return b
end

-- f32 copies of the states (for inspection and tests)
function AdamW8bit:dequantized_state(p)
  local st = self.state[p]
  if not st then return nil end
  if not st.q1 then return st.m, st.v end
  local m, v = lfl.zeros(p:numel()), lfl.zeros(p:numel())
  K.dequantize_blockwise(st.q1, st.a1, self.block, m, "signed")
  K.dequantize_blockwise(st.q2, st.a2, self.block, v, "unsigned")
  return m:view(p:size()), v:view(p:size())
end

function AdamW8bit:state_tensors()
  local out, meta = {}, {}
  for n, p in named_params(self) do
    local st = self.state[p]
    if st then
      if st.q1 then
        out[n .. ".state1"], out[n .. ".absmax1"] = st.q1, st.a1
        out[n .. ".state2"], out[n .. ".absmax2"] = st.q2, st.a2
      else
        out[n .. ".exp_avg"], out[n .. ".exp_avg_sq"] = st.m, st.v
      end
      meta[n] = st.step
    end
  end
  return out, meta
end

function AdamW8bit:load_state_tensors(ts, meta)
  for n, p in named_params(self) do
    if ts[n .. ".state1"] then
      self.state[p] = {q1 = ts[n .. ".state1"]:clone(), a1 = ts[n .. ".absmax1"]:clone(),
        q2 = ts[n .. ".state2"]:clone(), a2 = ts[n .. ".absmax2"]:clone(), step = meta[n] or 0}
    elseif ts[n .. ".exp_avg"] then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = meta[n] or 0}
    end
  end
end

return M
