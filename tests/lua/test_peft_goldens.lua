-- PEFT conformance against PEFT + torch.optim.AdamW (tests/ref/make_peft_goldens.py):
-- LoRA, rsLoRA, DoRA, LoRA+, full and freeze training on the tiny llama / qwen2
-- checkpoints give the same per-step losses and trained weights; adapters saved
-- by PEFT load here with PEFT's logits, adapters saved here load in PEFT with
-- lfl's logits; saved adapters carry PEFT's key names and config fields; merge
-- keeps the logits.
local t = lfl.test
local trainer = require("lfl.train.trainer")
local peft = lfl.peft
local root = lfl.home .. "/tests/golden/"
local fmt = string.format

local LR, WD, BETAS, EPS = 1e-3, 0.01, {0.9, 0.999}, 1e-8
local LOSS_TOL = 1e-4 -- relative, per step
-- relative Frobenius error of the update (trained - initial) of each trained tensor:
-- Adam's first step is nearly lr * sign(g), so elements whose gradient is near eps
-- turn f32 rounding differences into update differences (measured up to 7e-4)
local WEIGHT_TOL = 2e-3

local METHODS = {
  lora = {finetuning_type = "lora"},
  rslora = {finetuning_type = "lora", use_rslora = true},
  dora = {finetuning_type = "lora", use_dora = true},
  loraplus = {finetuning_type = "lora", loraplus_lr_ratio = 16},
  full = {finetuning_type = "full"},
  freeze = {finetuning_type = "freeze", freeze_trainable_layers = 1, freeze_trainable_modules = "all"},
}

local function rel_err(a, b)
  local d = a:double() - b:double()
  local num = math.sqrt((d * d):sum():item())
  local den = math.sqrt((b:double() * b:double()):sum():item())
  return num / math.max(den, 1e-30)
end

local function keys_of(tbl, prefix)
  local out = {}
  for k in pairs(tbl) do
    if not prefix then out[#out + 1] = k
    elseif k:sub(1, #prefix) == prefix then out[#out + 1] = k:sub(#prefix + 1) end
  end
  table.sort(out)
  return out
end

local function assert_same_list(got, want, what)
  t.assert(#got == #want, fmt("%s: %d names, expected %d", what, #got, #want))
  for i = 1, #want do t.assert(got[i] == want[i], fmt("%s: '%s' where '%s' expected", what, tostring(got[i]), want[i])) end
end

-- PEFT key "base_model.model.<mod>.lora_A.weight" -> the lfl tensor holding it
local function adapter_tensor(m, key)
  local mod, kind = key:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
  if mod then return m.adapters[mod][kind] end
  mod = key:match("^base_model%.model%.(.+)%.lora_magnitude_vector$")
  return mod and m.adapters[mod].magnitude
end

-- Sets up the method through the trainer (as a run would), puts the golden's
-- initial adapter values in, trains 5 AdamW steps and compares with the golden.
local function check_training(model_name, method)
  local g = lfl.safetensors.load(root .. "peft/" .. model_name .. "_" .. method .. ".safetensors")
  local m = lfl.model.load(root .. "models/" .. model_name)
  local a = {learning_rate = LR, weight_decay = WD, lora_rank = 4, lora_alpha = 8, lora_dropout = 0, lora_target = "all"}
  for k, v in pairs(METHODS[method]) do a[k] = v end
  local names, params, groups = trainer.setup_method(m, a)
  local lookup = {}
  if a.finetuning_type == "lora" then
    -- the trainable names are PEFT's, one for one
    assert_same_list(keys_of(g, "init."), (function() local c = {} for i, n in ipairs(names) do c[i] = n end
      table.sort(c) return c end)(), model_name .. " " .. method .. " trainable names")
    lfl.no_grad(function()
      for _, k in ipairs(keys_of(g, "init.")) do adapter_tensor(m, k):copy_(g["init." .. k]) end
    end)
    for _, k in ipairs(names) do lookup[k] = adapter_tensor(m, k) end
  else
    assert_same_list((function() local c = {} for i, n in ipairs(names) do c[i] = n end table.sort(c) return c end)(),
      keys_of(g, "step1."), model_name .. " " .. method .. " trainable names")
    for i, n in ipairs(names) do lookup[n] = params[i] end
  end
  local worst_loss, worst_w = 0, 0
  local function check_loss(got, want, what)
    worst_loss = math.max(worst_loss, math.abs(got - want) / math.abs(want))
    t.assert_close(got, want, LOSS_TOL * want, fmt("%s %s %s", model_name, method, what))
  end
  local opt = lfl.optim.AdamW(groups, {lr = LR, beta1 = BETAS[1], beta2 = BETAS[2], eps = EPS, weight_decay = WD})
  local losses = g.losses
  -- compared as updates (trained - initial), which a wrong gradient or learning
  -- rate changes by far more than it changes the weights themselves
  local init = {}
  for k, p in pairs(lookup) do init[k] = p:detach():clone() end
  local function check_weights(step)
    local worst, worst_name = 0, nil
    for _, k in ipairs(keys_of(g, "step" .. step .. ".")) do
      local e = rel_err(lookup[k] - init[k], g["step" .. step .. "." .. k] - init[k])
      if e > worst then worst, worst_name = e, k end
    end
    worst_w = math.max(worst_w, worst)
    t.assert(worst <= WEIGHT_TOL, fmt("%s %s step %d: %s relative error %.3g", model_name, method, step,
      tostring(worst_name), worst))
  end
  for step = 1, 5 do
    opt:zero_grad()
    local loss = m:loss(g.input_ids, g.labels)
    check_loss(loss:item(), losses[step], fmt("loss before step %d", step))
    loss:backward()
    opt:step()
    if step == 1 or step == 5 then check_weights(step) end
  end
  local final = lfl.no_grad(function() return m:loss(g.input_ids, g.labels):item() end)
  check_loss(final, losses[6], "loss after step 5")
  if os.getenv("LFL_TEST_VERBOSE") then
    print(fmt("      %s %s: worst loss rel err %.2g, worst update rel err %.2g", model_name, method, worst_loss, worst_w))
  end
  return m, g
end

local cases = {}
for _, model_name in ipairs({"llama", "qwen2"}) do
  for _, method in ipairs({"lora", "rslora", "dora", "loraplus", "full", "freeze"}) do
    cases[model_name .. "_" .. method] = function() check_training(model_name, method) end
  end
end
t.suite("peft_training", cases)

-- ---------------------------------------------------------------- adapters

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return lfl.json.decode(s, path)
end

local function logits_close(got, want, what)
  local d = t.max_abs_diff(got, want)
  t.assert(d <= 1e-4, fmt("%s: logits max abs diff %.3g", what, d))
end

local PY = {"py_adapter_llama_lora", "py_adapter_qwen2_dora", "py_adapter_llama_rslora"}
local LFL = {"lfl_adapter_llama_lora", "lfl_adapter_qwen2_dora", "lfl_adapter_qwen2_rslora"}

local adapters = {}

-- adapters written by PEFT's save_pretrained give PEFT's logits here
for _, name in ipairs(PY) do
  adapters["load_" .. name] = function()
    local g = lfl.safetensors.load(root .. "peft/py_adapters.safetensors")
    local ids = lfl.safetensors.load(root .. "peft/llama_lora.safetensors").input_ids
    local m = lfl.model.load(root .. "models/" .. name:match("^py_adapter_([^_]+)_"))
    peft.load_adapter(m, root .. "peft/" .. name)
    local logits = lfl.no_grad(function() return m:forward(ids) end)
    logits_close(logits, g[name .. ".logits"], name)
    -- merged weights give the same logits as the adapter
    peft.merge(m)
    t.assert(m.adapters == nil, "merge leaves no adapter behind")
    logits_close(lfl.no_grad(function() return m:forward(ids) end), g[name .. ".logits"], name .. " merged")
  end
end

-- adapters written by lfl (tests/ref/lfl_save_adapter.lua) gave these logits in PEFT
for _, name in ipairs(LFL) do
  adapters["peft_logits_" .. name] = function()
    local g = lfl.safetensors.load(root .. "peft/lfl_adapters.safetensors")
    local ids = lfl.safetensors.load(root .. "peft/llama_lora.safetensors").input_ids
    local m = lfl.model.load(root .. "models/" .. name:match("^lfl_adapter_([^_]+)_"))
    peft.load_adapter(m, root .. "peft/" .. name)
    logits_close(lfl.no_grad(function() return m:forward(ids) end), g[name .. ".logits"], name)
  end
end

-- an adapter saved by lfl after training has PEFT's key names, metadata and
-- config fields, and loads back with the same logits
for _, c in ipairs({{"llama", "lora", "py_adapter_llama_lora"}, {"qwen2", "dora", "py_adapter_qwen2_dora"},
                    {"llama", "rslora", "py_adapter_llama_rslora"}}) do
  local model_name, method, ref = c[1], c[2], c[3]
  adapters["save_like_peft_" .. model_name .. "_" .. method] = function()
    local m = check_training(model_name, method)
    local dir = os.tmpname() .. "_adapter"
    peft.save_adapter(m, dir, "tests/golden/models/" .. model_name)
    local ours = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
    local theirs = lfl.safetensors.load(root .. "peft/" .. ref .. "/adapter_model.safetensors")
    assert_same_list(keys_of(ours), keys_of(theirs), method .. " adapter keys")
    for k, v in pairs(theirs) do
      local s1, s2 = ours[k]:size(), v:size()
      t.assert(table.concat(s1, ",") == table.concat(s2, ","), fmt("%s: shape [%s], PEFT has [%s]", k,
        table.concat(s1, ","), table.concat(s2, ",")))
      t.assert(ours[k]:dtype() == v:dtype(), k .. ": dtype " .. ours[k]:dtype() .. ", PEFT has " .. v:dtype())
    end
    local cfg = read_json(dir .. "/adapter_config.json")
    local pcfg = read_json(root .. "peft/" .. ref .. "/adapter_config.json")
    assert_same_list(keys_of(cfg), keys_of(pcfg), method .. " adapter_config.json fields")
    for _, k in ipairs({"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "bias", "use_rslora", "use_dora",
                        "fan_in_fan_out", "init_lora_weights", "base_model_name_or_path", "lora_bias"}) do
      t.assert(cfg[k] == pcfg[k], fmt("adapter_config.json %s = %s, PEFT wrote %s", k, tostring(cfg[k]), tostring(pcfg[k])))
    end
    local tm, ptm = cfg.target_modules, pcfg.target_modules
    table.sort(ptm)
    assert_same_list(tm, ptm, "target_modules")
    local ids = lfl.safetensors.load(root .. "peft/llama_lora.safetensors").input_ids
    local want = lfl.no_grad(function() return m:forward(ids) end)
    local m2 = lfl.model.load(root .. "models/" .. model_name)
    peft.load_adapter(m2, dir)
    logits_close(lfl.no_grad(function() return m2:forward(ids) end), want, "reloaded " .. method)
    os.execute("rm -rf '" .. dir .. "'")
  end
end

adapters.merge_keeps_logits_after_training = function()
  local m = check_training("qwen2", "dora")
  local ids = lfl.safetensors.load(root .. "peft/qwen2_dora.safetensors").input_ids
  local want = lfl.no_grad(function() return m:forward(ids) end)
  peft.merge(m)
  logits_close(lfl.no_grad(function() return m:forward(ids) end), want, "merged dora")
end

-- with dropout, PEFT keeps the undropped W x + b and applies the DoRA terms to the
-- dropped-out input: y + (s - 1) W x' + s scaling B A x'. Dropout is replaced by a
-- deterministic stand-in (x' = x / 2) so the composition can be checked exactly.
adapters.dora_with_dropout_matches_peft_formula = function()
  local m = lfl.model.load(root .. "models/qwen2")
  lfl.manual_seed(5)
  peft.add_lora(m, {rank = 4, alpha = 8, target = {"q_proj"}, use_dora = true, dropout = 0.3})
  local mod = "model.layers.0.self_attn.q_proj"
  local e = m.adapters[mod]
  lfl.no_grad(function() e.B:normal_(0, 0.1); e.magnitude:copy_(e.magnitude * 1.3) end)
  local w, b = m.params[mod .. ".weight"], m.params[mod .. ".bias"]
  local x = lfl.randn(2, 3, 32)
  local saved = lfl.dropout
  lfl.dropout = function(t) return t * 0.5 end
  local ok, got = pcall(peft.apply, m, mod, x, lfl.linear(x, w, b), w, b)
  lfl.dropout = saved
  t.assert(ok, tostring(got))
  local xd = x * 0.5
  local sc = m.lora.scaling
  local s = e.magnitude / peft.row_norm(w + lfl.matmul(e.B, e.A) * sc)
  local want = lfl.linear(x, w, b) + lfl.linear(xd, w) * (s - 1) + lfl.linear(lfl.linear(xd, e.A), e.B) * sc * s
  t.assert_tensor_close(got, want, 1e-5, 1e-5)
end

adapters.bad_adapters = function()
  local m = lfl.model.load(root .. "models/llama")
  t.assert_error(function() peft.load_adapter(m, "/nonexistent") end, "adapter_config.json")
  local dir = os.tmpname() .. "_bad_adapter"
  local function with_config(edit)
    os.execute("rm -rf '" .. dir .. "' && cp -r '" .. root .. "peft/lfl_adapter_llama_lora' '" .. dir .. "'")
    local cfg = read_json(dir .. "/adapter_config.json")
    edit(cfg)
    local f = io.open(dir .. "/adapter_config.json", "w")
    f:write(lfl.json.encode(cfg))
    f:close()
  end
  with_config(function(c) c.peft_type = "PREFIX_TUNING" end)
  t.assert_error(function() peft.load_adapter(m, dir) end, "PREFIX_TUNING")
  with_config(function(c) c.r = 8 end)
  t.assert_error(function() peft.load_adapter(m, dir) end, "expected [8,48] and [32,8]")
  with_config(function(c) c.use_dora = true end)
  t.assert_error(function() peft.load_adapter(m, dir) end, "no lora_magnitude_vector")
  with_config(function(c) c.rank_pattern = {q_proj = 8} end)
  t.assert_error(function() peft.load_adapter(m, dir) end, "rank_pattern")
  -- an adapter for another model (phi3 has qkv_proj, not q_proj)
  with_config(function() end)
  t.assert_error(function() peft.load_adapter(lfl.model.load(root .. "models/phi3"), dir) end, "does not have")
  os.execute("rm -rf '" .. dir .. "'")
end

t.suite("peft_adapters", adapters)
t.run()
