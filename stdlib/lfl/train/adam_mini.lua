-- Adam-mini (Zhang et al. 2024; adam_mini.Adam_mini 1.1.1, as LlamaFactory's
-- trainer_utils._create_adam_mini_optimizer builds it for `use_adam_mini`):
-- Adam's first moment per element, but one second moment per block, the mean
-- of g^2 over it:
--   query/key weights: one per attention head (rows of dim * dim / n_heads elements)
--   value, output projection, MLP, embedding, head: one per output row (neuron)
--   biases: Adam's own, one per element
--   anything else (norms): one for the whole tensor
-- The block kind comes from the parameter's name, as the reference's substring
-- sets decide it. Weight decay (decoupled, before the update) skips names with
-- "norm", "ln" or "bias". The step: p -= lr * m / bc1 / (sqrt(vmean / bc2) + eps).
local lfl = lfl
local K = lfl.optim_kernels
local optim = require("lfl.train.optim")
local sqrt, fmt = math.sqrt, string.format

local M = {}

local EMBD = {"embed", "embd", "wte"}
local OUTPUT = {"lm_head", "output", "final_layer"}
local WQK = {"k_proj", "q_proj", "wq", "wk", "query", "key"}
local WV = {"v_proj", "wv", "value"}
local ATTN_PROJ = {"o_proj", "wo", "attn.proj"}
local MLP = {"feed_forward", "linear", "mlp"}

local function any(name, list)
  for _, s in ipairs(list) do if name:find(s, 1, true) then return true end end
  return false
end

-- "adam" | "head" | "row" | "block": how a parameter's second moment is shared
function M.kind(name)
  name = name:lower()
  if name:find("bias", 1, true) then return "adam" end
  if any(name, WQK) then return "head" end
  if any(name, EMBD) or any(name, OUTPUT) or any(name, WV) or any(name, MLP) or any(name, ATTN_PROJ) then return "row" end
  return "block"
end

function M.decays(name)
  name = name:lower()
  return not (name:find("norm", 1, true) or name:find("ln", 1, true) or name:find("bias", 1, true))
end

local Opt = {}
Opt.__index = Opt

-- named: {names = {...}, params = {...}}; opts: lr, beta1, beta2, eps,
-- weight_decay, dim, n_heads (n_kv_heads only matters through the shapes)
function M.AdamMini(names, params, opts)
  assert(opts.dim and opts.n_heads, "Adam-mini needs dim and n_heads")
  if (opts.dim * opts.dim) % opts.n_heads ~= 0 then
    error(fmt("Adam-mini: dim * dim (%d) is not divisible by n_heads (%d)", opts.dim * opts.dim, opts.n_heads), 0)
  end
  local self = setmetatable({kind = "adam_mini", names = names, params = params, state = {}, step_count = 0,
    lr = opts.lr or 1e-3, beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.999, eps = opts.eps or 1e-8,
    weight_decay = opts.weight_decay or 0, head_numel = opts.dim * opts.dim / opts.n_heads, kinds = {}}, Opt)
  -- optim.named_params and the checkpoint code read groups
  self.groups = {{params = params, names = names, lr = self.lr, weight_decay = self.weight_decay, lr_scale = 1}}
  for i, n in ipairs(names) do
    local k = M.kind(n)
    if k == "head" and params[i]:numel() % self.head_numel ~= 0 then
      error(fmt("Adam-mini: '%s' (%d elements) does not split into heads of dim * dim / n_heads = %d elements", n,
        params[i]:numel(), self.head_numel), 0)
    end
    if k == "row" and params[i]:dim() ~= 2 then
      error(fmt("Adam-mini: '%s' is %d-D; its block kind takes one second moment per row of a matrix", n,
        params[i]:dim()), 0)
    end
    self.kinds[i] = k
  end
  return self
end

-- the per-block mean of g^2, shaped to broadcast against the moment's view
local function block_mean_sq(kind, g, head_numel)
  if kind == "adam" then return g * g end
  if kind == "head" then
    local v = g:reshape(-1, head_numel)
    return (v * v):mean(2):view(-1, 1)
  end
  if kind == "row" then return (g * g):mean(2):view(-1, 1) end
  return lfl.tensor({(g * g):sum():item() / g:numel()})
end

function Opt:step(lr_factor)
  self.step_count = self.step_count + 1
  local lr = self.lr * (lr_factor or 1)
  local b1, b2, eps = self.beta1, self.beta2, self.eps
  for i, p in ipairs(self.params) do
    if p.grad then
      local kind, name = self.kinds[i], self.names[i]
      local g = p.grad:contiguous()
      if g:dtype() ~= "f32" then g = g:to("f32") end
      local st = self.state[p]
      local upd = lfl.no_grad(function()
        local shaped = kind == "head" and g:reshape(-1, self.head_numel) or g
        local tmp = block_mean_sq(kind, g, self.head_numel)
        if not st then
          st = {m = lfl.zeros(shaped:size()), v = lfl.zeros(tmp:size()), step = 0}
          self.state[p] = st
        end
        st.step = st.step + 1
        -- m.lerp_(g, 1 - b1); vmean = b2 vmean + (1 - b2) tmp (in place: the states are the checkpoint's)
        K.scale_(st.m, b1)
        K.sgd_step(st.m, shaped, nil, -(1 - b1), 0, 0, false)
        K.scale_(st.v, b2)
        K.sgd_step(st.v, tmp:contiguous(), nil, -(1 - b2), 0, 0, false)
        local bc1, bc2 = 1 - b1 ^ st.step, 1 - b2 ^ st.step
        local h = st.v:sqrt() / sqrt(bc2) + eps
        return ((st.m / h) * (lr / bc1)):reshape(p:size()):contiguous()
      end)
      local wd = M.decays(name) and self.weight_decay or 0
      optim.update_param(p, function(q)
        if wd > 0 then K.scale_(q, 1 - lr * wd) end
        K.sgd_step(q, upd, nil, 1, 0, 0, false)
      end)
    end
  end
end

function Opt:zero_grad()
  for _, p in ipairs(self.params) do p.grad = nil end
end

-- states: m (element-wise) and vmean (one per block) under Adam's names
function Opt:state_tensors()
  local out, meta = {}, {}
  for i, p in ipairs(self.params) do
    local st = self.state[p]
    if st then
      local n = self.names[i]
      out[n .. ".exp_avg"], out[n .. ".exp_avg_sq_block"] = st.m, st.v
      meta[n] = st.step
    end
  end
  return out, meta
end

function Opt:load_state_tensors(ts, meta)
  for i, p in ipairs(self.params) do
    local n = self.names[i]
    if ts[n .. ".exp_avg"] then
      self.state[p] = {m = ts[n .. ".exp_avg"]:clone(), v = ts[n .. ".exp_avg_sq_block"]:clone(), step = meta[n] or 0}
    end
  end
end

-- Resident bytes of the states (m is full; vmean is one value a block).
function Opt:state_bytes()
  local b = 0
  for _, st in pairs(self.state) do b = b + 4 * (st.m:numel() + st.v:numel()) end
  return b
end

function M.from_args(names, params, a, model)
  local cfg = model.config or {}
  local dim = cfg.hidden_size or model.arch.hidden
  local heads = cfg.num_attention_heads or model.arch.heads
  local opt = M.AdamMini(names, params, {lr = a.learning_rate, beta1 = a.adam_beta1, beta2 = a.adam_beta2,
    eps = a.adam_epsilon, weight_decay = a.weight_decay, dim = dim, n_heads = heads})
  local count = {}
  for _, k in ipairs(opt.kinds) do count[k] = (count[k] or 0) + 1 end
  print(fmt("[lfl] Adam-mini: %d tensors by head, %d by row, %d as one block, %d element-wise (dim %d, %d heads)",
    count.head or 0, count.row or 0, count.block or 0, count.adam or 0, dim, heads))
  return opt
end

return M
