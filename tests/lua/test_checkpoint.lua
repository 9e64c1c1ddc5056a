-- Gradient checkpointing of the decoder with LoRA: the "selective" policy
-- (backward reuses the first pass's GEMM and attention outputs) and "full"
-- (backward recomputes each layer) give the loss and adapter gradients of a
-- run without checkpointing, bit for bit, in f32 and under matmul precision
-- "medium" (bf16 GEMMs), for every decoder family; LoRA dropout draws the
-- same masks with and without checkpointing; the policy argument's default
-- and validation; the kept-bytes estimate the trainer's "auto" choice uses.
local t = require("lfl.test")
local peft = require("lfl.train.peft")
local dec = require("lfl.model.decoder")

local model_dir = lfl.home .. "/tests/golden/models/llama"

-- the tiny llama with rank-4 LoRA on every linear, deterministic non-zero factors
local function lora_model(dropout)
  local m = lfl.model.load(model_dir)
  peft.add_lora(m, {rank = 4, dropout = dropout or 0, target = "all"})
  local names = {}
  for k in pairs(m.adapters) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do
    local e = m.adapters[k]
    e.A:copy_((lfl.arange(e.A:numel()):reshape(e.A:size()) * (0.37 + i / 100)):tanh() * 0.3)
    e.B:copy_((lfl.arange(e.B:numel()):reshape(e.B:size()) * (0.53 + i / 100)):tanh() * 0.3 - 0.05)
  end
  return m, names
end

-- B rows of T tokens from the tiny vocabulary (64 ids) (B * T = 4096 rows make the
-- projections big enough for the bf16 GEMM under "medium")
local function batch(B, T)
  lfl.manual_seed(11)
  return (lfl.rand(B, T) * 63):to("i64") + 1
end

-- loss and every adapter gradient of one backward
local function grads(m, names, ids, opts)
  local loss = dec.loss(m, ids, ids, opts)
  loss:backward()
  local out = {loss = loss:item()}
  for _, k in ipairs(names) do
    out[#out + 1] = m.adapters[k].A.grad
    out[#out + 1] = m.adapters[k].B.grad
  end
  return out
end

local function max_diff(a, b)
  local d = math.abs(a.loss - b.loss)
  for i = 1, #a do d = math.max(d, (a[i] - b[i]):abs():max():item()) end
  return d
end

local function with_precision(prec, fn)
  lfl.sys.matmul_precision(prec)
  local ok, err = pcall(fn)
  lfl.sys.matmul_precision("highest")
  if not ok then error(err, 0) end
end

t.suite("checkpoint", {
  policies_equal_no_checkpointing = function()
    local _, has = lfl.sys.matmul_precision()
    local cases = {{"highest", 2, 16}}
    if has then cases[2] = {"medium", 64, 64} else print("SKIP  medium precision case: no AVX512_BF16 on this CPU") end
    for _, c in ipairs(cases) do
      with_precision(c[1], function()
        local ids = batch(c[2], c[3])
        local m, names = lora_model()
        local want = grads(m, names, ids, {})
        for _, policy in ipairs({"selective", "full"}) do
          local m2 = lora_model()
          local got = grads(m2, names, ids, {gradient_checkpointing = true, checkpoint_policy = policy})
          t.assert_eq(max_diff(want, got), 0, c[1] .. " " .. policy)
        end
      end)
    end
  end,

  -- every decoder family of the golden tiny checkpoints (fused qkv and
  -- gate_up, post-norms, q/k norms, clip_qkv, plain MLPs, windows, softcaps)
  every_family = function()
    local root = model_dir:match("^(.*/)")
    local p = io.popen("ls '" .. root .. "'")
    local families = {}
    for name in p:lines() do families[#families + 1] = name end
    p:close()
    t.assert(#families >= 18, "found the golden families")
    for _, fam in ipairs(families) do
      local function run(opts)
        local m = lfl.model.load(root .. fam)
        lfl.manual_seed(7) -- A's random init
        peft.add_lora(m, {rank = 4, target = "all"})
        local names = {}
        for k in pairs(m.adapters) do names[#names + 1] = k end
        table.sort(names)
        for i, k in ipairs(names) do m.adapters[k].B:fill_(0.01 * (i % 7) - 0.03) end
        lfl.manual_seed(11)
        local ids = (lfl.rand(2, 12) * (m.arch.vocab - 1)):to("i64")
        return grads(m, names, ids, opts)
      end
      local plain = run({})
      for _, policy in ipairs({"selective", "full"}) do
        local got = run({gradient_checkpointing = true, checkpoint_policy = policy})
        t.assert_eq(max_diff(plain, got), 0, fam .. " " .. policy)
      end
    end
  end,

  -- what tells the policies apart: after the forward, the frozen q_proj of the
  -- last layer is zeroed. Full checkpointing recomputes that layer's queries
  -- from the zeroed weight, so its attention (and v_proj's gradient, which
  -- flows through the attention probabilities) changes; selective replays
  -- the queries of the forward, as a run without checkpointing keeps them.
  selective_replays_the_forward = function()
    local ids = batch(2, 16)
    local key = "model.layers.1.self_attn.v_proj"
    local function vgrad(opts)
      local m = lora_model()
      local loss = dec.loss(m, ids, ids, opts)
      m.params["model.layers.1.self_attn.q_proj.weight"]:fill_(0)
      loss:backward()
      return m.adapters[key].B.grad
    end
    local plain = vgrad({})
    local sel = vgrad({gradient_checkpointing = true, checkpoint_policy = "selective"})
    local full = vgrad({gradient_checkpointing = true, checkpoint_policy = "full"})
    t.assert_eq((plain - sel):abs():max():item(), 0, "selective uses the forward's queries")
    t.assert((plain - full):abs():max():item() > 1e-6, "full recomputes the queries from the zeroed weight")
  end,

  -- the first pass of a checkpointed region runs without grad; LoRA dropout
  -- must still apply there, with the masks the recompute draws again
  dropout_same_masks = function()
    local ids = batch(2, 16)
    local function run(opts)
      local m, names = lora_model(0.3)
      lfl.manual_seed(5)
      return grads(m, names, ids, opts)
    end
    local plain = run({})
    local ckpt = run({gradient_checkpointing = true})
    t.assert_eq(max_diff(plain, ckpt), 0, "checkpointed dropout run")
    local m, names = lora_model(0)
    local nodrop = grads(m, names, ids, {})
    t.assert(math.abs(nodrop.loss - plain.loss) > 1e-6, "dropout changed the loss")
  end,

  policy_argument = function()
    local base = {model_name_or_path = model_dir, dataset = "x", template = "default"}
    local function resolve(extra)
      local a = {}
      for k, v in pairs(base) do a[k] = v end
      for k, v in pairs(extra) do a[k] = v end
      return lfl.args.resolve(a, {}, "test")
    end
    t.assert_eq(resolve({}).gradient_checkpointing_policy, "auto")
    t.assert_eq(resolve({gradient_checkpointing_policy = "full"}).gradient_checkpointing_policy, "full")
    t.assert_error(function() resolve({gradient_checkpointing_policy = "some"}) end,
      "gradient_checkpointing_policy: expected one of auto, selective, full, got \"some\"")
  end,

  -- what selective keeps beyond full checkpointing, by hand for the tiny
  -- llama (hidden 32, 4 heads of 8, 2 kv heads, intermediate 48, 2 layers):
  -- per layer q 32 + k 16 + v 16 + o 32 + gate 48 + up 48 (down_proj, the
  -- last, is not kept), a rank-4 side product for each of the 7 linears,
  -- attention output 32 and log-sum-exps 4, in f32
  selective_bytes = function()
    local m = lora_model()
    t.assert_eq(dec.selective_bytes(m, 10), 4 * 10 * 2 * (32 + 16 + 16 + 32 + 48 + 48 + 7 * 4 + 32 + 4))
  end,
})

t.run()
