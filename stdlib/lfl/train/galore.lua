-- GaLore (Zhao et al. 2024, galore_torch.GaLoreAdamW as LlamaFactory builds it):
-- the gradient of each targeted 2-D weight is projected to rank r with a basis from
-- the SVD of the gradient itself, refreshed every update_proj_gap steps; Adam's
-- states live in the projected space; the normalized update is projected back and
-- scaled by `scale`. Every parameter (projected or not) takes GaLoreAdamW's Adam:
-- eps added to sqrt(v) before the bias correction, decoupled weight decay after
-- the update.
local lfl = lfl
local K = lfl.optim_kernels
local fmt, sqrt, min = string.format, math.sqrt, math.min

local M = {}

-- SVDs of matrices whose smaller side is above this use the randomized SVD
-- (exact one-sided Jacobi is O(n^3) per refresh; GaLore only needs the top r).
M.EXACT_SVD_MAX = 256

local PROJ_TYPES = {std = true, reverse_std = true, right = true, left = true, full = true}

-- Which side a gradient of shape [m, n] is projected on (GaLoreProjector.project).
function M.side(proj_type, m, n)
  if proj_type == "std" then return m >= n and "right" or "left" end
  if proj_type == "reverse_std" then return m >= n and "left" or "right" end
  return proj_type
end

-- The orthogonal factor(s) of grad's top-r SVD for a side (get_orthogonal_matrix).
function M.orthogonal_matrix(grad, rank, side, exact)
  local m, n = grad:size(1), grad:size(2)
  local r = min(rank, m, n)
  local U, Vt
  if exact == nil then exact = min(m, n) <= M.EXACT_SVD_MAX end
  if exact then
    local _
    U, _, Vt = lfl.linalg.svd(grad)
    U, Vt = U:narrow(2, 1, r):contiguous(), Vt:narrow(1, 1, r):contiguous()
  else
    local _, V
    U, _, V = lfl.linalg.svd_lowrank(grad, r, 2)
    Vt = V:transpose(1, 2):contiguous()
  end
  if side == "right" then return Vt end
  if side == "left" then return U end
  return {U, Vt}
end

function M.project(st, grad, cfg, iter)
  local m, n = grad:size(1), grad:size(2)
  local side = M.side(cfg.proj_type, m, n)
  if not st.ortho or iter % cfg.update_proj_gap == 0 then
    st.ortho, st.side = M.orthogonal_matrix(grad, cfg.rank, side, cfg.exact_svd), side
    st.refreshes = (st.refreshes or 0) + 1
  end
  local P = st.ortho
  if side == "right" then return lfl.matmul(grad, P:transpose(1, 2)):contiguous() end
  if side == "left" then return lfl.matmul(P:transpose(1, 2), grad):contiguous() end
  return lfl.matmul(lfl.matmul(P[1]:transpose(1, 2), grad), P[2]:transpose(1, 2)):contiguous()
end

function M.project_back(st, low, scale)
  local P, side = st.ortho, st.side
  local full
  if side == "right" then full = lfl.matmul(low, P)
  elseif side == "left" then full = lfl.matmul(P, low)
  else full = lfl.matmul(lfl.matmul(P[1], low), P[2]) end
  return (full * scale):contiguous()
end

local Opt = {}
Opt.__index = Opt

-- groups: {params, names, lr, weight_decay, galore = {rank=, update_proj_gap=, scale=, proj_type=}|nil}
-- opts: lr, beta1, beta2, eps, weight_decay
function M.GaLoreAdamW(groups, opts)
  opts = opts or {}
  local self = setmetatable({kind = "galore_adamw", groups = {}, state = {}, step_count = 0,
    beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.999, eps = opts.eps or 1e-6}, Opt)
  for gi, g in ipairs(groups) do
    local gal = g.galore
    if gal then
      if not PROJ_TYPES[gal.proj_type or "std"] then
        error(fmt("galore_proj_type '%s' is not supported (std, reverse_std, right, left, full)", tostring(gal.proj_type)), 0)
      end
      gal = {rank = gal.rank or 128, update_proj_gap = gal.update_proj_gap or 50, scale = gal.scale or 1.0,
             proj_type = gal.proj_type or "std", exact_svd = gal.exact_svd}
      for i, p in ipairs(g.params) do
        if p:dim() ~= 2 then
          error(fmt("galore: '%s' is %d-D; GaLore projects 2-D weights only", g.names and g.names[i] or "param " .. i,
            p:dim()), 0)
        end
      end
    end
    self.groups[gi] = {params = g.params, names = g.names, lr = g.lr or opts.lr or 1e-3, lr_scale = g.lr_scale or 1,
      weight_decay = g.weight_decay or opts.weight_decay or 0, galore = gal}
  end
  return self
end

function Opt:step(lr_factor)
  self.step_count = self.step_count + 1
  lr_factor = lr_factor or 1
  local b1, b2 = self.beta1, self.beta2
  for _, g in ipairs(self.groups) do
    local lr = g.lr * g.lr_scale * lr_factor
    for _, p in ipairs(g.params) do
      if p.grad then
        local st = self.state[p]
        if not st then st = {step = 0}; self.state[p] = st end
        -- pure_bf16: a bf16 parameter has a bf16 gradient; projection, moments and the
        -- update run in f32 and the weight is written back rounded (optim.update_param)
        local grad = p.grad:contiguous()
        if grad:dtype() ~= "f32" then grad = grad:to("f32") end
        if g.galore then grad = M.project(st, grad, g.galore, st.step) end
        if not st.m then st.m, st.v = lfl.zeros(grad:size()), lfl.zeros(grad:size()) end
        st.step = st.step + 1
        local dir = lfl.zeros(grad:size())
        K.adam_direction(grad, st.m, st.v, dir, b1, b2, self.eps)
        local step_size = lr * sqrt(1 - b2 ^ st.step) / (1 - b1 ^ st.step)
        if g.galore then dir = M.project_back(st, dir, g.galore.scale) end
        require("lfl.train.optim").update_param(p, function(q)
          K.sgd_step(q, dir, nil, step_size, 0, 0, false) -- q -= step_size * dir
          if g.weight_decay > 0 then K.scale_(q, 1 - lr * g.weight_decay) end
        end)
      end
    end
  end
end

function Opt:zero_grad()
  for _, g in ipairs(self.groups) do for _, p in ipairs(g.params) do p.grad = nil end end
end

-- Checkpoint states: moments (projected shapes) and the projection bases.
function Opt:state_tensors()
  local out, meta = {}, {}
  for n, p in require("lfl.train.optim").named_params(self) do
    local st = self.state[p]
    if st and st.m then
      out[n .. ".exp_avg"], out[n .. ".exp_avg_sq"] = st.m, st.v
      if st.ortho then
        if st.side == "full" then out[n .. ".ortho_left"], out[n .. ".ortho_right"] = st.ortho[1], st.ortho[2]
        else out[n .. ".ortho"] = st.ortho end
      end
      meta[n] = {step = st.step, side = st.side}
    end
  end
  return out, meta
end

function Opt:load_state_tensors(ts, meta)
  for n, p in require("lfl.train.optim").named_params(self) do
    local mt = meta[n]
    if ts[n .. ".exp_avg"] and type(mt) == "table" then
      local st = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = mt.step, side = mt.side}
      if ts[n .. ".ortho"] then st.ortho = ts[n .. ".ortho"]:clone()
      elseif ts[n .. ".ortho_left"] then st.ortho = {ts[n .. ".ortho_left"]:clone(), ts[n .. ".ortho_right"]:clone()} end
      self.state[p] = st
    end
  end
end

-- LlamaFactory's groups for a projecting optimizer (_create_galore_optimizer,
-- _create_apollo_optimizer): the 2-D weights of the `target` linears (all
-- linears but lm_head for "all") in one group with weight decay whose `key`
-- field holds `cfg`; the rest split into decay / no-decay groups. Returns the
-- non-empty groups (no-decay, decay, projected) and the three groups.
function M.target_groups(model, names, params, a, key, target_arg, cfg)
  local peft = require("lfl.train.peft")
  local target = {}
  for _, mod in ipairs(peft.target_modules(model, target_arg)) do target[mod .. ".weight"] = true end
  local proj = {params = {}, names = {}, lr = a.learning_rate, weight_decay = a.weight_decay, [key] = cfg}
  local decay = {params = {}, names = {}, lr = a.learning_rate, weight_decay = a.weight_decay}
  local nodecay = {params = {}, names = {}, lr = a.learning_rate, weight_decay = 0}
  for i, n in ipairs(names) do
    local g = target[n] and params[i]:dim() == 2 and proj or ((n:find("norm") or n:find("bias")) and nodecay or decay)
    g.params[#g.params + 1] = params[i]
    g.names[#g.names + 1] = n
  end
  if #proj.params == 0 then
    error(fmt("%s: no trainable 2-D weight matches %s_target '%s'", key, key, tostring(target_arg)), 0)
  end
  local out = {}
  for _, g in ipairs({nodecay, decay, proj}) do if #g.params > 0 then out[#out + 1] = g end end
  return out, proj, decay, nodecay
end

function M.groups(model, names, params, a)
  return (M.target_groups(model, names, params, a, "galore", a.galore_target, {rank = a.galore_rank,
    update_proj_gap = a.galore_update_interval, scale = a.galore_scale, proj_type = a.galore_proj_type}))
end

return M
