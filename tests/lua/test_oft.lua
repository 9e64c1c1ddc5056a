-- OFT (lfl.oft, finetuning_type oft) against PEFT 0.18.1 (tests/ref/make_oft_goldens.py)
-- on the tiny llama: logits, loss and the oft_R gradients from a non-zero
-- initialisation for oft_block_size 8, 32 (adjusted to 24 on down_proj) and
-- oft_rank 2; PEFT's saved adapter loads here with PEFT's logits, lfl's saved
-- adapter loads in PEFT with lfl's logits; merge, module_dropout, the
-- gradient of the rotation against finite differences, refusals, the
-- arguments, and a short training whose loss falls.
local t = lfl.test
local oft = lfl.oft
local trainer = require("lfl.train.trainer")
local root = lfl.home .. "/tests/golden/"
local fmt = string.format

-- f32 throughout on both sides: measured logits <= 3e-7, grads <= 4e-8 abs
local LOGIT_TOL = 1e-5
local LOSS_TOL = 1e-5 -- relative
local GRAD_TOL = 1e-4 -- relative Frobenius error per tensor

local function rel_err(a, b)
  local d = a:double() - b:double()
  local num = math.sqrt((d * d):sum():item())
  local den = math.sqrt((b:double() * b:double()):sum():item())
  return num / math.max(den, 1e-30)
end

local function keys_of(tbl, prefix)
  local out = {}
  for k in pairs(tbl) do
    if k:sub(1, #prefix) == prefix then out[#out + 1] = k:sub(#prefix + 1) end
  end
  table.sort(out)
  return out
end

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return lfl.json.decode(s, path)
end

local function tiny()
  local m = lfl.model.load(root .. "models/llama")
  for _, p in ipairs(m:parameters()) do p:requires_grad(false) end
  return m
end

local CASES = {b8 = {0, 8}, b32 = {0, 32}, r2 = {2, 0}}

local goldens = {}
for case, rb in pairs(CASES) do
  goldens[case] = function()
    local g = lfl.safetensors.load(root .. "peft/llama_oft_" .. case .. ".safetensors")
    local m = tiny()
    -- set up as a run would: LlamaFactory's arguments through the trainer
    local a = {finetuning_type = "oft", oft_rank = rb[1], oft_block_size = rb[2], module_dropout = 0,
      lora_target = "all", learning_rate = 1e-3, weight_decay = 0}
    local names, params = trainer.setup_method(m, a)
    local sorted = {}
    for i, n in ipairs(names) do sorted[i] = n end
    table.sort(sorted)
    local want = keys_of(g, "init.")
    t.assert(#sorted == #want, fmt("%s: %d trainable tensors, PEFT has %d", case, #sorted, #want))
    for i = 1, #want do t.assert(sorted[i] == want[i], fmt("%s: %s where %s expected", case, sorted[i], want[i])) end
    lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
    local logits = m:forward(g.input_ids)
    local d = t.max_abs_diff(logits, g.logits)
    t.assert(d <= LOGIT_TOL, fmt("%s: logits max abs diff %.3g", case, d))
    local loss = m:loss(g.input_ids, g.labels)
    t.assert_close(loss:item(), g.loss:_at(1), LOSS_TOL * g.loss:_at(1), case .. " loss")
    loss:backward()
    for i, n in ipairs(names) do
      t.assert(params[i].grad ~= nil, fmt("%s: no gradient for %s", case, n))
      local e = rel_err(params[i].grad, g["grad." .. n])
      t.assert(e <= GRAD_TOL, fmt("%s: %s gradient relative error %.3g", case, n, e))
    end
  end
end
-- QOFT: OFT on a bitsandbytes NF4 (double-quantized) base, as PEFT's oft/bnb.py runs it;
-- lfl's 4-bit GEMM and bitsandbytes' CPU one sum in other orders (measured: logits 2.6e-6 abs,
-- loss 1e-7 and gradients 1.1e-6 relative)
goldens.qoft_nf4_dq = function()
  local g = lfl.safetensors.load(root .. "peft/llama_qoft_nf4_dq.safetensors")
  local m = lfl.model.load(root .. "peft/qlora_llama64", {quantize = {type = "nf4", double_quant = true}})
  t.assert_eq(m.params["model.layers.0.mlp.up_proj.weight"]:dtype(), "nf4")
  local names, params = trainer.setup_method(m, {finetuning_type = "oft", oft_rank = 0, oft_block_size = 16,
    module_dropout = 0, lora_target = "all", learning_rate = 1e-3, weight_decay = 0})
  t.assert(#names == #keys_of(g, "init."), "QOFT: the trainable tensors are PEFT's")
  lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
  local logits = m:forward(g.input_ids)
  local d = t.max_abs_diff(logits, g.logits)
  t.assert(d <= 1e-4, fmt("QOFT: logits max abs diff %.3g", d))
  local loss = m:loss(g.input_ids, g.labels)
  t.assert_close(loss:item(), g.loss:_at(1), 1e-5 * g.loss:_at(1), "QOFT loss")
  loss:backward()
  for i, n in ipairs(names) do
    local e = rel_err(params[i].grad, g["grad." .. n])
    t.assert(e <= 1e-3, fmt("QOFT: %s gradient relative error %.3g", n, e))
  end
end
t.suite("oft_goldens", goldens)

local adapters = {}

-- PEFT's save_pretrained output (the b8 case's initial values) gives PEFT's logits
adapters.peft_adapter_loads = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local m = tiny()
  local ad = oft.load(m, root .. "peft/py_adapter_llama_oft_b8")
  t.assert(#ad.modules == 14, fmt("%d modules loaded", #ad.modules))
  local logits = lfl.no_grad(function() return m:forward(g.input_ids) end)
  local d = t.max_abs_diff(logits, g.logits)
  t.assert(d <= LOGIT_TOL, fmt("PEFT's adapter: logits max abs diff %.3g", d))
end

-- lfl's adapter (tests/ref/lfl_save_oft_adapter.lua) as PEFT runs it
adapters.lfl_adapter_in_peft = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local want = lfl.safetensors.load(root .. "peft/lfl_oft_adapter.safetensors").logits
  local m = tiny()
  oft.load(m, root .. "peft/lfl_adapter_llama_oft")
  local logits = lfl.no_grad(function() return m:forward(g.input_ids) end)
  local d = t.max_abs_diff(logits, want)
  t.assert(d <= LOGIT_TOL, fmt("lfl's adapter in PEFT: logits max abs diff %.3g", d))
  local base = lfl.no_grad(function() return tiny():forward(g.input_ids) end)
  t.assert(t.max_abs_diff(base, want) > 1e-2, "the adapter changes nothing: PEFT did not load its weights")
end

-- save writes PEFT's keys and config fields; a reload gives the same logits
adapters.save_roundtrip = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local m = tiny()
  oft.add(m, {block_size = 8})
  local names, params = oft.parameters(m)
  lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
  local dir = os.tmpname() .. "_oft"
  oft.save(m, dir, "tests/golden/models/llama")
  local mine = read_json(dir .. "/adapter_config.json")
  local peft_cfg = read_json(root .. "peft/py_adapter_llama_oft_b8/adapter_config.json")
  for k, v in pairs(peft_cfg) do
    t.assert(mine[k] ~= nil, "adapter_config.json lacks " .. k)
    if k ~= "target_modules" then
      t.assert(tostring(mine[k]) == tostring(v), fmt("adapter_config.json %s = %s, PEFT wrote %s", k, tostring(mine[k]),
        tostring(v)))
    end
  end
  for k in pairs(mine) do t.assert(peft_cfg[k] ~= nil, "adapter_config.json has a field PEFT does not write: " .. k) end
  local ts = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
  local pts = lfl.safetensors.load(root .. "peft/py_adapter_llama_oft_b8/adapter_model.safetensors")
  for k, v in pairs(pts) do
    t.assert(ts[k] ~= nil, "saved adapter lacks " .. k)
    t.assert(t.max_abs_diff(ts[k], v) == 0, k .. " differs from PEFT's")
  end
  for k in pairs(ts) do t.assert(pts[k] ~= nil, "saved adapter has a key PEFT does not: " .. k) end
  local m2 = tiny()
  oft.load(m2, dir)
  local d = t.max_abs_diff(lfl.no_grad(function() return m2:forward(g.input_ids) end), g.logits)
  t.assert(d <= LOGIT_TOL, fmt("reloaded: logits max abs diff %.3g", d))
  lfl.fs.remove(dir)
end

-- merge folds the rotation into the weights: the plain model gives the adapted logits
adapters.merge = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_r2.safetensors")
  local m = tiny()
  oft.add(m, {rank = 2, block_size = 0})
  local names, params = oft.parameters(m)
  lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
  oft.merge(m)
  t.assert(m.oft == nil, "the adapter is removed after merge")
  local d = t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits)
  t.assert(d <= 1e-4, fmt("merged: logits max abs diff %.3g", d))
end

-- chat / predict / export load adapters through lfl.peft: an OFT folder becomes
-- model.oft, generation decodes through it (greedy ids equal the merged
-- model's), and lfl.peft.merge folds it in
adapters.through_peft = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local m = tiny()
  local ad = lfl.peft.load_adapter(m, root .. "peft/py_adapter_llama_oft_b8")
  t.assert(m.oft == ad and m.lora == nil, "the OFT adapter is model.oft")
  local d = t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits)
  t.assert(d <= LOGIT_TOL, fmt("through lfl.peft: logits max abs diff %.3g", d))
  local prompt = {5, 9, 17, 33}
  local live = lfl.generate.generate(m, prompt, {max_new_tokens = 6, temperature = 0})
  local merged = tiny()
  lfl.peft.load_adapter(merged, root .. "peft/py_adapter_llama_oft_b8")
  lfl.peft.merge(merged)
  t.assert(merged.oft == nil, "merged")
  local mids = lfl.generate.generate(merged, prompt, {max_new_tokens = 6, temperature = 0})
  local base = lfl.generate.generate(tiny(), prompt, {max_new_tokens = 6, temperature = 0})
  t.assert_eq(table.concat(live, ","), table.concat(mids, ","), "greedy ids: live OFT vs merged")
  t.assert(table.concat(live, ",") ~= table.concat(base, ","), "the adapter changes nothing in generation")
  t.assert_error(function() lfl.peft.load_adapter(tiny(), root .. "peft/py_adapter_llama_oft_b8", "ref1") end,
    "must be LoRA")
end

-- PEFT's refusals, and the options lfl does not implement, by name
adapters.refusals = function()
  local m = tiny()
  t.assert_error(function() oft.load(m, "/nonexistent") end, "adapter_config.json")
  local dir = os.tmpname() .. "_bad_oft"
  local function with_config(edit)
    lfl.fs.remove(dir)
    lfl.fs.mkdir(dir)
    local src = root .. "peft/py_adapter_llama_oft_b8/"
    lfl.fs.write(dir .. "/adapter_model.safetensors", lfl.fs.read(src .. "adapter_model.safetensors"))
    local cfg = read_json(src .. "adapter_config.json")
    edit(cfg)
    lfl.fs.write(dir .. "/adapter_config.json", lfl.json.encode(cfg))
  end
  with_config(function(c) c.coft = true end)
  t.assert_error(function() oft.load(m, dir) end, "coft")
  with_config(function(c) c.block_share = true end)
  t.assert_error(function() oft.load(m, dir) end, "block_share")
  with_config(function(c) c.use_cayley_neumann = false end)
  t.assert_error(function() oft.load(m, dir) end, "use_cayley_neumann")
  with_config(function(c) c.bias = "oft_only" end)
  t.assert_error(function() oft.load(m, dir) end, "bias")
  with_config(function(c) c.modules_to_save = {"lm_head"} end)
  t.assert_error(function() oft.load(m, dir) end, "modules_to_save")
  with_config(function(c) c.oft_block_size = nil end)
  t.assert_error(function() oft.load(m, dir) end, "before 0.14")
  with_config(function(c) c.oft_block_size = 4 end)
  t.assert_error(function() oft.load(m, dir) end, "layers.0.mlp.down_proj.oft_R.weight has oft_R.weight [6,28], expected [12,6]")
  with_config(function(c) c.r = 4 end)
  t.assert_error(function() oft.load(m, dir) end, "exactly one of oft_rank")
  with_config(function(c) c.peft_type = "LORA" end)
  t.assert_error(function() oft.load(m, dir) end, "not OFT")
  lfl.fs.remove(dir)
  t.assert_error(function() oft.add(tiny(), {rank = 2, block_size = 8}) end, "exactly one of oft_rank")
  t.assert_error(function() oft.add(tiny(), {block_size = 8, dropout = 1}) end, "module_dropout")
  t.assert_error(function() oft.add(tiny(), {block_size = 8, target = "nope_proj"}) end, "nope_proj")
end
t.suite("oft_adapters", adapters)

local parts = {}

-- PEFT's adjust_oft_parameters: the nearest divisor, the lower on a tie
parts.adjust = function()
  t.assert_eq(oft.adjust(48, 32), 24)
  t.assert_eq(oft.adjust(48, 5), 4) -- 4 and 6 tie at distance 1: the lower
  t.assert_eq(oft.adjust(48, 7), 6)
  t.assert_eq(oft.adjust(48, 11), 12)
  t.assert_eq(oft.adjust(48, 64), 48)
  local nb, bs = oft.layout(4096, 0, 32)
  t.assert(nb == 128 and bs == 32, "4096 / 32")
  nb, bs = oft.layout(48, 5, 0)
  t.assert(nb == 4 and bs == 12, "r 5 on 48 inputs -> 4 blocks of 12")
end

-- the rotation is (nearly) orthogonal for small Q and its backward matches finite differences
parts.rotation = function()
  lfl.manual_seed(3)
  local vec = (lfl.randn(3, 6) * 0.05):double()
  local eye = lfl.eye(4, "f64"):view(1, 4, 4):expand(3, 4, 4)
  -- the truncated series is orthogonal up to O(|Q|^4): the error falls with more terms
  local function orth_err(terms)
    local R = oft.rotation(vec, 4, terms)
    return t.max_abs_diff(lfl.matmul(R:transpose(2, 3), R), eye)
  end
  local e5, e12 = orth_err(5), orth_err(12)
  t.assert(e5 < 1e-3 and e12 < e5 / 10, fmt("R^T R - I: %.3g with 5 terms, %.3g with 12", e5, e12))
  -- one term is the identity, two are I + 2Q
  t.assert(t.max_abs_diff(oft.rotation(vec, 4, 1), eye) == 0, "1 term: I")
  local Q = oft.skew(vec, 4)
  t.assert(t.max_abs_diff(Q + Q:transpose(2, 3), lfl.zeros(3, 4, 4, "f64")) == 0, "Q is skew-symmetric")
  t.assert(t.max_abs_diff(oft.rotation(vec, 4, 2), eye + Q * 2) < 1e-15, "2 terms: I + 2Q")
  local x = lfl.randn(2, 5, 12):double()
  t.gradcheck(function(v, xx) return oft.rotate(xx, oft.rotation(v, 4)) end, {vec:requires_grad(), x:requires_grad()})
end

-- module_dropout: in training int(p * r) blocks act as the identity, none in eval
parts.module_dropout = function()
  local m = tiny()
  local ad = oft.add(m, {block_size = 4, dropout = 0.5, target = {"q_proj"}})
  local mod = ad.modules[1]
  lfl.manual_seed(5)
  lfl.no_grad(function() ad.weights[mod]:normal_(0, 0.3) end)
  local w = m.params[mod .. ".weight"]
  -- the identity's rows: each output row of the rotation of I shows which blocks rotate
  local x = lfl.eye(32)
  local eval = lfl.no_grad(function() return oft.linear(m, mod, x, w) end)
  local train = oft.linear(m, mod, x, w) -- grad enabled: training
  local base = lfl.linear(x, w)
  local same_base, same_eval = 0, 0
  for blk = 0, 7 do
    local rows = {train:narrow(1, blk * 4 + 1, 4), base:narrow(1, blk * 4 + 1, 4), eval:narrow(1, blk * 4 + 1, 4)}
    if t.max_abs_diff(rows[1], rows[2]) < 1e-6 then same_base = same_base + 1 end
    if t.max_abs_diff(rows[1], rows[3]) < 1e-6 then same_eval = same_eval + 1 end
  end
  t.assert(same_base == 4 and same_eval == 4, fmt("module_dropout 0.5 of 8 blocks: %d identity, %d rotated",
    same_base, same_eval))
end

-- gradient checkpointing recomputes each layer with the same module_dropout
-- draws (the checkpoint replays lfl's generator): the gradients equal those
-- of a plain forward
parts.checkpointing = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local function grads(ckpt)
    local m = tiny()
    local ad = oft.add(m, {block_size = 8, dropout = 0.5})
    local names, params = ad:parameters()
    lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
    lfl.manual_seed(77)
    local loss = m:loss(g.input_ids, g.labels, {gradient_checkpointing = ckpt})
    loss:backward()
    local out = {}
    for i, n in ipairs(names) do out[n] = params[i].grad end
    return out, loss:item()
  end
  local a, la = grads(true)
  local b, lb = grads(false)
  t.assert_eq(la, lb, "loss with and without checkpointing")
  local n = 0
  for k, v in pairs(b) do
    n = n + 1
    t.assert(a[k] ~= nil, "checkpointed: no gradient for " .. k)
    t.assert(t.max_abs_diff(a[k], v) <= 1e-6, fmt("%s: gradient differs under checkpointing by %.3g", k,
      t.max_abs_diff(a[k], v)))
  end
  t.assert(n == 14, "14 gradients")
end

-- arguments: oft's keys apply, LlamaFactory's rules, and lfl's limits by name
parts.args = function()
  local function resolve(over)
    local a = {model_name_or_path = "x", stage = "sft", finetuning_type = "oft", output_dir = "/tmp/x",
      dataset = "alpaca_demo", template = "llama3"}
    for k, v in pairs(over) do a[k] = v end
    return lfl.args.resolve(a, {}, "test")
  end
  local a = resolve({oft_block_size = 32, oft_target = "all"})
  t.assert(a.oft_block_size == 32 and a.oft_rank == 0 and a.module_dropout == 0, "LlamaFactory's defaults")
  t.assert_error(function() resolve({oft_rank = 8}) end, "exactly one of oft_rank")
  t.assert_error(function() resolve({oft_rank = 0, oft_block_size = 0}) end, "exactly one of oft_rank")
  t.assert_error(function() resolve({oft_target = "q_proj,v_proj"}) end, "lora_target")
  resolve({oft_target = "q_proj,v_proj", lora_target = "q_proj,v_proj"})
  t.assert_error(function() resolve({stage = "dpo"}) end, "stage sft and pt")
  t.assert_error(function() resolve({module_dropout = 1}) end, "module_dropout")
  t.assert_error(function() resolve({finetuning_type = "lora", oft_block_size = 16}) end, "finetuning_type oft")
  t.assert_error(function() resolve({additional_target = "lm_head"}) end, "additional_target")
end

-- a few AdamW steps on the tiny llama: the loss falls, only oft_R moves
parts.training_smoke = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local m = tiny()
  local w0 = m.params["model.layers.0.self_attn.q_proj.weight"]:clone()
  local names, params, groups = trainer.setup_method(m, {finetuning_type = "oft", oft_rank = 0, oft_block_size = 8,
    module_dropout = 0, lora_target = "all", learning_rate = 1e-2, weight_decay = 0})
  local opt = lfl.optim.AdamW(groups, {lr = 1e-2})
  local first, last
  for step = 1, 12 do
    opt:zero_grad()
    local loss = m:loss(g.input_ids, g.labels)
    if step == 1 then first = loss:item() end
    last = loss:item()
    loss:backward()
    opt:step()
  end
  print(fmt("      OFT training: loss %.4f -> %.4f", first, last))
  t.assert(last < first * 0.9, fmt("loss %.4f -> %.4f does not fall", first, last))
  t.assert(t.max_abs_diff(m.params["model.layers.0.self_attn.q_proj.weight"], w0) == 0, "the base weight moved")
  t.assert(#names == 14, "14 oft_R tensors train")
end
-- pure_bf16 keeps oft_R in bf16; the rotation is computed in f32 from it, so
-- the loss and gradients are the f32 ones up to bf16's rounding of the parameters
parts.pure_bf16 = function()
  local g = lfl.safetensors.load(root .. "peft/llama_oft_b8.safetensors")
  local m = tiny()
  local names, params = trainer.setup_method(m, {finetuning_type = "oft", oft_rank = 0, oft_block_size = 8,
    module_dropout = 0, lora_target = "all", learning_rate = 1e-3, weight_decay = 0, pure_bf16 = true})
  t.assert_eq(params[1]:dtype(), "bf16", "pure_bf16: oft_R in bf16")
  lfl.no_grad(function() for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end end)
  local loss = m:loss(g.input_ids, g.labels)
  t.assert_close(loss:item(), g.loss:_at(1), 1e-3 * g.loss:_at(1), "bf16 loss")
  loss:backward()
  for i, n in ipairs(names) do
    t.assert_eq(params[i].grad:dtype(), "bf16", n .. " gradient dtype")
    local e = rel_err(params[i].grad, g["grad." .. n])
    t.assert(e <= 2e-2, fmt("bf16: %s gradient relative error %.3g", n, e))
  end
end

-- a checkpoint of an OFT run (its adapter in PEFT's layout, the optimizer, the
-- position) resumes to the uninterrupted run's losses (SmolLM2 through lfl.trainer)
parts.checkpoint_resume = function()
  local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
  local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  t.assert(io.open(model, "rb") ~= nil, model .. " is missing (tests/fixtures.sh fetches it)")
  local tmp = os.tmpname() .. "_oft_resume"
  local function run(over)
    local a = {model_name_or_path = model, stage = "sft", dataset = "alpaca_demo", template = "smollm",
      finetuning_type = "oft", oft_block_size = 32, module_dropout = 0.25, cutoff_len = 32, max_samples = 4,
      per_device_train_batch_size = 2, max_steps = 4, logging_steps = 1, save_steps = 2, learning_rate = 1e-4,
      lr_scheduler_type = "constant", disable_tqdm = true, seed = 7, output_dir = tmp .. "/a",
      overwrite_output_dir = true}
    for k, v in pairs(over) do a[k] = v end
    a = lfl.args.resolve(a, {}, "test")
    lfl.trainer.run(a)
    local l = {}
    for line in io.lines(a.output_dir .. "/trainer_log.jsonl") do
      local r = lfl.json.decode(line)
      if r.loss then l[r.current_steps] = r.loss end
    end
    return l
  end
  local ref = run({})
  local cfg = read_json(tmp .. "/a/checkpoint-2/adapter_config.json")
  t.assert_eq(cfg.peft_type, "OFT", "the checkpoint's adapter")
  t.assert_eq(cfg.module_dropout, 0.25, "module_dropout saved")
  local l = run({output_dir = tmp .. "/b", resume_from_checkpoint = tmp .. "/a/checkpoint-2"})
  for s = 3, 4 do
    t.assert(l[s] ~= nil, "no loss logged at step " .. s)
    t.assert_close(l[s], ref[s], 1e-6, "resumed: step " .. s)
  end
  lfl.fs.remove(tmp)
end
t.suite("oft_parts", parts)
t.run()
