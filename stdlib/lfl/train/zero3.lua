-- ZeRO-3 over the ranks of a job (lfl.train.dist with zero_optimization.stage 3):
-- every trainable parameter is partitioned. The trainable tensors are grouped
-- by decoder layer ("model.layers.N." in the name; group 0 holds the rest: the
-- embeddings, the final norm, the head) and each group has its own bucket
-- layout (lfl.comm.dp), whose slice r rank r owns: the parameters' values (the
-- f32 master, p), the gradient (g) and AdamW's two moments (m, v) are held as
-- that slice only. Between uses a parameter tensor is empty ([0]: the same
-- object the model, the adapters and the optimizer's groups hold, its data
-- given back); the decoder calls
--
--   z:begin_forward()  at the start of its forward: group 0 is all-gathered
--   z:enter(l)         before layer l's forward: layer l is all-gathered
--   z:leave(l)         after it: released (no gradient recorded), or, in the
--                      layer's recompute during backward, released with its
--                      gradient reduce-scattered into g at the next enter
--                      (the layer's backward is then complete)
--
-- and the trainer z:after_backward() after each micro-batch's backward (the
-- last layer and group 0 reduced and released). Gradient checkpointing is on
-- for the layers under ZeRO-3: a layer's recompute during backward is where its
-- parameters are gathered again. So a rank holds, besides its slices, the full
-- parameters of one layer and of group 0 at a time, and the full gradient of
-- one layer (and of group 0 until the end of backward).
--
-- stage3_param_persistence_threshold: tensors with fewer elements stay
-- gathered (refreshed at each gather: they are still stepped as slices).
--
-- ZeRO-2 (opts.keep_params) runs the same per-layer schedule with the
-- parameters left whole: each layer's gradient is reduce-scattered into the
-- slice and freed as soon as its backward is over, AdamW steps the parameters'
-- own slices (views, no copy) and every layer is all-gathered after the step.
local lfl = lfl
local fmt, sqrt = string.format, math.sqrt

local M = {}
local Z = {}
Z.__index = Z

local function group_key(name)
  local l = name:match("model%.layers%.(%d+)%.")
  return l and tonumber(l) + 1 or 0
end

-- dist: the job's view (params, names, bucket); model: its decoder; opts.persist
-- (elements, from stage3_param_persistence_threshold), opts.max_live
function M.new(dist, model, opts)
  local self = setmetatable({dist = dist, model = model, groups = {}, by_layer = {}, persist = opts.persist or 0,
    keep = opts.keep_params}, Z)
  for i, n in ipairs(dist.names) do
    local key = group_key(n)
    local g = self.by_layer[key]
    if not g then
      g = {layer = key, idx = {}, params = {}, shapes = {}, names = {}, numel = 0}
      self.by_layer[key] = g
      self.groups[#self.groups + 1] = g
    end
    local p = dist.params[i]
    g.idx[#g.idx + 1], g.params[#g.params + 1], g.names[#g.names + 1] = i, p, n
    g.shapes[#g.shapes + 1] = p:size()
    g.numel = g.numel + p:numel()
  end
  table.sort(self.groups, function(a, b) return a.layer < b.layer end)
  local largest = 0
  for _, g in ipairs(self.groups) do if g.numel > largest then largest = g.numel end end
  -- at most one layer and group 0 are gathered at a time
  local live = largest + (self.by_layer[0] and self.by_layer[0].numel or 0)
  if opts.max_live and live > opts.max_live then
    error(fmt("deepspeed: zero_optimization.stage3_max_live_parameters is %d, but lfl gathers a whole layer and the "
      .. "embeddings/head at once: %d parameters (raise it to %d or more, or set it to 1e9)", opts.max_live, live,
      live), 0)
  end
  self.live = live
  lfl.no_grad(function()
    for _, g in ipairs(self.groups) do
      g.dp = lfl.comm.dp(g.params, dist.bucket)
      local n = g.dp:shard_numel()
      g.g, g.empty_grad = lfl.zeros(n), true
      if self.keep then
        g.gathered = true
      else
        g.p = lfl.zeros(n)
        g.dp:pack(g.params, g.p)
        g.dp:release(g.params, self.persist)
        g.gathered = false
      end
    end
  end)
  self.shard_numel = 0
  for _, g in ipairs(self.groups) do self.shard_numel = self.shard_numel + g.dp:shard_numel() end
  -- the whole model loaded at the start is given back (the heap would keep its pages)
  if not self.keep then lfl.memory_trim() end
  model.zero3 = self
  return self
end

function Z:has(l) return self.by_layer[l] ~= nil end

function Z:gather(g)
  if g.gathered then return end
  lfl.no_grad(function()
    g.dp:materialize(g.params, g.shapes)
    g.dp:all_gather(g.p, g.params)
    g.dp:trim()
  end)
  g.gathered = true
end

function Z:release(g)
  if self.all or self.keep then return end
  g.dp:release(g.params, self.persist)
  g.gathered = false
end

-- the group's gradients (the mean over ranks) into its slice g; the full ones go
function Z:reduce(g)
  lfl.no_grad(function()
    local grads = {}
    for i, p in ipairs(g.params) do
      local gr = p.grad
      if gr and not gr:is_contiguous() then gr = gr:contiguous() end
      grads[i] = gr
    end
    g.dp:reduce_scatter_mean(grads, g.g, not g.empty_grad)
    g.empty_grad = false
    g.dp:trim()
    for _, p in ipairs(g.params) do p.grad = nil end
  end)
  g.reduced = true
end

function Z:begin_forward()
  if self.all then return end
  local g = self.by_layer[0]
  if g then self:gather(g) end
end

function Z:flush_pending()
  local g = self.pending
  if not g then return end
  self.pending = nil
  self:reduce(g)
  self:release(g)
end

function Z:enter(l)
  if self.all then return end
  if lfl.is_grad_enabled() then self:flush_pending() end
  local g = self.by_layer[l]
  if g then self:gather(g) end
end

function Z:leave(l)
  if self.all then return end
  local g = self.by_layer[l]
  if not g then return end
  if lfl.is_grad_enabled() then self.pending = g else self:release(g) end
end

-- after a micro-batch's backward: every group reduced exactly once (a
-- collective: the same groups on every rank) and released
function Z:after_backward()
  self:flush_pending()
  for _, g in ipairs(self.groups) do
    if not g.reduced then self:reduce(g) end
    g.reduced = nil
    self:release(g)
  end
end

-- the whole model gathered (evaluation, checkpoints, the final save); enter and
-- leave do nothing until release_all
function Z:gather_all()
  for _, g in ipairs(self.groups) do self:gather(g) end
  self.all = true
end

function Z:release_all()
  self.all = false
  for _, g in ipairs(self.groups) do self:release(g) end
end

-- after the parameters were overwritten while gathered (a checkpoint loaded):
-- the slices from them
function Z:reshard()
  if self.keep then return end
  lfl.no_grad(function()
    for _, g in ipairs(self.groups) do g.dp:pack(g.params, g.p) end
  end)
end

-- the optimizer stepped the slices: every gathered copy is out of date
function Z:stale()
  if self.keep then
    -- ZeRO-2: every rank's stepped slices into the whole parameters
    lfl.no_grad(function()
      for _, g in ipairs(self.groups) do g.dp:all_gather_inplace(g.params); g.dp:trim() end
    end)
    return
  end
  for _, g in ipairs(self.groups) do g.gathered = false end
end

-- the global gradient norm over the slices, clipped to max_norm
function Z:clip(max_norm)
  local K = lfl.optim_kernels
  local mine = 0
  for _, g in ipairs(self.groups) do mine = mine + K.sum_squares(g.g) end
  local norm = sqrt(lfl.comm.all_reduce({mine})[1])
  if max_norm and max_norm > 0 then
    local coef = max_norm / (norm + 1e-6)
    if coef < 1 then for _, g in ipairs(self.groups) do K.scale_(g.g, coef) end end
  end
  return norm
end

-- ---------------------------------------------------------------- AdamW on the slices

local O = {}
O.__index = O

-- base: the AdamW the trainer made (its groups' lr and weight decay per tensor)
function M.optimizer(z, base)
  local self = setmetatable({kind = "adamw", zero = z.keep and 2 or 3, z = z, base = base, step_count = 0, beta1 = base.beta1,
    beta2 = base.beta2, eps = base.eps, groups = base.groups, pieces = {}}, O)
  local group_of, k = {}, 0
  for _, g in ipairs(base.groups) do
    for _ = 1, #g.params do k = k + 1; group_of[k] = g end
  end
  lfl.no_grad(function()
    for _, g in ipairs(z.groups) do
      local n = g.dp:shard_numel()
      g.m, g.v = lfl.zeros(n), lfl.zeros(n)
      for _, pc in ipairs(g.dp:pieces()) do
        local s = pc.shard_offset + 1
        -- ZeRO-2: the parameter's own slice; ZeRO-3: the rank's copy
        local p = z.keep and g.params[pc.tensor]:view(-1):narrow(1, pc.offset + 1, pc.len) or g.p:narrow(1, s, pc.len)
        self.pieces[#self.pieces + 1] = {group = group_of[g.idx[pc.tensor]], p = p,
          g = g.g:narrow(1, s, pc.len), m = g.m:narrow(1, s, pc.len), v = g.v:narrow(1, s, pc.len)}
      end
    end
  end)
  return self
end

function O:step(lr_factor)
  lr_factor = lr_factor or 1
  self.step_count = self.step_count + 1
  local K = lfl.optim_kernels
  for _, pc in ipairs(self.pieces) do
    local g = pc.group
    K.adamw_step(pc.p, pc.g, pc.m, pc.v, {lr = g.lr * (g.lr_scale or 1) * lr_factor, beta1 = self.beta1,
      beta2 = self.beta2, eps = self.eps, weight_decay = g.weight_decay, step = self.step_count})
  end
  self.z:stale()
end

function O:zero_grad()
  for _, g in ipairs(self.z.groups) do
    g.g:zero_()
    g.empty_grad = true
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

-- the full state per parameter (a collective), as AdamW:state_tensors names it
function O:state_tensors()
  local out, meta = {}, {}
  if self.step_count == 0 then return out, meta end
  lfl.no_grad(function()
    for _, g in ipairs(self.z.groups) do
      for _, which in ipairs({{"m", "exp_avg"}, {"v", "exp_avg_sq"}}) do
        local full = {}
        for i, sz in ipairs(g.shapes) do full[i] = lfl.zeros(sz) end
        g.dp:all_gather(g[which[1]], full)
        g.dp:trim()
        for i, n in ipairs(g.names) do out[n .. "." .. which[2]] = full[i] end
      end
      for _, n in ipairs(g.names) do meta[n] = self.step_count end
    end
  end)
  return out, meta
end

-- from a checkpoint written with any world size, any ZeRO stage or one process
function O:load_state_tensors(ts, meta)
  local step = 0
  lfl.no_grad(function()
    for _, g in ipairs(self.z.groups) do
      local ms, vs = {}, {}
      for i, n in ipairs(g.names) do
        local m, v = ts[n .. ".exp_avg"], ts[n .. ".exp_avg_sq"]
        if m and v then
          ms[i], vs[i] = m:contiguous():to("f32"), v:contiguous():to("f32")
          step = math.max(step, meta[n] or 0)
        end
      end
      g.dp:pack(ms, g.m)
      g.dp:pack(vs, g.v)
    end
  end)
  self.step_count = step
end

return M
