-- Muon (MomentUm Orthogonalized by Newton-Schulz), as LlamaFactory builds it
-- for `use_muon: true` (llamafactory/third_party/muon/muon.py and
-- trainer_utils._create_muon_optimizer): every trainable 2-D weight whose name
-- holds neither "embed" nor "lm_head" takes SGD momentum (Nesterov) whose
-- update is orthogonalized by 5 quintic Newton-Schulz iterations and scaled by
-- 0.2 sqrt(max(rows, cols)); every other parameter takes the optimizer's own
-- AdamW (eps added to sqrt(v) before the bias correction, as GaLore's). Both
-- decay the weight by lr * weight_decay before the update.
--
-- The reference runs Newton-Schulz in bfloat16 (each product, sum and scaling
-- rounded to bf16, the products accumulated in f32); lfl rounds at the same
-- places, so updates agree to bf16 precision (the order of the f32 sums differs).
local lfl = lfl
local K = lfl.optim_kernels
local optim = require("lfl.train.optim")
local sqrt, max, fmt = math.sqrt, math.max, string.format

local M = {}

-- the quintic's coefficients (muon.py zeropower_via_newtonschulz5)
M.NS_A, M.NS_B, M.NS_C = 3.4445, -4.7750, 2.0315

local function bf16(x) return x:to("bf16"):to("f32") end

-- Orthogonalizes a 2-D f32 matrix as the reference does in bf16; returns f32
-- holding bf16 values.
function M.newton_schulz(G, steps)
  assert(G:dim() == 2, "newton_schulz: a 2-D matrix")
  local a, b, c = M.NS_A, M.NS_B, M.NS_C
  return lfl.no_grad(function()
    local X = bf16(G)
    local tall = G:size(1) > G:size(2)
    if tall then X = X:transpose(1, 2):contiguous() end
    -- X.norm() of a bf16 tensor: f32 accumulation, rounded to bf16; + 1e-7 rounds back
    local n = bf16(lfl.tensor({sqrt((X * X):sum():item())})):item()
    n = bf16(lfl.tensor({n + 1e-7})):item()
    X = bf16(X / n)
    for _ = 1, steps do
      local A = bf16(lfl.matmul(X, X:transpose(1, 2)))
      -- the reference's `c * A @ A` is (c * A) @ A: Python's * and @ bind alike, left first
      local B = bf16(bf16(A * b) + bf16(lfl.matmul(bf16(A * c), A)))
      X = bf16(bf16(X * a) + bf16(lfl.matmul(B, X)))
    end
    if tall then X = X:transpose(1, 2):contiguous() end
    return X
  end)
end

-- LlamaFactory's split: Muon for 2-D weights other than embeddings and heads.
function M.uses_muon(name, p)
  return p:dim() == 2 and not name:find("embed", 1, true) and not name:find("lm_head", 1, true)
end

local Opt = {}
Opt.__index = Opt

-- groups: {params, names, lr, weight_decay} (names decide the split)
-- opts: lr, weight_decay, beta1, beta2, eps (the AdamW part's), momentum (0.95),
-- nesterov (true), ns_steps (5)
function M.Muon(groups, opts)
  opts = opts or {}
  local self = setmetatable({kind = "muon", groups = {}, state = {}, step_count = 0,
    beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.95, eps = opts.eps or 1e-8,
    momentum = opts.momentum or 0.95, nesterov = opts.nesterov ~= false, ns_steps = opts.ns_steps or 5,
    n_muon = 0, n_adamw = 0}, Opt)
  for gi, g in ipairs(groups) do
    local use = {}
    for i, p in ipairs(g.params) do
      local name = g.names and g.names[i] or fmt("g%d.%d", gi, i)
      use[i] = M.uses_muon(name, p)
      if use[i] then self.n_muon = self.n_muon + 1 else self.n_adamw = self.n_adamw + 1 end
    end
    self.groups[gi] = {params = g.params, names = g.names, lr = g.lr or opts.lr or 1e-3, lr_scale = g.lr_scale or 1,
      weight_decay = g.weight_decay or opts.weight_decay or 0, muon = use}
  end
  return self
end

local function decay(q, lr, wd)
  if wd ~= 0 then K.scale_(q, 1 - lr * wd) end
end

function Opt:step(lr_factor)
  self.step_count = self.step_count + 1
  lr_factor = lr_factor or 1
  local b1, b2, mom = self.beta1, self.beta2, self.momentum
  for _, g in ipairs(self.groups) do
    local lr = g.lr * g.lr_scale * lr_factor
    for i, p in ipairs(g.params) do
      if p.grad then
        local grad = p.grad:contiguous()
        if grad:dtype() ~= "f32" then grad = grad:to("f32") end
        local st = self.state[p]
        if g.muon[i] then
          if not st then st = {buf = lfl.zeros(grad:size())}; self.state[p] = st end
          local u = lfl.no_grad(function()
            -- buf = momentum * buf + g; Nesterov: g + momentum * buf
            K.scale_(st.buf, mom)
            K.sgd_step(st.buf, grad, nil, -1, 0, 0, false)
            local d = self.nesterov and (grad + st.buf * mom) or st.buf
            return M.newton_schulz(d, self.ns_steps)
          end)
          local adjusted = lr * 0.2 * sqrt(max(p:size(1), p:size(2)))
          optim.update_param(p, function(q)
            decay(q, lr, g.weight_decay)
            K.sgd_step(q, u, nil, adjusted, 0, 0, false) -- q -= adjusted * u
          end)
        else
          if not st then st = {m = lfl.zeros(grad:size()), v = lfl.zeros(grad:size()), step = 0}; self.state[p] = st end
          st.step = st.step + 1
          local dir = lfl.zeros(grad:size())
          K.adam_direction(grad, st.m, st.v, dir, b1, b2, self.eps)
          local step_size = lr * sqrt(1 - b2 ^ st.step) / (1 - b1 ^ st.step)
          optim.update_param(p, function(q)
            decay(q, lr, g.weight_decay)
            K.sgd_step(q, dir, nil, step_size, 0, 0, false)
          end)
        end
      end
    end
  end
end

Opt.zero_grad = optim.zero_grad

-- Checkpoint states: Muon's momentum buffers, the AdamW part's moments and steps.
function Opt:state_tensors()
  local out, meta = {}, {}
  for n, p in optim.named_params(self) do
    local st = self.state[p]
    if st and st.buf then
      out[n .. ".momentum_buffer"] = st.buf
    elseif st then
      out[n .. ".exp_avg"], out[n .. ".exp_avg_sq"] = st.m, st.v
      meta[n] = st.step
    end
  end
  return out, meta
end

function Opt:load_state_tensors(ts, meta)
  for n, p in optim.named_params(self) do
    if ts[n .. ".momentum_buffer"] then
      self.state[p] = {buf = ts[n .. ".momentum_buffer"]:clone()}
    elseif ts[n .. ".exp_avg"] then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq"]:clone(), step = meta[n] or 0}
    end
  end
end

-- The optimizer for `use_muon: true`: one group over every trainable parameter
-- with the run's weight_decay (LlamaFactory passes wd to both parts), AdamW's
-- betas and eps from adam_beta1/adam_beta2/adam_epsilon.
function M.from_args(names, params, a)
  local opt = M.Muon({{params = params, names = names, lr = a.learning_rate, weight_decay = a.weight_decay}},
    {beta1 = a.adam_beta1, beta2 = a.adam_beta2, eps = a.adam_epsilon})
  print(fmt("[lfl] Muon optimizer: %d Muon params and %d AdamW params", opt.n_muon, opt.n_adamw))
  return opt
end

return M
