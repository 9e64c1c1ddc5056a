-- APOLLO (Zhu et al. 2024; apollo_torch.APOLLOAdamW as LlamaFactory builds it
-- for `use_apollo: true`): Adam's moments live in a rank-r projection of each
-- targeted weight's gradient; the normalized low-rank update only sets a
-- scaling of the raw gradient, per channel (the ratio of the column or row
-- norms of the normalized and the projected gradient) or per tensor, followed
-- by the norm-growth limiter (the scaled gradient's norm grows at most 1.01x a
-- step) and sqrt(apollo_scale). Other parameters take the same AdamW. Weight
-- decay comes after the update, as in the reference.
--
-- The projection: "random" draws a Gaussian matrix / sqrt(rank), refreshed
-- every update_proj_gap steps with a new seed (each parameter starts from its
-- 1-based index, as the reference does); "svd" takes GaLore's SVD basis. lfl
-- draws its random matrices from its own generator (Philox), not torch's
-- Mersenne Twister: same distribution, other numbers. Given the same
-- projection matrix, the update is the reference's (tests/lua/test_apollo.lua).
local lfl = lfl
local K = lfl.optim_kernels
local optim, galore = require("lfl.train.optim"), require("lfl.train.galore")
local sqrt, fmt, max = math.sqrt, string.format, math.max

local M = {}

-- splitmix64-style successor on Lua numbers kept below 2^52
function M.next_seed(seed)
  return (seed * 6364136223 + 1442695) % 4503599627370496
end

-- a [rows, cols] N(0, 1) / sqrt(rank) matrix from `seed`; the global stream is left as it was
function M.random_matrix(rows, cols, rank, seed)
  local s1, s2 = lfl.rng_state()
  lfl.manual_seed(seed)
  local p = lfl.randn(rows, cols) * (1 / sqrt(rank))
  lfl.rng_state(s1, s2)
  return p
end

-- which side a [m, n] gradient is projected on
local function side(proj_type, m, n)
  if proj_type == "std" then return m >= n and "right" or "left" end
  if proj_type == "reverse_std" then return m >= n and "left" or "right" end
  return proj_type
end

-- project grad with the state's matrix, refreshing it at step % gap == 0
function M.project(st, grad, cfg, iter)
  local m, n = grad:size(1), grad:size(2)
  local sd = side(cfg.proj_type, m, n)
  if not st.proj or iter % cfg.update_proj_gap == 0 then
    if cfg.proj == "svd" then
      st.proj = galore.orthogonal_matrix(grad, cfg.rank, sd)
      if sd == "left" then st.proj = st.proj:contiguous() end
    else
      st.proj = sd == "left" and M.random_matrix(m, cfg.rank, cfg.rank, st.seed)
        or M.random_matrix(cfg.rank, n, cfg.rank, st.seed)
      st.seed = M.next_seed(st.seed)
    end
    st.side = sd
    st.refreshes = (st.refreshes or 0) + 1
  end
  if st.side == "right" then return lfl.matmul(grad, st.proj:transpose(1, 2)):contiguous() end
  return lfl.matmul(st.proj:transpose(1, 2), grad):contiguous()
end

local function norm(x) return sqrt((x * x):sum():item()) end

local Opt = {}
Opt.__index = Opt

-- groups: {params, names, lr, weight_decay, apollo = {rank, update_proj_gap, scale,
-- proj ("random"|"svd"), proj_type, scale_type ("channel"|"tensor")}|nil}
-- opts: lr, beta1, beta2, eps (1e-8), scale_front (false)
function M.APOLLOAdamW(groups, opts)
  opts = opts or {}
  local self = setmetatable({kind = "apollo_adamw", groups = {}, state = {}, step_count = 0,
    beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.999, eps = opts.eps or 1e-6,
    scale_front = opts.scale_front == true}, Opt)
  local idx = 0
  for gi, g in ipairs(groups) do
    local ap = g.apollo
    if ap then
      ap = {rank = ap.rank or 16, update_proj_gap = ap.update_proj_gap or 200, scale = ap.scale or 32,
        proj = ap.proj or "random", proj_type = ap.proj_type or "std", scale_type = ap.scale_type or "channel"}
      if ap.proj ~= "random" and ap.proj ~= "svd" then error(fmt("apollo_proj '%s': random or svd", ap.proj), 0) end
      if ap.scale_type ~= "channel" and ap.scale_type ~= "tensor" then
        error(fmt("apollo_scale_type '%s': channel or tensor", ap.scale_type), 0)
      end
    end
    self.groups[gi] = {params = g.params, names = g.names, lr = g.lr or opts.lr or 1e-3, lr_scale = g.lr_scale or 1,
      weight_decay = g.weight_decay or 0, apollo = ap}
    for i, p in ipairs(g.params) do
      idx = idx + 1
      self.state[p] = {seed = idx, step = 0}
      if ap and p:dim() ~= 2 then
        error(fmt("apollo: '%s' is %d-D; APOLLO projects 2-D weights", g.names and g.names[i] or "param", p:dim()), 0)
      end
    end
  end
  return self
end

function Opt:step(lr_factor)
  self.step_count = self.step_count + 1
  lr_factor = lr_factor or 1
  local b1, b2 = self.beta1, self.beta2
  for _, g in ipairs(self.groups) do
    local lr = g.lr * g.lr_scale * lr_factor
    local ap = g.apollo
    for _, p in ipairs(g.params) do
      if p.grad then
        local st = self.state[p]
        local raw = p.grad:contiguous()
        if raw:dtype() ~= "f32" then raw = raw:to("f32") end
        local upd, step_size = lfl.no_grad(function()
          local grad = ap and M.project(st, raw, ap, st.step) or raw
          if not st.m then st.m, st.v = lfl.zeros(grad:size()), lfl.zeros(grad:size()) end
          st.step = st.step + 1
          local dir = lfl.zeros(grad:size())
          K.adam_direction(grad, st.m, st.v, dir, b1, b2, self.eps) -- m / (sqrt(v) + eps)
          local ss = lr * sqrt(1 - b2 ^ st.step) / (1 - b1 ^ st.step)
          if not ap then return dir, ss end
          local factor
          if ap.scale_type == "channel" then
            -- the low-rank side's norm: over rows (dim 0) when rows < cols, else over columns
            local rows_lt = raw:size(1) < raw:size(2)
            local d = rows_lt and 1 or 2
            local nd = (dir * dir):sum(d):sqrt()
            local ng = (grad * grad):sum(d):sqrt() + 1e-8
            factor = nd / ng
            factor = rows_lt and factor:view(1, -1) or factor:view(-1, 1)
          else
            factor = norm(dir) / (norm(grad) + 1e-8)
          end
          local scaled = raw * factor
          local sq = sqrt(ap.scale)
          if self.scale_front then scaled = scaled * sq end
          -- the norm-growth limiter
          local n = norm(scaled)
          if st.scaled_norm then
            local limiter = max(n / (st.scaled_norm + 1e-8), 1.01) / 1.01
            scaled = scaled * (1 / limiter)
            st.scaled_norm = n / limiter
          else
            st.scaled_norm = n
          end
          if not self.scale_front then scaled = scaled * sq end
          return scaled:contiguous(), ss
        end)
        optim.update_param(p, function(q)
          K.sgd_step(q, upd, nil, step_size, 0, 0, false)
          if g.weight_decay > 0 then K.scale_(q, 1 - lr * g.weight_decay) end
        end)
      end
    end
  end
end

Opt.zero_grad = optim.zero_grad

-- Checkpoint states: moments (projected shapes), the projection, its seed, the limiter's norm.
function Opt:state_tensors()
  local out, meta = {}, {}
  for n, p in optim.named_params(self) do
    local st = self.state[p]
    if st and st.m then
      out[n .. ".exp_avg"], out[n .. ".exp_avg_sq"] = st.m, st.v
      if st.proj then out[n .. ".proj"] = st.proj end
      meta[n] = {step = st.step, seed = st.seed, side = st.side, scaled_norm = st.scaled_norm}
    end
  end
  return out, meta
end

function Opt:load_state_tensors(ts, meta)
  for n, p in optim.named_params(self) do
    local mt = meta[n]
    if ts[n .. ".exp_avg"] and type(mt) == "table" then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = mt.step,
        seed = mt.seed, side = mt.side, scaled_norm = mt.scaled_norm,
        proj = ts[n .. ".proj"] and ts[n .. ".proj"]:clone() or nil}
    end
  end
end

-- LlamaFactory's groups (_create_apollo_optimizer, the same split as GaLore's)
function M.from_args(model, names, params, a)
  local groups, ap, decay, nodecay = galore.target_groups(model, names, params, a, "apollo", a.apollo_target,
    {rank = a.apollo_rank, update_proj_gap = a.apollo_update_interval, scale = a.apollo_scale, proj = a.apollo_proj,
     proj_type = a.apollo_proj_type, scale_type = a.apollo_scale_type})
  print(fmt("[lfl] APOLLO: %d weights projected to rank %d (%s, %s scaling), %d others by AdamW", #ap.params,
    a.apollo_rank, a.apollo_proj, a.apollo_scale_type, #decay.params + #nodecay.params))
  return M.APOLLOAdamW(groups, {beta1 = a.adam_beta1, beta2 = a.adam_beta2, eps = a.adam_epsilon,
    scale_front = a.apollo_scale_front})
end

return M
