-- Data-parallel training over the ranks of an MPI job (lfl.comm): the rank's
-- view of the job, a recipe's DeepSpeed config (its ZeRO stage), gradient
-- synchronisation in a few large buckets on the last micro-batch of a step,
-- clipping over the whole gradient, and ZeRO-1/2's sharded AdamW. A model on
-- a CUDA device (device: cuda, each rank on its own) has its gradients reduced
-- on the device through NCCL (lfl.comm.dp over device tensors); ZeRO on a
-- device is refused for now.
--
--   stage 0: gradients all-reduced (mean); every rank steps every parameter
--   stage 1: gradients all-reduced; each rank keeps the AdamW state of its 1/N
--            of the flat parameter vector, steps that slice, all-gathers the rest
--   stage 2: as 1, but gradients are reduce-scattered: a rank only receives its slice
--   stage 3: parameters partitioned too, gathered a layer at a time (lfl.train.zero3)
-- DeepSpeed's offload options are refused by name.
--
-- M.world(a) -> D or nil (one process); D:setup(t) after the optimizer exists;
-- D:sync(t) then D:clip(t, max_norm) each step (and ZeRO's optimizer); D:reduce_window(w) for the
-- logged metrics; D.writer (rank 0 writes files); D:barrier().
local lfl = lfl
local fmt, ceil, floor, sqrt, min = string.format, math.ceil, math.floor, math.sqrt, math.min

local M = {}

-- a bucket holds at most this many f32 values (64 MB): large enough that a
-- step is a few collectives, small enough that the staging buffer stays cheap
M.MAX_BUCKET = 2 ^ 24

local D = {}
D.__index = D

-- ---------------------------------------------------------------- DeepSpeed config

local function is_auto(v) return v == "auto" end

-- keys of a DeepSpeed config with no counterpart in lfl's CPU data parallel:
-- they tune DeepSpeed's own overlap and memory layout, and change no number
local NO_EFFECT = {
  zero_allow_untested_optimizer = true, allgather_partitions = true, overlap_comm = true, reduce_scatter = true,
  contiguous_gradients = true, round_robin_gradients = true, allgather_bucket_size = true, steps_per_print = true,
  wall_clock_breakdown = true, sub_group_size = true,
}

-- stage 3's keys (LlamaFactory's ds_z3_config.json): the persistence threshold
-- (tensors smaller than it stay gathered; "auto": 10 x hidden size, as
-- transformers fills it) and max_live_parameters (checked against what lfl
-- gathers at once: a layer and the embeddings/head) are honoured; prefetching
-- and reuse distance tune DeepSpeed's overlap and change no number; the 16-bit
-- gathered save must stay on (lfl always saves the gathered model)
local STAGE3 = {
  stage3_param_persistence_threshold = "persist", stage3_max_live_parameters = "max_live",
  stage3_prefetch_bucket_size = "no_effect", stage3_max_reuse_distance = "no_effect",
  stage3_gather_16bit_weights_on_model_save = "save16", stage3_gather_fp16_weights_on_model_save = "save16",
}
local STAGE3_KNOWN = "stage3_param_persistence_threshold, stage3_max_live_parameters, stage3_prefetch_bucket_size, "
  .. "stage3_max_reuse_distance, stage3_gather_16bit_weights_on_model_save"

-- where a LlamaFactory recipe's examples/deepspeed/ds_zN_config.json is not
-- next to it, the same file bundled in recipes/deepspeed/ is used
local function find_config(path)
  local f = io.open(path, "rb")
  if f then return f, path end
  local base = path:match("([^/]+)$")
  local bundled = lfl.home .. "/recipes/deepspeed/" .. base
  f = io.open(bundled, "rb")
  if f then
    print(fmt("[lfl] deepspeed: %s not found; using lfl's copy of LlamaFactory's %s", path, bundled))
    return f, bundled
  end
  error(fmt("deepspeed: cannot read '%s' (a DeepSpeed JSON config such as LlamaFactory's "
    .. "examples/deepspeed/ds_z2_config.json)", path), 0)
end

-- The ZeRO stage and bucket size from a.deepspeed; "auto" values take the
-- recipe's (as transformers' HfTrainerDeepSpeedConfig fills them), a number that
-- disagrees with the recipe is an error naming both (as transformers raises).
function M.deepspeed_config(a, world)
  if not a.deepspeed then return {stage = 0, bucket = M.MAX_BUCKET, ignored = {}} end
  local f, path = find_config(a.deepspeed)
  local text = f:read("*a")
  f:close()
  local cfg = lfl.json.decode(text, path)
  if type(cfg) ~= "table" then error(fmt("deepspeed: %s is not a JSON object", path), 0) end
  local function mismatch(key, have, want, from)
    error(fmt("deepspeed: %s: %s is %s but the recipe's %s is %s (set it to \"auto\" or to the same value)", path,
      key, tostring(have), from, tostring(want)), 0)
  end
  local accum = a.gradient_accumulation_steps
  local checks = {
    {"train_micro_batch_size_per_gpu", a.per_device_train_batch_size, "per_device_train_batch_size"},
    {"gradient_accumulation_steps", accum, "gradient_accumulation_steps"},
    {"train_batch_size", a.per_device_train_batch_size * accum * world,
     "per_device_train_batch_size x gradient_accumulation_steps x world size"},
    {"gradient_clipping", a.max_grad_norm, "max_grad_norm"},
  }
  for _, c in ipairs(checks) do
    local v = cfg[c[1]]
    if v ~= nil and not is_auto(v) and tonumber(v) ~= c[2] then mismatch(c[1], v, c[2], c[3]) end
  end
  for _, sec in ipairs({"optimizer", "scheduler"}) do
    if cfg[sec] ~= nil then
      error(fmt("deepspeed: %s: the '%s' section is not supported: lfl takes the optimizer and schedule from the "
        .. "recipe (optim, learning_rate, lr_scheduler_type); remove it", path, sec), 0)
    end
  end
  local fp16 = type(cfg.fp16) == "table" and cfg.fp16.enabled
  if fp16 == true then
    error(fmt("deepspeed: %s: fp16.enabled is true: lfl trains in f32 or bf16 (set it to \"auto\" or false)", path), 0)
  end
  local bf16 = type(cfg.bf16) == "table" and cfg.bf16.enabled
  if bf16 ~= nil and not is_auto(bf16) and (bf16 == true) ~= (a.bf16 == true or a.pure_bf16 == true) then
    mismatch("bf16.enabled", bf16, a.bf16 or false, "bf16")
  end
  local z = cfg.zero_optimization or {}
  if type(z) ~= "table" then error(fmt("deepspeed: %s: zero_optimization is not an object", path), 0) end
  local stage = z.stage or 0
  if stage ~= 0 and stage ~= 1 and stage ~= 2 and stage ~= 3 then
    error(fmt("deepspeed: %s: zero_optimization.stage must be 0, 1, 2 or 3, got %s", path, tostring(stage)), 0)
  end
  for _, k in ipairs({"offload_optimizer", "offload_param"}) do
    local o = z[k]
    if o ~= nil and not (type(o) == "table" and (o.device == nil or o.device == "none")) then
      error(fmt("deepspeed: %s: zero_optimization.%s is not implemented in lfl (its state already lives in host "
        .. "memory on a CPU run); remove the key", path, k), 0)
    end
  end
  local ignored = {}
  local z3 = {persist = "auto"}
  for k, v in pairs(z) do
    if k:match("^stage3_") then
      if stage ~= 3 then
        error(fmt("deepspeed: %s: zero_optimization.%s belongs to stage 3, but stage is %d", path, k, stage), 0)
      end
      local what = STAGE3[k]
      if not what then
        error(fmt("deepspeed: %s: zero_optimization.%s is not known to lfl (known stage-3 keys: %s)", path, k,
          STAGE3_KNOWN), 0)
      end
      local n = tonumber(v)
      if what == "save16" then
        if v == false then
          error(fmt("deepspeed: %s: zero_optimization.%s is false: lfl always saves the gathered model (DeepSpeed's "
            .. "per-rank shards are not written); set it to true", path, k), 0)
        end
      elseif not (is_auto(v) or (n and n >= 0)) then
        error(fmt("deepspeed: %s: zero_optimization.%s must be \"auto\" or a number >= 0, got %s", path, k,
          tostring(v)), 0)
      end
      if what == "persist" then z3.persist = is_auto(v) and "auto" or n
      elseif what == "max_live" then z3.max_live = n
      else ignored[#ignored + 1] = "zero_optimization." .. k end
    elseif k ~= "stage" and k ~= "reduce_bucket_size" and k ~= "offload_optimizer" and k ~= "offload_param" then
      if not NO_EFFECT[k] then
        error(fmt("deepspeed: %s: zero_optimization.%s is not known to lfl (known: stage, reduce_bucket_size, "
          .. "offload_optimizer, offload_param and DeepSpeed's tuning keys)", path, k), 0)
      end
      ignored[#ignored + 1] = "zero_optimization." .. k
    end
  end
  for k in pairs(cfg) do
    if NO_EFFECT[k] then ignored[#ignored + 1] = k end
  end
  local bucket = M.MAX_BUCKET
  local rbs = tonumber(z.reduce_bucket_size)
  if rbs and rbs >= 1 then bucket = min(bucket, floor(rbs)) end
  table.sort(ignored)
  -- stage 3 fills an "auto" reduce_bucket_size with hidden x hidden at set-up (as transformers does)
  z3.bucket_auto = z.reduce_bucket_size == nil or is_auto(z.reduce_bucket_size)
  return {stage = stage, bucket = bucket, path = path, ignored = ignored, z3 = z3}
end

-- ---------------------------------------------------------------- the job

-- The job's view when this process is one of several ranks (mpirun, or lfl
-- --nproc N), else nil. Sets the collectives' deadline from ddp_timeout.
function M.world(a)
  if not lfl.comm.launched() then
    if a.deepspeed then
      local ds = M.deepspeed_config(a, 1)
      print(fmt("[lfl] deepspeed: ZeRO stage %d in one process is plain training (start ranks with --nproc N)",
        ds.stage))
    end
    return nil
  end
  local info = lfl.comm.init(a.ddp_timeout and a.ddp_timeout > 0 and a.ddp_timeout or 1800)
  local ds = M.deepspeed_config(a, info.size)
  local self = setmetatable({rank = info.rank, size = info.size, local_rank = info.local_rank,
    local_size = info.local_size, timeout = info.timeout, stage = ds.stage, bucket = ds.bucket, ds = ds,
    writer = info.rank == 0}, D)
  if info.size == 1 then return self end
  -- only rank 0 reports (as transformers' replicas log warnings only); errors still reach stderr
  if info.rank > 0 and os.getenv("LFL_LOG_ALL_RANKS") ~= "1" then _G.print = function() end end
  if a.streaming then
    error("streaming with several ranks is not implemented: each rank would read the whole stream (set "
      .. "streaming: false, or train in one process)", 0)
  end
  if a.stage == "ppo" or a.stage == "grpo" then
    error(fmt("stage %s with several ranks is not implemented (its rollouts are not sharded): train in one process",
      a.stage), 0)
  end
  for _, k in ipairs({"use_galore", "use_badam", "use_muon", "use_adam_mini"}) do
    if self.stage > 0 and a[k] then
      error(fmt("deepspeed: ZeRO stage %d with %s is not supported (it replaces the AdamW whose state ZeRO "
        .. "shards); use ds_z0_config.json (plain data parallel)", self.stage, k), 0)
    end
  end
  if self.stage == 3 and a.stage ~= "sft" and a.stage ~= "pt" then
    error(fmt("deepspeed: ZeRO stage 3 with several ranks runs stage sft and pt; stage %s is not supported with it "
      .. "(use ds_z2_config.json)", tostring(a.stage)), 0)
  end
  if self.stage == 3 and a.finetuning_type == "oft" then
    error("deepspeed: ZeRO stage 3 with finetuning_type oft is not supported (use ds_z2_config.json)", 0)
  end
  if self.stage > 0 and a.device and a.device ~= "cpu" then
    error(fmt("deepspeed: ZeRO stage %d on a CUDA device is not implemented yet (its sharded optimizer state is "
      .. "kept on the host); use ds_z0_config.json (plain data parallel) or device: cpu", self.stage), 0)
  end
  if self.stage > 0 and lfl.args.OPTIMS[a.optim or "adamw_torch"] ~= "adamw" then
    error(fmt("deepspeed: ZeRO stage %d shards AdamW's state; optim %s is not supported with it", self.stage,
      tostring(a.optim)), 0)
  end
  return self
end

function D:barrier() lfl.comm.barrier() end

-- rank 0 runs fn first, the others after it (a cache it writes, they read)
function D:rank0_first(fn)
  if self.rank ~= 0 then self:barrier() end
  local ok, r1, r2 = pcall(fn)
  if self.rank == 0 then self:barrier() end
  if not ok then error(r1, 0) end
  return r1, r2
end

-- the rank's micro-batches of an epoch of nglobal: every rank the same number,
-- the last ones taking micro-batches from the epoch's start (as DistributedSampler pads)
function D:batches_per_epoch(nglobal) return ceil(nglobal / self.size) end

-- the 0-based global micro-batch of this rank's b-th (1-based) micro-batch
function D:global_batch(b, nglobal)
  local g = (b - 1) * self.size + self.rank
  return g % nglobal
end

-- ---------------------------------------------------------------- set-up

local function check_f32(names, params)
  for i, p in ipairs(params) do
    if not p:is_contiguous() then
      error(fmt("data parallel: %s is not contiguous", names[i] or ("parameter " .. i)), 0)
    end
    if p:dtype() ~= "f32" then
      error(fmt("data parallel: %s is %s; lfl's ranks reduce f32 gradients only (pure_bf16 with several ranks is "
        .. "not supported: use bf16, which keeps f32 masters)", names[i] or ("parameter " .. i), p:dtype()), 0)
    end
  end
end

-- whether the decoder's per-layer hooks can carry ZeRO-2 (lfl.train.zero3): a
-- decoder trained by sft or pt with gradient checkpointing (whose recompute is
-- where a layer's backward is seen to end); otherwise ZeRO-2 reduce-scatters the
-- whole gradient at the step
function M.layerwise(t)
  local a = t.args
  return (a.stage == "sft" or a.stage == "pt") and a.finetuning_type ~= "oft" and not a.disable_gradient_checkpointing
    and t.model.arch ~= nil and type(t.model.arch.hidden) == "number" and not t.model.mod
end

-- after the optimizer exists: the bucket layout over the trainable tensors,
-- rank 0's weights everywhere, and for ZeRO the sharded optimizer in its place
function D:setup(t)
  local params, names = {}, {}
  for _, g in ipairs(t.groups) do
    for i, p in ipairs(g.params) do params[#params + 1] = p; names[#names + 1] = g.names and g.names[i] or "" end
  end
  -- the value head and other extra trainables are in t.groups already (trainer.lua adds them)
  check_f32(names, params)
  self.params, self.names = params, names
  self.dp = lfl.comm.dp(params, self.bucket)
  -- this rank's slice as runs inside the tensors, and which tensors it touches
  self.pieces, self.owns = self.dp:pieces(), {}
  for _, pc in ipairs(self.pieces) do self.owns[pc.tensor] = true end
  -- the same start on every rank, whatever each computed (PiSSA's SVD, thread counts)
  lfl.no_grad(function() self.dp:broadcast(params, 0) end)
  local total = 0
  for _, p in ipairs(params) do total = total + p:numel() end
  if self.stage == 3 then
    self.dp:trim()
    if not t.model.arch or type(t.model.arch.hidden) ~= "number" then
      error("deepspeed: ZeRO stage 3 needs a decoder model (its layers gather their parameters)", 0)
    end
    if t.model.mod then
      error("deepspeed: ZeRO stage 3 with a mixture-of-depths model is not supported (its routed layers do not "
        .. "gather their parameters); use ds_z2_config.json", 0)
    end
    local persist = self.ds.z3.persist
    if persist == "auto" then persist = 10 * t.model.arch.hidden end
    -- small buckets: a layer's collectives stage a few MB at a time, not 64 MB
    if self.ds.z3.bucket_auto then self.bucket = min(self.bucket, t.model.arch.hidden ^ 2) end
    self.z3 = require("lfl.train.zero3").new(self, t.model, {persist = persist, max_live = self.ds.z3.max_live})
    t.optimizer = require("lfl.train.zero3").optimizer(self.z3, t.optimizer)
  elseif self.stage == 2 and M.layerwise(t) then
    -- ZeRO-2 a layer at a time (lfl.train.zero3 with the parameters whole): each layer's
    -- gradient is reduce-scattered and freed when its backward is over
    self.layerwise = true
    self.z3 = require("lfl.train.zero3").new(self, t.model, {keep_params = true})
    t.optimizer = require("lfl.train.zero3").optimizer(self.z3, t.optimizer)
  elseif self.stage > 0 then t.optimizer = M.ZeroAdamW(self, t.optimizer) end
  self.total = total
  self.setup_bytes = lfl.comm.stats().bytes -- what the steps add is reported apart
  if self.writer then
    print(fmt("[lfl] data parallel: %d ranks (%d on this machine), ZeRO stage %d, %d trainable values in %d "
      .. "bucket(s), ddp_timeout %gs%s%s", self.size, self.local_size, self.stage, total, self.dp:buckets(),
      self.timeout, self.layerwise and "; gradients reduce-scattered a layer at a time during backward"
      or self.z3 and fmt("; parameters partitioned: %d of %d values on this rank, gathered a layer at a "
      .. "time%s", self.z3.shard_numel, total, self.z3.persist > 0 and fmt(" (tensors under %d values stay gathered)",
      self.z3.persist) or "") or "",
      #(self.ds.ignored or {}) > 0 and fmt("; no effect in lfl: %s", table.concat(self.ds.ignored, ", "))
      or ""))
  end
end

-- ---------------------------------------------------------------- each step

-- zeros of p's shape where p lives (a missing gradient of a parameter on a device)
local function zeros_like(p)
  local z = lfl.zeros(p:size())
  if p:device() ~= "cpu" then z = z:to(p:device()) end
  return z
end

-- the gradients of the step, averaged over the ranks: all-reduced in buckets
-- (stages 0, 1), or reduce-scattered so that only this rank's slice is
-- reduced (stage 2; gradients of tensors outside the slice are dropped)
function D:sync(t)
  -- stage 3: each micro-batch's backward has reduce-scattered its layers already
  if self.z3 then return end
  local grads = {}
  for i, p in ipairs(self.params) do
    local g = p.grad
    if g and not g:is_contiguous() then g = g:contiguous(); p.grad = g end
    grads[i] = g
  end
  if self.stage == 2 then
    for i, p in ipairs(self.params) do
      if not grads[i] then grads[i] = zeros_like(p); p.grad = grads[i] end
    end
    self.dp:reduce_scatter_mean_inplace(grads)
    for i, p in ipairs(self.params) do if not self.owns[i] then p.grad = nil end end
    return
  end
  -- a parameter without a gradient on this rank (unused by its batches) adds zeros; one
  -- without a gradient on any rank (BAdam's inactive blocks) keeps none, so that the
  -- optimizer leaves it alone as it would in one process
  local have, missing = {}, false
  for i, p in ipairs(self.params) do
    have[i] = grads[i] and 1 or 0
    if not grads[i] then grads[i] = zeros_like(p); p.grad = grads[i]; missing = true end
  end
  if lfl.comm.all_reduce({missing and 1 or 0}, "max")[1] > 0 then have = lfl.comm.all_reduce(have) else have = nil end
  self.dp:all_reduce_mean(grads)
  if have then
    for i, p in ipairs(self.params) do if have[i] == 0 then p.grad = nil end end
  end
end

-- this rank's slice of the gradient, one flat view per piece (stage 2)
local function grad_pieces(self)
  local out = {}
  lfl.no_grad(function()
    for k, pc in ipairs(self.pieces) do
      out[k] = self.params[pc.tensor].grad:view(-1):narrow(1, pc.offset + 1, pc.len)
    end
  end)
  return out
end

-- the global gradient norm, clipped to max_norm (clip_grad_norm_ over the whole gradient)
function D:clip(t, max_norm)
  if self.z3 then return self.z3:clip(max_norm) end
  if self.stage < 2 then return t:clip_grad_norm(max_norm) end
  local K = lfl.optim_kernels
  local views, mine = grad_pieces(self), 0
  for _, g in ipairs(views) do mine = mine + K.sum_squares(g) end
  local norm = sqrt(lfl.comm.all_reduce({mine})[1])
  if max_norm and max_norm > 0 then
    local coef = max_norm / (norm + 1e-6)
    if coef < 1 then for _, g in ipairs(views) do K.scale_(g, coef) end end
  end
  return norm
end

-- the logging window's approach metrics (sums and counts) summed over the ranks
function D:reduce_window(w)
  local keys = {}
  for k in pairs(w.sums) do keys[#keys + 1] = k end
  table.sort(keys)
  -- the key set can differ between ranks (a metric only some batches produce): agree on its size first
  local n = lfl.comm.all_reduce({#keys}, "max")[1]
  local m = lfl.comm.all_reduce({#keys}, "min")[1]
  if n ~= m then
    error(fmt("data parallel: the ranks logged different metrics (%d vs %d names): cannot average them", m, n), 0)
  end
  local v = {}
  for i, k in ipairs(keys) do v[2 * i - 1], v[2 * i] = w.sums[k], w.counts[k] end
  v = lfl.comm.all_reduce(v)
  for i, k in ipairs(keys) do w.sums[k], w.counts[k] = v[2 * i - 1], v[2 * i] end
end

-- every rank's value of x (a number), as a list ordered by rank
function D:gather_number(x)
  local v = {}
  for r = 1, self.size do v[r] = 0 end
  v[self.rank + 1] = x
  return lfl.comm.all_reduce(v)
end

-- ---------------------------------------------------------------- ZeRO-1/2 AdamW

-- AdamW over this rank's slice of the flat trainable vector: exp_avg and
-- exp_avg_sq are flat tensors of shard_numel (1/N of the state), the update
-- runs in place on the parameters' own slice (flat views, each piece keeping
-- its group's lr and weight decay), then every rank's slice is all-gathered
-- into the parameters. Checkpoints hold the full per-parameter state
-- (gathered), so a run resumes with any world size.
local Z = {}
Z.__index = Z

function M.ZeroAdamW(dist, base)
  local n = dist.dp:shard_numel()
  local self = setmetatable({kind = "adamw", zero = dist.stage, dist = dist, base = base, step_count = 0,
    beta1 = base.beta1, beta2 = base.beta2, eps = base.eps, groups = base.groups,
    m = lfl.zeros(n), v = lfl.zeros(n)}, Z)
  -- which group each trainable tensor is in
  local group_of, k = {}, 0
  for _, g in ipairs(base.groups) do
    for _ = 1, #g.params do k = k + 1; group_of[k] = g end
  end
  self.pieces = {}
  lfl.no_grad(function()
    for _, pc in ipairs(dist.pieces) do
      local s = pc.shard_offset + 1
      self.pieces[#self.pieces + 1] = {group = group_of[pc.tensor],
        p = dist.params[pc.tensor]:view(-1):narrow(1, pc.offset + 1, pc.len),
        m = self.m:narrow(1, s, pc.len), v = self.v:narrow(1, s, pc.len)}
    end
  end)
  return self
end

function Z:step(lr_factor)
  lr_factor = lr_factor or 1
  local dist = self.dist
  self.step_count = self.step_count + 1
  local K = lfl.optim_kernels
  local grads = grad_pieces(dist)
  for k, pc in ipairs(self.pieces) do
    local g = pc.group
    K.adamw_step(pc.p, grads[k], pc.m, pc.v, {lr = g.lr * (g.lr_scale or 1) * lr_factor, beta1 = self.beta1,
      beta2 = self.beta2, eps = self.eps, weight_decay = g.weight_decay, step = self.step_count})
  end
  lfl.no_grad(function() dist.dp:all_gather_inplace(dist.params) end)
end

function Z:zero_grad()
  for _, p in ipairs(self.dist.params) do p.grad = nil end
end

-- the full state per parameter (a collective: every rank calls it), as AdamW:state_tensors names it
function Z:state_tensors()
  local dist, out, meta = self.dist, {}, {}
  if self.step_count == 0 then return out, meta end
  for _, which in ipairs({{"m", "exp_avg"}, {"v", "exp_avg_sq"}}) do
    local full = {}
    for i, p in ipairs(dist.params) do full[i] = lfl.zeros(p:size()) end
    dist.dp:all_gather(self[which[1]], full)
    for i, n in ipairs(dist.names) do out[n .. "." .. which[2]] = full[i] end
  end
  for _, n in ipairs(dist.names) do meta[n] = self.step_count end
  return out, meta
end

-- from a checkpoint written with any world size (or by the plain AdamW)
function Z:load_state_tensors(ts, meta)
  local dist = self.dist
  local ms, vs, step = {}, {}, 0
  for i, n in ipairs(dist.names) do
    local m, v = ts[n .. ".exp_avg"], ts[n .. ".exp_avg_sq"]
    if m and v then
      ms[i], vs[i] = m:contiguous():to("f32"), v:contiguous():to("f32")
      step = math.max(step, meta[n] or 0)
    end
  end
  dist.dp:pack(ms, self.m)
  dist.dp:pack(vs, self.v)
  self.step_count = step
end

M._D = D -- for tests
return M
