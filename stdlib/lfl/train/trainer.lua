-- The training loop: model + tokenizer + template + data + method set up from
-- recipe arguments, epochs/max_steps with gradient accumulation, clipping, the
-- schedule, progress and logs (trainer_log.jsonl, trainer_state.json), evaluation,
-- checkpoints (atomic, resumable step for step), and the final save.
--
-- lfl.trainer(args) sets a run up and returns an lfl.Trainer (lua/l_trainer.c:
-- the counters, loss sums and clipping live in C, the Lua-side parts in its
-- environment table); t:step() runs one optimizer step, t:evaluate(),
-- t:save([parent]), t:load(dir), t:train(hooks) (steps until done, then
-- t:finish()), t.state (a snapshot table). M.run(a, hooks) = new + train.
local lfl = lfl
local peft = require("lfl.train.peft")
local optim = require("lfl.train.optim")
local fmt, floor, ceil, max, min = string.format, math.floor, math.ceil, math.max, math.min

local M = {}

local function mkdir(p) lfl.fs.mkdir(p) end
local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
local function write_atomic(path, text) require("lfl.model").write_atomic(path, text) end
-- NaN / Infinity (a diverged step) are written as Python's json writes them (HF's trainer_state.json)
local function json(v) return lfl.json.encode(v, {indent = true, allow_nan = true}) end
local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return lfl.json.decode(s, path)
end


-- LLaMA Pro: the expanded blocks that train (peft.llama_pro_layers), logged as
-- LlamaFactory logs them
local function llama_pro_layers(model, a)
  local set = peft.llama_pro_layers(model.arch.layers, a.freeze_trainable_layers)
  local ids = {}
  for l in pairs(set) do ids[#ids + 1] = l end
  table.sort(ids)
  print(fmt("[lfl] LLaMA Pro: %s the expanded blocks, layers %s", a.finetuning_type == "lora" and "LoRA on" or "training",
    table.concat(ids, ",")))
  return set
end
local function list_checkpoints(dir)
  local steps = {}
  if lfl.fs.isdir(dir) then
    for _, name in ipairs(lfl.fs.list(dir)) do
      local n = name:match("^checkpoint%-(%d+)$")
      if n then steps[#steps + 1] = tonumber(n) end
    end
  end
  table.sort(steps)
  return steps
end
M.list_checkpoints = list_checkpoints

-- ---------------------------------------------------------------- set-up

-- The tokenizer that goes with a model path: tokenizer.json in an HF folder,
-- or the GGUF metadata.
function M.load_tokenizer(model, args)
  local path = model.path
  if not lfl.tokenizer then error("trainer: the tokenizer module is not available", 0) end
  return lfl.tokenizer.load(path)
end

-- Trainable weights loaded from a safetensors file are read-only mappings of it;
-- the optimizers update in place, so they train private copies (select_trainable
-- makes them; this is for callers that pick parameters themselves).
function M.writable_params(model, names, params)
  for i, n in ipairs(names) do
    local c = model.params[n]:detach():clone():requires_grad()
    model.params[n], params[i] = c, c
  end
  return names, params
end

-- A MoE model trains with its router's load-balancing loss (LlamaFactory's
-- configure_moe sets output_router_logits for training), moe_aux_loss_coef
-- replacing config.json's router_aux_loss_coef; DeepSeek-V3's routing balances
-- itself (e_score_correction_bias) and transformers has no auxiliary loss for it
function M.setup_moe(model, a)
  if model.arch.moe and model.arch.aux_free then
    if a.moe_aux_loss_coef then
      error(fmt("moe_aux_loss_coef: %s has no load-balancing loss (auxiliary-loss-free routing); remove the key",
        model.arch.name), 0)
    end
  elseif model.arch.moe and model.arch.aux_config_only then
    -- GPT-OSS: LlamaFactory's configure_moe leaves its config alone (output_router_logits,
    -- router_aux_loss_coef as config.json says) and ignores moe_aux_loss_coef
    if a.moe_aux_loss_coef then
      print(fmt("[lfl] note: moe_aux_loss_coef is not applied to %s, as LlamaFactory does not apply it; the " ..
        "load-balancing loss is config.json's (output_router_logits %s, router_aux_loss_coef %s)", model.arch.name,
        tostring(model.arch.router_aux), tostring(model.arch.router_aux_coef)))
    end
  elseif model.arch.moe then
    model.arch.router_aux = true
    if a.moe_aux_loss_coef then model.arch.router_aux_coef = a.moe_aux_loss_coef end
  end
end

function M.setup_method(model, a)
  local names, params, groups
  if a.finetuning_type == "lora" then
    for _, p in ipairs(model:parameters()) do p:requires_grad(false) end
    -- LlamaFactory: of adapter_name_or_path (a comma list) all but the last are
    -- merged into the base and the last is trained on; create_new_adapter
    -- merges them all and trains a fresh adapter
    local dirs = a.adapter_name_or_path and require("lfl.data").names_of(a.adapter_name_or_path) or {}
    local resume = #dirs > 0 and not a.create_new_adapter
    for i, dir in ipairs(dirs) do
      peft.load_adapter(model, dir)
      if i < #dirs or not resume then peft.merge(model) end
    end
    if #dirs > 0 then
      print(fmt("[lfl] adapters: %d merged into the base%s", resume and #dirs - 1 or #dirs,
        resume and fmt(", training %s on", dirs[#dirs]) or ", training a new one (create_new_adapter)"))
    end
    if resume then
      for _, e in pairs(model.adapters) do
        e.A:requires_grad(); e.B:requires_grad()
        if e.magnitude then e.magnitude:requires_grad() end
      end
      for _, p in ipairs(model.lora.extra_params or {}) do p:requires_grad() end
      if a.additional_target and not model.lora.extra_names then
        error(fmt("additional_target: %s has no modules_to_save to resume; train a new adapter "
          .. "(create_new_adapter: true) to add them", dirs[#dirs]), 0)
      end
    else
      peft.add_lora(model, {rank = a.lora_rank, alpha = a.lora_alpha, dropout = a.lora_dropout,
        target = a.lora_target, use_rslora = a.use_rslora, use_dora = a.use_dora,
        init = a.pissa_init and "pissa" or nil, pissa_iter = a.pissa_iter, dtype = a.pure_bf16 and "bf16" or nil,
        layers = a.use_llama_pro and llama_pro_layers(model, a) or nil})
      -- LlamaFactory's additional_target: PEFT's modules_to_save, trained whole next to the adapter
      if a.additional_target then peft.add_modules_to_save(model, a.additional_target, {pure_bf16 = a.pure_bf16}) end
    end
    names, params = peft.lora_parameters(model)
    groups = peft.lora_groups(model, a.learning_rate, a.weight_decay, a.loraplus_lr_ratio, a.loraplus_lr_embedding)
  elseif a.finetuning_type == "oft" then
    -- PEFT's OFTConfig as LlamaFactory 0.9.5 builds it (target_modules from lora_target)
    for _, p in ipairs(model:parameters()) do p:requires_grad(false) end
    local oft = require("lfl.train.oft")
    if a.adapter_name_or_path then
      local dir = type(a.adapter_name_or_path) == "table" and a.adapter_name_or_path[1] or a.adapter_name_or_path
      local ad = oft.load(model, dir)
      for _, m in ipairs(ad.modules) do ad.weights[m] = ad.weights[m]:requires_grad() end
    else
      oft.add(model, {rank = a.oft_rank, block_size = a.oft_block_size, dropout = a.module_dropout,
        target = a.lora_target, dtype = a.pure_bf16 and "bf16" or nil})
    end
    names, params = oft.parameters(model)
    groups = {{params = params, names = names, lr = a.learning_rate, weight_decay = a.weight_decay}}
  else
    for _, p in ipairs(model:parameters()) do p:requires_grad(false) end
    if a.use_llama_pro then llama_pro_layers(model, a) end -- checks and logs the layers
    names, params = peft.select_trainable(model, a.finetuning_type, a) -- private, writable copies
    -- no weight decay on biases and norm weights (HF's get_decay_parameter_names)
    local decay, nodecay = {params = {}, names = {}, lr = a.learning_rate, weight_decay = a.weight_decay},
                           {params = {}, names = {}, lr = a.learning_rate, weight_decay = 0}
    for i, n in ipairs(names) do
      local g = (n:find("norm") or n:find("bias")) and nodecay or decay
      g.params[#g.params + 1] = params[i]
      g.names[#g.names + 1] = n
    end
    groups = {}
    if #decay.params > 0 then groups[#groups + 1] = decay end
    if #nodecay.params > 0 then groups[#groups + 1] = nodecay end
  end
  return names, params, groups
end

-- the stages whose loss runs on a device (ppo / grpo have their own update
-- loops, refused by approach.train_step)
local DEVICE_STAGES = {pt = true, sft = true, rm = true, dpo = true, orpo = true, simpo = true, kto = true}
local DEVICE_DTYPES = {f32 = true, f64 = true, bf16 = true, f16 = true, nf4 = true, fp4 = true}

-- nil when model m's weights can move to a device, else what stops them: a
-- 4-bit bitsandbytes base (nf4 / fp4, double quantization or not) moves with
-- its state and the CUDA linears dequantize it; the other quantized forms
-- have no CUDA kernels
local function unmovable(m)
  local q = m.quantization
  if q and q.type ~= "nf4" and q.type ~= "fp4" then
    return fmt("a %s-quantized base (quantization_bit %s: only the 4-bit nf4 / fp4 bases have CUDA kernels)",
      tostring(q.type), tostring(q.bits))
  end
  if m.ptq then return fmt("a %s-quantized checkpoint (its packed weights have no CUDA kernels)", m.ptq.method:upper()) end
  if m.gguf_blocks then return "gguf_blocks (GGUF-quantized weights have no CUDA kernels)" end
  for _, n in ipairs(m.names) do
    local dt = m.params[n]:dtype()
    if not DEVICE_DTYPES[dt] then
      return fmt("a %s weight (%s: only float and 4-bit nf4 / fp4 weights move to a device)", dt, n)
    end
  end
  return nil
end

-- device: cuda[:N]: the model (base, adapters, trainable copies) moves to
-- the device after the method set it up, and the groups' parameters are
-- looked up again by name (the moved tensors are new leaves); so do the
-- preference stages' reference model (a separate ref_model, or the frozen
-- initial weights sharing what the method did not copy). What the CUDA path
-- does not cover yet is refused by name before anything moves.
-- With several ranks each uses its own device (lfl.comm.device_info(): cuda:<local
-- rank>, or cuda:0 where every process sees one device of its own, as under the
-- emulator), and the gradients are reduced there through NCCL.
function M.to_device(model, a, names, params, groups, approach, reference, dist)
  local dev = a.device == "cuda" and "cuda:0" or a.device
  local desc, count = lfl.sys.cuda()
  if count < 1 then error(fmt("device: %s requested, but no CUDA device is usable (%s)", dev, desc), 0) end
  if dist and dist.size > 1 then
    local mine = "cuda:" .. lfl.comm.device_info().device
    if a.device ~= "cuda" and a.device ~= mine then
      error(fmt("device: %s with %d ranks: each rank trains on its own device (this rank, local rank %d: %s); "
        .. "write device: cuda", a.device, dist.size, dist.local_rank, mine), 0)
    end
    dev = mine
  end
  local idx = tonumber(dev:match("^cuda:(%d+)$"))
  if idx >= count then error(fmt("device: %s requested, but there %s only %d CUDA device%s (%s)", dev,
    count == 1 and "is" or "are", count, count == 1 and "" or "s", desc), 0) end
  local function refuse(what) error(fmt("device %s: %s is not supported on CUDA yet (train it with device: cpu)",
    dev, what), 0) end
  if not DEVICE_STAGES[a.stage] then refuse("stage " .. a.stage) end
  if a.finetuning_type == "oft" then refuse("finetuning_type oft") end
  local why = unmovable(model)
  if why then refuse(why) end
  why = reference and reference.kind == "model" and unmovable(reference.model)
  if why then refuse("ref_model " .. tostring(a.ref_model) .. " holding " .. why) end
  if model.arch.moe then refuse("a mixture-of-experts model") end
  for _, k in ipairs({"use_galore", "use_apollo", "use_badam", "use_adam_mini", "use_muon", "use_dora", "pissa_init",
                      "use_dft_loss", "use_eaft_loss", "use_asft_loss", "mixture_of_depths", "shift_attn"}) do
    if a[k] then refuse(k) end
  end
  if a.optim ~= "adamw_torch" and a.optim ~= "adamw_torch_fused" and a.optim ~= "sgd" then refuse("optim " .. a.optim) end
  if approach.train_step then refuse("stage " .. a.stage .. "'s own update loop") end
  -- a frozen reference (full / freeze) shares the tensors the method did not
  -- copy: they stay shared on the device
  local shared = {}
  if reference and reference.kind == "frozen" then
    for _, n in ipairs(reference.model.names) do shared[n] = reference.model.params[n] == model.params[n] end
  end
  model:to(dev)
  if reference and reference.kind == "frozen" then
    local ref = reference.model
    for _, n in ipairs(ref.names) do
      ref.params[n] = shared[n] and model.params[n] or ref.params[n]:to(dev)
    end
  elseif reference and reference.kind == "model" then
    reference.model:to(dev)
  end
  local byname = {}
  if a.finetuning_type == "lora" then
    local n2, p2 = peft.lora_parameters(model)
    for i, n in ipairs(n2) do byname[n] = p2[i] end
  else
    for _, n in ipairs(names) do byname[n] = model.params[n] end
  end
  local function swap(list, nm)
    local out = {}
    for i, p in ipairs(list) do
      local q = nm and nm[i] and byname[nm[i]]
      if not q then error(fmt("device %s: trainable parameter %s was not found after the move", dev,
        tostring(nm and nm[i])), 0) end
      out[i] = q
    end
    return out
  end
  params = swap(params, names)
  for _, g in ipairs(groups) do g.params = swap(g.params, g.names) end
  local mem = lfl.sys.device_memory(idx)
  print(fmt("[lfl] device %s: %s; the model holds %.1f MiB there", dev, desc, mem.in_use / 1048576))
  if a.bf16 or a.pure_bf16 then
    -- said, not hidden: the CPU's bf16 products (matmul precision "medium") have no CUDA counterpart yet
    print(fmt("[lfl] device %s: the bf16 weights are widened to f32 for cuBLAS's f32 GEMMs (bf16 tensor-core "
      .. "products are not implemented on CUDA yet): bf16 storage, f32 arithmetic", dev))
  end
  return names, params, groups
end

-- MemAvailable of /proc/meminfo in bytes, or nil where there is none
local function mem_available()
  local f = io.open("/proc/meminfo", "r")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local kb = text:match("MemAvailable:%s*(%d+)")
  return kb and tonumber(kb) * 1024
end

-- gradient_checkpointing_policy: "selective" keeps the LoRA linears' and the
-- attention's outputs so backward recomputes no GEMM, "full" recomputes whole
-- layers; "auto" takes selective unless what it keeps would use more than half
-- of the memory available now
local function checkpoint_policy(model, a)
  local policy = a.gradient_checkpointing_policy
  if a.disable_gradient_checkpointing or not peft.fuses_in_training(model) then return policy end
  local need = require("lfl.model.decoder").selective_bytes(model, a.per_device_train_batch_size * a.cutoff_len)
  if policy == "auto" then
    local avail = mem_available()
    policy = avail and need > avail / 2 and "full" or "selective"
  end
  print(fmt("[lfl] gradient checkpointing: %s%s", policy, policy == "selective"
    and fmt(" (keeps the adapted layers' GEMM outputs, up to %.0f MB a micro-batch; "
            .. "gradient_checkpointing_policy=full recomputes them instead)", need / 2 ^ 20)
    or " (backward recomputes each layer's forward)"))
  return policy
end

-- GaLore and BAdam replace the optimizer (LlamaFactory's create_custom_optimizer);
-- optim "adamw_8bit" / "adamw_bnb_8bit" is bitsandbytes' 8-bit AdamW.
local function make_optimizer(groups, a, model)
  local kw = {lr = a.learning_rate, beta1 = a.adam_beta1, beta2 = a.adam_beta2, eps = a.adam_epsilon,
    weight_decay = a.weight_decay}
  if a.use_galore or a.use_badam or a.use_muon or a.use_adam_mini or a.use_apollo then
    local names, params = {}, {}
    for _, g in ipairs(groups) do
      for i, p in ipairs(g.params) do names[#names + 1] = g.names[i]; params[#params + 1] = p end
    end
    if a.use_badam then return require("lfl.train.badam").from_args(names, params, a) end
    if a.use_muon then return require("lfl.train.muon").from_args(names, params, a) end
    if a.use_apollo then return require("lfl.train.apollo").from_args(model, names, params, a) end
    if a.use_adam_mini then return require("lfl.train.adam_mini").from_args(names, params, a, model) end
    return require("lfl.train.galore").GaLoreAdamW(require("lfl.train.galore").groups(model, names, params, a), kw)
  end
  -- lfl.args.OPTIMS: the transformers optim names that are the same update as one of lfl's
  local kind = lfl.args.OPTIMS[a.optim or "adamw_torch"]
  if kind == "sgd" then return optim.SGD(groups, {lr = a.learning_rate}) end
  if kind == "adamw_8bit" then return optim.AdamW8bit(groups, kw) end
  if kind ~= "adamw" then error(fmt("trainer: optim '%s' is not implemented", tostring(a.optim)), 0) end
  return optim.AdamW(groups, kw)
end
M.make_optimizer = make_optimizer

-- ---------------------------------------------------------------- progress

local Progress = {}
Progress.__index = Progress

local function hms(s)
  s = floor(s + 0.5)
  return fmt("%d:%02d:%02d", floor(s / 3600), floor((s % 3600) / 60), s % 60)
end

function M.progress(total, quiet)
  local tty = os.getenv("TERM") and lfl.fs.isatty(2)
  return setmetatable({total = total, t0 = lfl.sys.clock(), tty = tty, quiet = quiet}, Progress)
end

function Progress:update(step, info)
  if self.quiet or not self.tty then return end
  local el = lfl.sys.clock() - self.t0
  local eta = step > 0 and el / step * (self.total - step) or 0
  local w = 24
  local done = floor(w * step / max(1, self.total))
  io.stderr:write(fmt("\r[%s%s] %d/%d loss %.4f lr %.2e gnorm %.2f %.0f tok/s %s<%s ", string.rep("#", done),
    string.rep(".", w - done), step, self.total, info.loss or 0, info.lr or 0, info.grad_norm or 0,
    info.tps or 0, hms(el), hms(eta)))
  io.stderr:flush()
end

function Progress:finish() if self.tty and not self.quiet then io.stderr:write("\n") end end

-- ---------------------------------------------------------------- checkpoints

-- the trainable weights in dir: the PEFT adapter (lora) or model.safetensors,
-- and the reward model's value head next to them
local function save_trainable(model, a, dir, names, params, head)
  if head then require("lfl.train.value_head").save(head, dir) end
  if a.finetuning_type == "lora" then
    peft.save_adapter(model, dir, a.model_name_or_path)
  elseif a.finetuning_type == "oft" then
    require("lfl.train.oft").save(model, dir, a.model_name_or_path)
  else
    local tbl = {}
    for i, n in ipairs(names) do tbl[n] = params[i]:detach() end
    lfl.safetensors.save(dir .. "/model.safetensors", tbl, {format = "pt"})
  end
end

local function load_trainable(model, a, dir, names, params, head)
  if head then
    local saved = require("lfl.train.value_head").load(dir, model.arch.hidden)
    if not saved then error(fmt("%s: checkpoint has no value_head.safetensors (the reward model's head)", dir), 0) end
    lfl.no_grad(function() head.weight:copy_(saved.weight); head.bias:copy_(saved.bias) end)
  end
  if a.finetuning_type == "lora" or a.finetuning_type == "oft" then
    local ts = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
    -- saved under PEFT's module names (an image-text wrapper's, Llama 4's feed_forward)
    for i, n in ipairs(names) do
      local key = peft.peft_key(model, n, "out")
      if not ts[key] then error(fmt("%s: checkpoint has no %s", dir, key), 0) end
      lfl.no_grad(function() params[i]:copy_(ts[key]) end)
    end
  else
    local ts = lfl.safetensors.load(dir .. "/model.safetensors")
    for i, n in ipairs(names) do
      if not ts[n] then error(fmt("%s: checkpoint has no %s", dir, n), 0) end
      lfl.no_grad(function() params[i]:copy_(ts[n]) end)
    end
  end
end

-- (exposed for tests: a checkpoint's trainable weights out and back)
M.save_trainable, M.load_trainable = save_trainable, load_trainable

function M.save_checkpoint(st, parent)
  local a = st.args
  parent = parent or a.output_dir
  local final = fmt("%s/checkpoint-%d", parent, st.global_step)
  -- data parallel: every rank takes part (ZeRO gathers the optimizer state), rank 0 writes
  local dist = st.dist
  local ost, ometa = {}, nil
  -- save_only_model (HF): the weights and position only, no optimizer state
  if not a.save_only_model then ost, ometa = st.optimizer:state_tensors() end
  -- ZeRO-3: the partitioned weights gathered for the save, on every rank (a collective)
  local z3 = dist and dist.z3
  if z3 then z3:gather_all() end
  if dist and not dist.writer then
    dist:barrier()
    if z3 then z3:release_all() end
    return final
  end
  if parent ~= a.output_dir then mkdir(parent) end
  local tmp = final .. ".tmp"
  lfl.fs.remove(tmp)
  lfl.fs.remove(final)
  mkdir(tmp)
  save_trainable(st.model, a, tmp, st.names, st.params, st.value_head)
  if next(ost) then lfl.safetensors.save(tmp .. "/optimizer.safetensors", ost) end
  local seed, offset
  if lfl._trainer.is_trainer(st) then seed, offset = st:rng_state() else seed, offset = lfl.rng_state() end
  write_atomic(tmp .. "/trainer_state.json", json({
    global_step = st.global_step, epoch = st.epoch_float, max_steps = st.total_steps,
    log_history = st.log_history, optimizer_steps = ometa, rng = {seed = seed, offset = offset},
    data = {epoch = st.epoch, batch = st.batch_in_epoch, order_seed = a.seed,
            stream = st.stream and st.stream:state() or nil,
            -- data parallel: the epoch's micro-batches taken by all ranks together, so that
            -- a resume with another number of ranks finds its place
            world_size = dist and dist.size or 1, global_batches = st.batch_in_epoch * (dist and dist.size or 1)},
    logging_steps = st.log_every or a.logging_steps, save_steps = st.save_every or a.save_steps,
    train_batch_size = a.per_device_train_batch_size, num_train_epochs = a.num_train_epochs,
    save_only_model = a.save_only_model or nil,
  }))
  assert(os.rename(tmp, final))
  -- save_total_limit: drop the oldest
  if a.save_total_limit and a.save_total_limit > 0 then
    local steps = list_checkpoints(parent)
    for i = 1, #steps - a.save_total_limit do lfl.fs.remove(fmt("%s/checkpoint-%d", parent, steps[i])) end
  end
  if dist then dist:barrier() end
  if z3 then z3:release_all() end
  return final
end

function M.load_checkpoint(st, dir)
  local state = read_json(dir .. "/trainer_state.json")
  if not state then error(dir .. ": no trainer_state.json (not a checkpoint?)", 0) end
  load_trainable(st.model, st.args, dir, st.names, st.params, st.value_head)
  if exists(dir .. "/optimizer.safetensors") then
    st.optimizer:load_state_tensors(lfl.safetensors.load(dir .. "/optimizer.safetensors"), state.optimizer_steps or {})
  elseif state.save_only_model then
    print(fmt("[lfl] note: %s was saved with save_only_model: the optimizer starts from a fresh state", dir))
  end
  lfl.rng_state(state.rng.seed, state.rng.offset)
  st.global_step = state.global_step
  if state.epoch then st.epoch_float = state.epoch end
  st.log_history = state.log_history or {}
  st.resume_epoch, st.resume_batch = state.data.epoch, state.data.batch
  local world = st.dist and st.dist.size or 1
  if (state.data.world_size or 1) ~= world then
    -- written by another number of ranks (a checkpoint without world_size: one process): the
    -- same global position, in this run's micro-batches
    local g = state.data.global_batches or state.data.batch * (state.data.world_size or 1)
    if g % world ~= 0 then
      error(fmt("%s: the checkpoint is %d micro-batches into its epoch (%d ranks); %d ranks cannot resume there "
        .. "(it is not a multiple of %d): resume with %d ranks, or from a checkpoint at an epoch's start", dir, g,
        state.data.world_size or 1, world, world, state.data.world_size or 1), 0)
    end
    st.resume_batch = floor(g / world)
  end
  if st.stream then st.stream:restore(state.data.stream) -- replays the stream up to the saved position
  elseif state.data.stream then error(dir .. ": the checkpoint was written by a streaming run; set streaming = true", 0) end
end

-- ---------------------------------------------------------------- evaluation

-- compute_accuracy (LlamaFactory's ComputeAccuracy over transformers'
-- logits): per eval sample the share of labelled next tokens whose argmax is
-- the label, then the mean over samples. lfl's fused loss never builds the
-- logits, so a second forward per sample takes the hidden states at the
-- labelled positions through the head, a block of rows at a time.
local ACC_ROWS = 256
local function sample_accuracy(model, approach, ex)
  local decoder = require("lfl.model.decoder")
  local batch = approach.collate({ex})
  if batch.nlabels == 0 then return nil end
  local lab = batch.labels:view(-1):double()
  local n = lab:size(1)
  local rows, want = {}, {}
  for k = 1, n do
    local l = lab[k]
    if l ~= -100 then rows[#rows + 1], want[#want + 1] = k - 1, l end
  end
  local h = model:forward(batch.input_ids, {hidden = true, position_ids = batch.position_ids,
    segments = batch.segments})
  h = h:reshape(n, h:size(3))
  local head, right = decoder.lm_head(model), 0
  for r0 = 1, #rows, ACC_ROWS do
    local sel = {}
    for k = r0, min(#rows, r0 + ACC_ROWS - 1) do sel[#sel + 1] = rows[k] end
    local logits = lfl.linear(decoder.head_input(model, h:index_select(1, lfl.tensor(sel, "i64"))), head)
    local pred = logits:argmax(2):view(-1):double()
    for j = 1, #sel do if pred[j] == want[r0 + j - 1] then right = right + 1 end end
  end
  return right / #rows
end

-- The eval loss over the eval set: for token-level approaches (pt, sft) the
-- mean over labelled tokens, with perplexity; for pairwise ones the mean over
-- pairs, and the loss's metrics averaged over pairs with the prefix eval_
-- (eval_accuracy, eval_rewards/accuracies, ...).
function M.evaluate(st, eval_set)
  local approach, a = st.approach, st.args
  local pairwise = approach.kind == "pairwise" or approach.kind == "kto"
  local total, count, msum = 0, 0, {}
  local acc_sum, acc_n = 0, 0
  -- transformers evaluates in eval mode: an 8-bit base takes LLM.int8's matmul there
  local q, model = st.model.quantization, st.model
  if q and q.bits == 8 then model.int8_eval = q.threshold end
  local ok, err = pcall(lfl.no_grad, function()
    if a.compute_accuracy and not pairwise then
      for k = 1, #eval_set do
        local acc = sample_accuracy(st.model, approach, eval_set[k])
        if acc then acc_sum, acc_n = acc_sum + acc, acc_n + 1 end
      end
    end
    local bs = a.per_device_eval_batch_size
    for i = 1, #eval_set, bs do
      local list = {}
      for k = i, min(#eval_set, i + bs - 1) do list[#list + 1] = eval_set[k] end
      local batch = approach.collate(list)
      if batch.nlabels > 0 then
        local loss, metrics = approach.loss(st.model, batch, lfl._trainer.is_trainer(st) and st or {})
        local w = pairwise and batch.nexamples or batch.nlabels
        total = total + loss:item() * w
        count = count + w
        for k, v in pairs(metrics or {}) do msum[k] = (msum[k] or 0) + v * w end
      end
    end
  end)
  model.int8_eval = nil
  if not ok then error(err, 0) end
  local loss = count > 0 and total / count or 0 / 0
  if not pairwise then
    local out = {eval_loss = loss, perplexity = math.exp(loss)}
    if a.compute_accuracy then out.eval_accuracy = acc_n > 0 and acc_sum / acc_n or 0 / 0 end
    return out
  end
  local out = {eval_loss = loss}
  for k, v in pairs(msum) do out["eval_" .. k] = v / count end
  return out
end

-- ---------------------------------------------------------------- set-up

-- print_param_status: every parameter as LlamaFactory prints it (name, dtype,
-- device, trainable), the trainable ones (LoRA factors, private copies) last
function M.print_param_status(model, names, params)
  local trainable = {}
  for i, n in ipairs(names) do trainable[n] = params[i] end
  for _, n in ipairs(model.names) do
    if not trainable[n] then
      local p = model.params[n]
      print(fmt("name: %s, dtype: %s, device: %s, trainable: false", n, p:dtype(), p:device()))
    end
  end
  for i, n in ipairs(names) do
    print(fmt("name: %s, dtype: %s, device: %s, trainable: true", n, params[i]:dtype(), params[i]:device()))
  end
end

-- Raises "<label> '<path>': <why>" unless the folder can be written (it is
-- created, then a probe file is written in it and removed; core/fs.c).
local function writable_dir(path, label) return lfl.fs.writable_dir(path, label or "folder") end
M.writable_dir = writable_dir

local Trainer = lfl._trainer.methods

local function nonfinite(x) return x ~= x or x == math.huge or x == -math.huge end

-- the approach metrics the progress line shows
local SHOWN = {["rewards/accuracies"] = true, ["rewards/margins"] = true, accuracy = true, reward = true, kl = true,
               ["objective/kl"] = true}

-- quantization_bit 4 (QLoRA): lfl.model.load's quantize option from the run's
-- quantization_type and double_quantization; 8: LLM.int8 (transformers'
-- load_in_8bit); nil without quantization_bit
function M.quantize_options(a)
  if not a.quantization_bit then return nil end
  if a.quantization_bit == 8 then return {type = "int8"} end
  return {type = a.quantization_type, double_quant = a.double_quantization}
end

-- Whether the run's GGUF model keeps its linear weights in their blocks
-- (lfl.model.gguf): gguf_blocks when set, else yes for LoRA on a GGUF without
-- quantization_bit, PiSSA or several adapters to merge (the LoRA of a
-- quantized base, as QLoRA; full / freeze need trainable weights and get the
-- file dequantized). nil for a model that is not a .gguf file.
function M.gguf_blocks(a)
  if not tostring(a.model_name_or_path or ""):match("%.gguf$") then return nil end
  if a.gguf_blocks ~= nil then return a.gguf_blocks end
  return a.finetuning_type == "lora" and not a.quantization_bit and not a.pissa_init and not a.create_new_adapter and
    not (a.adapter_name_or_path and tostring(a.adapter_name_or_path):find(",", 1, true)) or nil
end

-- Sets a run up from resolved arguments (lfl.args.resolve): model, tokenizer,
-- template, data, method, optimizer, schedule, and the resume from a checkpoint.
function M.new(a)
  if a.threads then lfl.sys.threads(a.threads) end
  local out = a.output_dir or "saves/lfl-run" -- "" is refused by lfl.args.validate
  a.output_dir = out
  -- data parallel (started by mpirun or lfl --nproc N): nil in one process
  local dist = require("lfl.train.dist").world(a)
  -- an unwritable output_dir is found before minutes of loading, not at the first log line
  if not dist or dist.writer then writable_dir(out, "output_dir") end
  -- the stage's approach module (and what it needs), the template and the
  -- datasets' descriptions are checked before the model loads
  local AP = require("lfl.train.approach")
  local approach = AP.for_training(a.stage, a)
  lfl.args.preflight(a)
  if approach.preflight then approach.preflight(a) end
  lfl.manual_seed(a.seed)
  local t_load = lfl.sys.clock()
  -- bf16 / pure_bf16: the weights stay bf16 (trainables get f32 masters unless pure_bf16)
  local quantize = M.quantize_options(a)
  local model = lfl.model.load(a.model_name_or_path, {dtype = (a.bf16 or a.pure_bf16) and "bf16" or nil,
                                                      hub = lfl.args.hub_options(a), quantize = quantize,
                                                      gguf_blocks = M.gguf_blocks(a),
                                                      rope_scaling = lfl.args.rope_option(a, a.do_train ~= false),
                                                      mixture_of_depths = a.mixture_of_depths == "load" and "load"
                                                        or nil})
  -- mixture_of_depths: convert (LlamaFactory: apply_mod_to_hf after the load), or the loaded MoD checkpoint
  if a.mixture_of_depths == "convert" then require("lfl.model.mod").convert(model) end
  if model.mod then print("[lfl] " .. require("lfl.model.mod").describe(model)) end
  if model.gguf_blocks then
    print("[lfl] GGUF: the decoder's linear weights stay in the file's blocks (frozen; gguf_blocks: false dequantizes)")
  end
  if model.ptq then
    -- LlamaFactory: quantized (GPTQ/AWQ) models train adapters only; quantization_bit has no effect on them
    if quantize then
      error(fmt("quantization_bit: %s is already a %s 4-bit checkpoint; remove quantization_bit (LlamaFactory "
        .. "ignores it on such models)", a.model_name_or_path, model.ptq.method:upper()), 0)
    end
    if a.finetuning_type ~= "lora" and a.finetuning_type ~= "oft" then
      error(fmt("finetuning_type %s: %s is a %s-quantized checkpoint, which trains LoRA or OFT adapters only "
        .. "(LlamaFactory: 'Quantized models can only be used for the LoRA tuning')", a.finetuning_type,
        a.model_name_or_path, model.ptq.method:upper()), 0)
    end
    -- LlamaFactory's init_adapter on a PTQ-quantized model
    if a.use_dora then
      error(fmt("use_dora: %s is a %s-quantized checkpoint (LlamaFactory: 'DoRA is not compatible with PTQ-quantized "
        .. "models')", a.model_name_or_path, model.ptq.method:upper()), 0)
    end
    if a.pissa_init then
      error(fmt("pissa_init: %s is a %s-quantized checkpoint (LlamaFactory: 'Cannot initialize PiSSA adapter on "
        .. "quantized models')", a.model_name_or_path, model.ptq.method:upper()), 0)
    end
    if model.ptq.kept > 0 then
      local bytes, n = require("lfl.model.ptq").kept_bytes(model)
      print(fmt("[lfl] %s 4-bit checkpoint (groups of %d): %d linears kept quantized (%.3f bytes per weight, "
        .. "dequantized a tile at a time)", model.ptq.method:upper(), model.ptq.group_size, model.ptq.kept,
        bytes / math.max(1, n)))
    else
      print(fmt("[lfl] %s %d-bit checkpoint (groups of %d): %d linears dequantized at load; the base holds them as %s",
        model.ptq.method:upper(), model.ptq.bits, model.ptq.group_size, model.ptq.linears, model.dtype or "f32"))
    end
  end
  if quantize and quantize.type == "int8" then
    print("[lfl] QLoRA: the decoder's linear weights are 8-bit (bitsandbytes LLM.int8: int8 with an absmax per row)")
  elseif quantize then
    print(fmt("[lfl] QLoRA: the decoder's linear weights are 4-bit %s%s (bitsandbytes' layout, blocks of 64)",
      quantize.type, quantize.double_quant and " with double quantization" or ""))
  end
  require("lfl.model.bnb_checkpoint").check_training(model, a)
  M.setup_moe(model, a)
  -- EAFT's top-20 entropy and ASFT's KL term are taken inside the fused head,
  -- which a soft-capped head (Gemma 2) does not use
  for _, k in ipairs({"use_eaft_loss", "use_asft_loss"}) do
    if a[k] and model.arch.final_softcap then
      error(fmt("%s: not implemented for a model with final_logit_softcapping (%s): lfl computes that loss inside "
        .. "the fused head, which the soft-capped logits do not use", k, tostring(model.arch.final_softcap)), 0)
    end
  end
  -- and, as under LlamaFactory's bf16 autocast, large GEMMs multiply in bf16 (sums stay f32)
  local prev_precision = lfl.sys.matmul_precision()
  local blas_note = select(3, lfl.sys.blas())
  if blas_note then print("[lfl] warning: " .. blas_note) end
  if a.bf16 or a.pure_bf16 then
    lfl.sys.matmul_precision("medium")
    print("[lfl] bf16 GEMM: " .. lfl.sys.bf16_gemm())
  end
  local tok = M.load_tokenizer(model, a)
  local tok_path = model.path
  -- add_tokens / add_special_tokens / resize_vocab: LlamaFactory's resize_embedding_layer
  if a.resize_vocab or a.add_tokens or a.add_special_tokens then
    tok, tok_path = require("lfl.model.resize").from_args(model, tok, a)
  end
  local tpl = lfl.template.get(a.template or "empty")
  if a.default_system then tpl = tpl:with({default_system = a.default_system}) end
  local ctx = {tokenizer = tok, template = tpl, args = a}
  local data, stream
  if a.streaming then
    -- rows come from the stream as training pulls them (lfl.stream); nothing is cached
    stream = require("lfl.data.stream").open(a, ctx, approach)
    data = {eval = stream.eval, stats = stream.stats}
  else
    -- tokenized rows from the dataset cache when nothing that shapes them changed
    local function prepare() return require("lfl.data.cache").prepare(a, ctx, approach, {tokenizer_path = tok_path}) end
    -- one rank fills the dataset cache, the others read it
    if dist and dist.size > 1 then data = dist:rank0_first(prepare) else data = prepare() end
  end
  local train_set, eval_set = data.train, data.eval
  if stream then
    print(fmt("[lfl] model %s loaded in %.1fs; streaming the training data (shuffle buffer %d)%s", tostring(model),
      lfl.sys.clock() - t_load, a.buffer_size or 16384, eval_set and fmt(", %d eval", #eval_set) or ""))
  else
    if #train_set == 0 then error("trainer: no training examples after preprocessing", 0) end
    print(fmt("[lfl] model %s loaded in %.1fs; %d training examples (%s)%s%s", tostring(model),
      lfl.sys.clock() - t_load, #train_set, lfl.data.summary(data.stats),
      eval_set and fmt(", %d eval", #eval_set) or "", data.why and "; " .. data.why or ""))
  end

  -- the reference model (DPO): set up before the method makes trainable copies,
  -- so a frozen reference of a full / freeze run keeps the initial tensors
  local pref = require("lfl.train.pref")
  local reference = AP.needs(approach, "reference_model", a) and pref.setup_reference(model, a) or nil
  local names, params, groups = M.setup_method(model, a)
  if a.device ~= "cpu" then
    names, params, groups = M.to_device(model, a, names, params, groups, approach, reference, dist)
  end
  if reference then print("[lfl] " .. pref.describe_reference(reference, model, a)) end
  -- the reward model (PPO): a second adapter on this base, or a separate model
  local reward = AP.needs(approach, "reward_model", a) and require("lfl.train.ppo").setup_reward(model, a) or nil
  if reward then print("[lfl] " .. reward.describe) end
  -- the reward model's value head trains with the method's parameters (as TRL's v_head)
  local head, clip_params = nil, params
  if AP.needs(approach, "value_head", a) then
    if a.use_galore or a.use_badam then
      error(fmt("trainer: stage %s with %s is not supported (the value head is not a layer they can place)", a.stage,
        a.use_galore and "GaLore" or "BAdam"), 0)
    end
    head = require("lfl.train.value_head").for_run(model, a)
    if a.device ~= "cpu" then
      head = require("lfl.train.value_head").to(head, require("lfl.model.decoder").device_of(model))
    end
    -- HF: no weight decay on the bias; LoRA+ puts 1-D parameters in the lora_B group (lr * ratio)
    groups[#groups + 1] = {params = {head.weight}, names = {head.names[1]}, lr = a.learning_rate,
                           weight_decay = a.weight_decay}
    groups[#groups + 1] = {params = {head.bias}, names = {head.names[2]},
                           lr = a.learning_rate * (a.finetuning_type == "lora" and a.loraplus_lr_ratio or 1),
                           weight_decay = 0}
    clip_params = {}
    for i, p in ipairs(params) do clip_params[i] = p end
    clip_params[#clip_params + 1], clip_params[#clip_params + 2] = head.weight, head.bias
    print(fmt("[lfl] value head v_head.summary [1, %d] %s", model.arch.hidden, head.from and ("from " .. head.from)
      or "initialised (nn.Linear's uniform)"))
  end
  local n_train = 0
  for _, p in ipairs(clip_params) do n_train = n_train + p:numel() end
  if a.print_param_status then M.print_param_status(model, names, params) end
  print(fmt("[lfl] %s: trainable params %d || all params %d || trainable%% %.4f", a.finetuning_type, n_train,
    model:num_parameters(), 100 * n_train / model:num_parameters()))
  local opt = make_optimizer(groups, a, model)
  if a.pissa_convert and model.lora and model.lora.pissa and (not dist or dist.writer) then peft.save_pissa_init(model, out .. "/pissa_init", a.model_name_or_path) end

  local bs, accum = a.per_device_train_batch_size, a.gradient_accumulation_steps
  -- an approach with its own updates may take more micro-batches per step (PPO: x ppo_buffer_size)
  if approach.micro_batches_per_step then accum = approach.micro_batches_per_step(a) end
  -- a stream has no length: one "epoch" of max_steps * accum batches, as HF's Trainer counts it
  local batches_per_epoch = stream and a.max_steps * accum or ceil(#train_set / bs)
  -- data parallel: each rank takes every world-th micro-batch of the epoch's order
  local global_batches = batches_per_epoch
  if dist and dist.size > 1 and not stream then batches_per_epoch = dist:batches_per_epoch(global_batches) end
  local steps_per_epoch = max(1, floor(batches_per_epoch / accum))
  local total = a.max_steps and a.max_steps > 0 and a.max_steps or ceil(a.num_train_epochs * steps_per_epoch)
  -- HF: an interval below 1 is a fraction of the total steps (warmup_steps as transformers 5 reads it)
  local function steps_of(v) if v and v > 0 and v < 1 then return ceil(total * v) end return v end
  local warmup = a.warmup_steps >= 1 and a.warmup_steps or a.warmup_steps > 0 and steps_of(a.warmup_steps)
    or ceil(total * a.warmup_ratio)

  local t = lfl._trainer.new{total_steps = total, batches_per_epoch = batches_per_epoch, accum = accum,
                             now = lfl.sys.clock()}
  t.args, t.model, t.tokenizer, t.template, t.approach = a, model, tok, tpl, approach
  t.tokenizer_path = tok_path -- the base's, or output_dir after add_tokens
  t.names, t.params, t.groups, t.optimizer = names, params, groups, opt
  t.reference, t.value_head, t.reward_model = reference, head, reward
  t.schedule = optim.schedule(a.lr_scheduler_type, warmup, total, a.lr_scheduler_kwargs)
  t.warmup_steps = warmup
  t.dist, t.global_batches = dist, global_batches
  -- logging / evaluation / checkpoints: every n steps (strategy "steps"), at each epoch's end
  -- ("epoch") or never ("no"); HF's eval_steps defaults to logging_steps
  t.log_every = a.logging_strategy == "steps" and steps_of(a.logging_steps) or nil
  t.eval_every = a.eval_strategy == "steps" and steps_of(a.eval_steps or a.logging_steps) or nil
  t.save_every = a.save_strategy == "steps" and steps_of(a.save_steps) or nil
  t.train_set, t.eval_set, t.stream, t.data_stats = train_set, eval_set, stream, data.stats
  -- batching and packing in C: an approach may name the C collator of its rows
  -- (c_collate(ds, args) -> "pack" | "stack_packed" | "pairwise" | "kto", opts)
  if not stream and approach.c_collate and lfl.dataset.is_dataset(train_set) then
    t.c_collate, t.c_collate_opts = approach.c_collate(train_set, a)
  end
  t.log_history = {}
  t.gradient_checkpointing = not a.disable_gradient_checkpointing
  -- NEFTune: the decoder adds its noise to the embeddings of every forward
  -- that records gradients (training), never in eval or generation
  model.neftune_alpha = a.neftune_noise_alpha
  t.checkpoint_policy = checkpoint_policy(model, a)
  t.prev_precision = prev_precision
  t.loop_epoch = 0 -- the epoch the loop is in (an epoch skipped on resume has no micro-batch)
  t:set_params(clip_params)
  t.metric_window = {sums = {}, counts = {}}
  t.threads = lfl.sys.threads()
  if a.full_determinism then lfl.sys.threads(t.threads) end -- a set count stays: runs repeat bit for bit
  local ncpu, cpus, adapting = lfl.sys.cpus()
  print(fmt("[lfl] threads %d of %d CPUs (%s)%s", t.threads, ncpu, cpus,
    adapting and "; fewer while other processes keep CPUs busy"
    or a.full_determinism and "; fixed by full_determinism" or ""))
  if approach.setup then approach.setup(t) end
  if dist and dist.size > 1 then
    if approach.train_step then
      error(fmt("stage %s makes its own optimizer updates; it does not run with several ranks yet", a.stage), 0)
    end
    dist:setup(t) -- rank 0's weights everywhere; ZeRO replaces t.optimizer
  end

  -- resume: explicit path, or the last checkpoint in output_dir
  local resume = a.resume_from_checkpoint
  if resume == true or (resume == nil and not a.overwrite_output_dir) then
    local steps = list_checkpoints(out)
    if #steps > 0 then resume = fmt("%s/checkpoint-%d", out, steps[#steps])
    elseif resume == true then error(out .. ": resume_from_checkpoint=true but there is no checkpoint", 0)
    else resume = nil end
  end
  if resume then
    -- ZeRO-3: the checkpoint's weights go into the gathered parameters, then into the slices
    local z3 = dist and dist.z3
    if z3 then z3:gather_all() end
    M.load_checkpoint(t, resume)
    if z3 then z3:reshard(); z3:release_all() end
    t.resumed_step = t.global_step
    print(fmt("[lfl] resumed from %s (step %d)", resume, t.global_step))
  end

  t.log_path = out .. "/trainer_log.jsonl"
  if not resume and (not dist or dist.writer) then os.remove(t.log_path) end
  return t
end

-- a log line or a state file; a non-finite number is written as Python's json
-- writes it (NaN, Infinity), as LlamaFactory's trainer_log.jsonl gets it
local function log_line(t, rec)
  if t.dist and not t.dist.writer then return end
  if not t.logf then
    local f, err = io.open(t.log_path, "a")
    if not f then error(fmt("trainer: cannot write %s: %s", t.log_path, tostring(err)), 0) end
    t.logf = f
  end
  t.logf:write(lfl.json.encode(rec, {allow_nan = true}), "\n")
  t.logf:flush()
end

-- report_to tensorboard: logs (a Trainer.log record less its step) as TensorBoard
-- scalars at step, in <output_dir>/runs/<date>_<host>, opened at the first log
-- as TensorBoardCallback opens its writer at the start of training
local function tb_log(t, step, logs)
  if t.tb == false then return end
  if t.dist and not t.dist.writer then t.tb = false; return end
  if not t.tb then
    if not lfl.args.reports_to_tensorboard(t.args) then t.tb = false; return end
    local tb = require("lfl.train.tensorboard")
    t.tb = tb.open(tb.logdir(t.args.output_dir))
    print(fmt("[lfl] TensorBoard events: %s", t.tb.path))
  end
  local rec = {}
  for k, v in pairs(logs) do if k ~= "step" then rec[k] = v end end
  t.tb:log(step, rec)
end

-- an evaluation's metrics as Trainer.evaluate logs them: eval_<name> (lfl's
-- perplexity too, so that it lands under eval/), with the epoch
local function eval_logs(ev, epoch)
  local out = {epoch = epoch}
  for k, v in pairs(ev) do
    if k ~= "step" and k ~= "epoch" then out[k:sub(1, 5) == "eval_" and k or "eval_" .. k] = v end
  end
  return out
end

-- the next micro-batch's rows with its epoch and index, walking the epochs
-- (a fresh order per epoch, from the seed alone so resuming replays it)
local function next_rows(t)
  local a = t.args
  local bs, bpe = a.per_device_train_batch_size, t.batches_per_epoch
  while true do
    if not t.next_batch then
      local epoch = t.loop_epoch
      local start = 1
      if t.resume_epoch then
        if epoch < t.resume_epoch then
          t.loop_epoch = epoch + 1
          goto continue
        end
        start = t.resume_batch + 1
        t.resume_epoch = nil
      end
      if not t.stream then
        local order
        if t.c_collate then
          order = not a.disable_shuffling and t.train_set:order(a.seed + epoch) or nil -- lfl.data.shuffle's order, in C
        else
          order = {}
          for i = 1, #t.train_set do order[i] = i end
          if not a.disable_shuffling then lfl.data.shuffle(order, a.seed + epoch) end
        end
        t.order = order
      end
      t.next_batch = start
    end
    do
      local b = t.next_batch
      if b <= bpe then
        t.next_batch = b + 1
        local list
        if t.stream then list = t.stream:next_rows(bs)
        else
          -- data parallel: this rank's share, the global micro-batch gb of the epoch's order
          local gb = b
          if t.dist and t.dist.size > 1 then gb = t.dist:global_batch(b, t.global_batches) + 1 end
          list = {}
          if t.c_collate then
            -- a Dataset the approach collates in C: indices only, no Lua row tables
            local order = t.order
            for k = (gb - 1) * bs + 1, min(#t.train_set, gb * bs) do list[#list + 1] = order and order[k] or k end
          else
            local order, train_set = t.order, t.train_set
            for k = (gb - 1) * bs + 1, min(#train_set, gb * bs) do list[#list + 1] = train_set[order[k]] end
          end
        end
        return list, t.loop_epoch, b
      end
      t.next_batch, t.order = nil, nil
      t.loop_epoch = t.loop_epoch + 1
    end
    ::continue::
  end
end

-- Between micro-batches the OpenMP/OpenBLAS thread count follows the CPUs that
-- other processes leave free (core/util/cpus.c): threads meeting at barriers
-- while a competitor holds one of their CPUs lose far more than one thread does.
local function adapt_threads(self)
  local n, changed, others = lfl.sys.adapt_threads()
  if changed then
    print(fmt("[lfl] threads %d -> %d: other processes keep %.1f of %d CPUs busy", self.threads or n, n, others,
      (lfl.sys.cpus())))
  end
  self.threads = n
end

-- One optimizer step: gradient_accumulation_steps micro-batches (fewer at the
-- end of an epoch), clipping, the optimizer and the schedule, then logging and
-- evaluation / checkpoints at their steps. Returns the step's info (loss, lr,
-- grad_norm, tps), or nil when the run is done.
function Trainer:step()
  if self:done() then return nil end
  local a, approach, model, opt = self.args, self.approach, self.model, self.optimizer
  if not self.started then
    -- the clocks start with the first step (a REPL session may wait between set-up and step)
    local now = lfl.sys.clock()
    self.started, self.t0 = true, now
    self:reset_window(now)
    self.prog = M.progress(self.total_steps, a.disable_tqdm or (self.dist and not self.dist.writer))
  end
  local accum = self.gradient_accumulation_steps
  local function window(metrics)
    -- the approach's metrics, averaged over the logging window's micro-batches (TRL's store_metrics)
    if metrics then
      local w = self.metric_window
      for k, v in pairs(metrics) do w.sums[k] = (w.sums[k] or 0) + v; w.counts[k] = (w.counts[k] or 0) + 1 end
    end
  end
  local gnorm, skip
  local factor = self.schedule(self.global_step)
  if approach.train_step then
    -- the approach makes its own optimizer updates from one step's rows (PPO:
    -- the rollout batch of accum micro-batches, ppo_epochs passes over it)
    local rows, marks = {}, {}
    repeat
      local list, epoch, b = next_rows(self)
      lfl.sys.check_interrupt()
      for _, r in ipairs(list) do rows[#rows + 1] = r end
      marks[#marks + 1] = {epoch, b}
    until b % accum == 0 or b == self.batches_per_epoch
    adapt_threads(self)
    local lv, metrics, ntok, gn = approach.train_step(self, rows, factor)
    window(metrics)
    for i, m in ipairs(marks) do self:micro_batch(lv, i == 1 and ntok or 0, m[1], m[2]) end
    gnorm = gn
    skip = nonfinite(lv) or nonfinite(gnorm)
  else
    repeat
      local list, epoch, b = next_rows(self)
      lfl.sys.check_interrupt()
      local batch
      if self.c_collate then batch = self.train_set:collate(list, self.c_collate, self.c_collate_opts)
      else batch = approach.collate(list) end
      local loss, metrics = approach.loss(model, batch, self)
      local lv = loss:item()
      window(metrics)
      ;(loss * (1 / accum)):backward()
      -- ZeRO-3: the layers still gathered reduce their gradients and are released
      if self.dist and self.dist.z3 then self.dist.z3:after_backward() end
      adapt_threads(self)
    until self:micro_batch(lv, batch.ntokens, epoch, b)
    local dist = self.dist and self.dist.size > 1 and self.dist or nil
    if dist then
      -- the step's loss and tokens over all ranks, and the gradients averaged (only now,
      -- on the last micro-batch: the accumulation before it is local)
      self:reduce_step()
      dist:sync(self)
    end
    if opt.before_clip then opt:before_clip() end -- BAdam ratio mode masks the gradients first
    if dist then gnorm = dist:clip(self, a.max_grad_norm) else gnorm = self:clip_grad_norm(a.max_grad_norm) end
    -- a non-finite loss or gradient makes no update (the weights stay usable); the
    -- step still counts, is logged with its NaN, and a run of them stops the run
    skip = nonfinite(self:pending_loss()) or nonfinite(gnorm)
    if not skip then opt:step(factor) end
    opt:zero_grad()
  end
  local now = lfl.sys.clock()
  self:end_step(a.learning_rate * factor, gnorm, now)
  local step, total = self.global_step, self.total_steps
  local info = {loss = self.loss, lr = self.lr, grad_norm = gnorm, tps = self.tokens_per_second, skipped = skip or nil}
  self.prog:update(step, info)
  local epoch_end = self.batch_in_epoch == self.batches_per_epoch
  local log_now
  if self.log_every then log_now = self:is_log_step(self.log_every)
  else log_now = a.logging_strategy == "epoch" and (epoch_end or step == total) end
  if log_now then
    -- the logged loss is the mean of the window's step losses (HF's Trainer), the step's own with logging_steps 1
    local loss = self:log_window(now)
    local el = now - self.t0
    local rec = {current_steps = step, total_steps = total, loss = loss, lr = info.lr,
      grad_norm = gnorm, epoch = self.epoch_float, percentage = 100 * step / total,
      elapsed_time = hms(el), remaining_time = hms(el / step * (total - step)),
      tokens_per_second = info.tps}
    local hist = {step = step, loss = loss, learning_rate = info.lr, grad_norm = gnorm, epoch = self.epoch_float}
    local w, shown = self.metric_window, {}
    if self.dist and self.dist.size > 1 then self.dist:reduce_window(w) end
    local keys = {}
    for k in pairs(w.sums) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = w.sums[k] / w.counts[k]
      rec[k], hist[k] = v, v
      if SHOWN[k] then shown[#shown + 1] = fmt(" %s %.4f", k, v) end
    end
    -- LlamaFactory's LogCallback writes rewards/accuracies as "accuracy"
    if rec["rewards/accuracies"] then rec.accuracy = rec["rewards/accuracies"] end
    self.metric_window = {sums = {}, counts = {}}
    log_line(self, rec)
    self.log_history[#self.log_history + 1] = hist
    tb_log(self, step, hist)
    if (not self.prog.tty or a.disable_tqdm) and (not self.dist or self.dist.writer) then
      print(fmt("[lfl] step %d/%d loss %.4f lr %.3e grad_norm %.3f %.0f tok/s%s", step, total,
        loss, info.lr, gnorm, info.tps, table.concat(shown)))
    end
  end
  if skip and (not self.dist or self.dist.writer) then
    print(fmt("[lfl] step %d: the %s is not finite (loss %s, grad_norm %s); the optimizer skipped this step", step,
      nonfinite(info.loss) and "loss" or "gradient norm", tostring(info.loss), tostring(gnorm)))
  end
  -- data parallel: rank 0 evaluates (the weights are the same on every rank) and writes the result
  local eval_now = self.eval_set and (self.eval_every and step % self.eval_every == 0 or a.eval_strategy == "epoch"
    and epoch_end)
  -- ZeRO-3: every rank gathers the partitioned weights for it (a collective)
  local z3 = self.dist and self.dist.z3
  if eval_now and z3 then z3:gather_all() end
  if eval_now and (not self.dist or self.dist.writer) then
    local ev = self:evaluate()
    ev.step, ev.epoch = step, self.epoch_float
    self.log_history[#self.log_history + 1] = ev
    log_line(self, {current_steps = step, total_steps = total, eval_loss = ev.eval_loss})
    tb_log(self, step, eval_logs(ev, self.epoch_float))
    print(fmt("[lfl] eval at step %d: %s", step, M.describe_eval(ev)))
  end
  if eval_now and z3 then z3:release_all() end
  local limit = a.max_nonfinite_steps or 3
  if limit > 0 and self.nonfinite_streak >= limit then
    -- the weights are those of the last finite step: keep them and the position
    local dir = M.save_checkpoint(self)
    if self.logf then self.logf:close(); self.logf = nil end
    self.prog:finish()
    lfl.sys.matmul_precision(self.prev_precision)
    error(fmt("trainer: the loss or gradient norm was not finite for %d consecutive steps (steps %d-%d, last loss %s); "
      .. "stopped and saved %s (the weights before those steps). Lower learning_rate, check the data (labels, "
      .. "cutoff_len), or raise max_nonfinite_steps", limit, step - limit + 1, step, tostring(info.loss), dir), 0)
  end
  local save_now = self.save_every and self.save_every > 0 and step % self.save_every == 0
    or a.save_strategy == "epoch" and epoch_end
  if save_now and step < total then
    M.save_checkpoint(self)
  end
  if self.hooks and self.hooks.on_step then self.hooks.on_step(self, info) end
  return info
end

-- "loss 1.2345 perplexity 3.437" / "loss 0.6931 accuracy 0.5000 ..." for a log line
function M.describe_eval(ev)
  local parts = {fmt("loss %.4f", ev.eval_loss)}
  if ev.perplexity then parts[#parts + 1] = fmt("perplexity %.3f", ev.perplexity) end
  local keys = {}
  for k in pairs(ev) do if k:match("^eval_") and k ~= "eval_loss" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = fmt("%s %.4f", k:sub(6), ev[k]) end
  return table.concat(parts, " ")
end

-- the eval loss (and perplexity) on the eval set
function Trainer:evaluate(eval_set)
  eval_set = eval_set or self.eval_set
  if not eval_set then error("trainer: no eval set (set val_size or eval_dataset)", 0) end
  return M.evaluate(self, eval_set)
end

-- a checkpoint-<global_step> in parent (output_dir by default), written atomically
function Trainer:save(parent) return M.save_checkpoint(self, parent) end

-- resumes from a checkpoint folder: weights, optimizer, RNG, position and log history
function Trainer:load(dir)
  M.load_checkpoint(self, dir)
  self.loop_epoch, self.next_batch, self.order = 0, nil, nil
  return self
end

-- steps until done, then the final save
function Trainer:train(hooks)
  if hooks then self.hooks = hooks end
  while not self:done() do self:step() end
  return self:finish()
end

-- The trained model in output_dir, as LlamaFactory leaves it: LoRA saves the
-- adapter (PEFT layout), full and freeze a whole Hugging Face folder (config.json,
-- every weight, tokenizer, generation_config.json) that lfl chat --model and
-- transformers load; both with the tokenizer files (written from the metadata of
-- a GGUF base), and a reward model's value head. Checkpoints keep only the
-- trained tensors (save_trainable).
function M.save_final(t, out)
  local a, model = t.args, t.model
  local tok_src = t.tokenizer_path or model.path
  -- a reward model's value head (value_head.safetensors, as LlamaFactory writes it)
  if t.value_head then require("lfl.train.value_head").save(t.value_head, out) end
  if a.finetuning_type == "lora" or a.finetuning_type == "oft" then
    if a.finetuning_type == "oft" then require("lfl.train.oft").save(model, out, a.model_name_or_path)
    else peft.save_adapter(model, out, a.model_name_or_path) end
    if tok_src then require("lfl.model.hf_files").write_tokenizer(tok_src, out, tok_src == model.path and
      model.gguf_metadata or nil) end
  else
    model:save(out, {tokenizer = tok_src or false})
  end
end

-- the final save (M.save_final), trainer_state.json, train_results.json /
-- all_results.json, the loss plot
function Trainer:finish()
  local a, model, out = self.args, self.model, self.args.output_dir
  if self.prog then self.prog:finish() end
  if self.logf then self.logf:close(); self.logf = nil end
  local runtime = lfl.sys.clock() - (self.started and self.t0 or lfl.sys.clock())
  local dist = self.dist
  if dist and dist.size > 1 then
    -- every rank's peak (ZeRO's saving is per rank), then rank 0 alone writes the results
    local _, mine = lfl.sys.rss()
    local peaks = dist:gather_number(mine)
    if dist.writer then
      local parts = {}
      for r, v in ipairs(peaks) do parts[r] = fmt("rank %d %.0f MB", r - 1, v) end
      print("[lfl] peak RSS per rank: " .. table.concat(parts, ", "))
    end
    local st = lfl.comm.stats()
    if dist.writer then
      -- payload handed to the collectives by rank 0 (what the ring moves is about 2(N-1)/N of an all-reduce's)
      local steps = math.max(1, self.global_step - (self.resumed_step or 0))
      print(fmt("[lfl] communicated %.1f MB in %d collectives on rank 0: %.1f MB at set-up, %.3f MB per step",
        st.bytes / 2 ^ 20, st.calls, (dist.setup_bytes or 0) / 2 ^ 20,
        (st.bytes - (dist.setup_bytes or 0)) / 2 ^ 20 / steps))
    end
    self.peak_rss_ranks = peaks
    if dist.z3 then
      -- ZeRO-3: the trained weights gathered on every rank (a collective) and kept whole: the
      -- final save, evaluation and prediction use the model as one process has it
      dist.z3:gather_all()
      self.model.zero3 = nil
    end
    if not dist.writer then
      dist:barrier()
      lfl.sys.matmul_precision(self.prev_precision)
      return {model = model, tokenizer = self.tokenizer, template = self.template, metrics = {}, state = self}
    end
  end
  M.save_final(self, out)
  if a.pissa_convert and model.lora and model.lora.pissa then
    peft.save_pissa_converted(model, out .. "/pissa_converted", a.model_name_or_path)
  end
  local _, peak = lfl.sys.rss()
  -- train_loss as HF's Trainer reports it: the mean of the step losses of this run
  -- (non-finite steps left out, as HF's logging_nan_inf_filter does)
  -- train_samples_per_second as HF's speed_metrics counts the samples: max_steps x
  -- the total batch when max_steps is set, else the examples x the epochs
  local samples = (a.max_steps and a.max_steps > 0) and
    self.total_steps * a.per_device_train_batch_size * a.gradient_accumulation_steps * (dist and dist.size or 1)
    or (self.train_set and #self.train_set or 0) * a.num_train_epochs
  local metrics = {train_runtime = runtime, train_loss = self.train_loss,
    train_tokens_per_second = self.tokens / max(1e-9, runtime),
    train_samples_per_second = samples / max(1e-9, runtime),
    train_steps_per_second = self.global_step / max(1e-9, runtime), epoch = self.epoch_float, peak_rss_mb = peak,
    total_flos = 0, peak_rss_mb_per_rank = self.peak_rss_ranks, world_size = dist and dist.size or nil}
  -- do_eval unset evaluates when there is an eval set; false never (true requires one: lfl.args)
  -- Trainer.train's closing log (train/train_runtime, train/train_loss, ...), then do_eval's;
  -- total_flos is left out: lfl does not count FLOPs (its 0 would chart as a measurement)
  local summary = {}
  for k, v in pairs(metrics) do if k ~= "total_flos" and type(v) == "number" then summary[k] = v end end
  tb_log(self, self.global_step, summary)
  if self.eval_set and a.do_eval ~= false then
    local ev = self:evaluate()
    for k, v in pairs(ev) do metrics[k] = v end
    tb_log(self, self.global_step, eval_logs(ev, self.epoch_float))
  end
  write_atomic(out .. "/trainer_state.json", json({global_step = self.global_step, epoch = self.epoch_float,
    max_steps = self.total_steps, log_history = self.log_history, logging_steps = self.log_every or a.logging_steps,
    save_steps = self.save_every or a.save_steps, train_batch_size = a.per_device_train_batch_size,
    num_train_epochs = a.num_train_epochs}))
  lfl.sys.matmul_precision(self.prev_precision)
  write_atomic(out .. "/train_results.json", json(metrics))
  write_atomic(out .. "/all_results.json", json(metrics))
  if a.plot_loss and lfl.plot then
    -- a diverged step has no point on the curve (its NaN would break the smoothing)
    local finite = {}
    for _, h in ipairs(self.log_history) do
      if h.loss == nil or not nonfinite(h.loss) then finite[#finite + 1] = h end
    end
    -- LlamaFactory's sft plots eval_accuracy too with compute_accuracy
    local keys = self.approach.plot or {"loss", "eval_loss", self.args.compute_accuracy and "eval_accuracy" or nil}
    lfl.plot.training_curves(out, finite, keys)
  end
  print(fmt("[lfl] done: %d steps in %.1fs, %.0f tokens/s, peak RSS %.0f MB; saved to %s", self.global_step, runtime,
    metrics.train_tokens_per_second, peak, out))
  if dist and dist.size > 1 then dist:barrier() end
  return {model = model, tokenizer = self.tokenizer, template = self.template, metrics = metrics, state = self}
end

function M.run(a, hooks)
  return M.new(a):train(hooks or {})
end

-- lfl.trainer(args): a Trainer from recipe arguments (resolved and validated here)
setmetatable(M, {__call = function(_, args)
  return M.new(lfl.args.resolve(args, {}, "lfl.trainer"))
end})

return M
