-- use_muon: lfl.train.muon against LlamaFactory's own Muon (goldens by
-- tests/ref/make_muon_goldens.py): Newton-Schulz alone, and 4 steps of every
-- parameter kind (tall, wide and square weights by Muon; embeddings, head and a
-- norm by its AdamW) with weight decay; a checkpoint round trip; the recipe key
-- end to end on the tiny llama (the loss falls, the log names the split); and
-- the combinations LlamaFactory would silently drop are refused.
local t = lfl.test
local muon = require("lfl.train.muon")
local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/methods/muon.safetensors")
local tmp, model_dir = t.tiny_llama_dir("muon")

local NAMES = {"layers.0.q_proj.weight", "layers.0.down_proj.weight", "layers.0.o_proj.weight", "embed_tokens.weight",
  "lm_head.weight", "layers.0.input_layernorm.weight"}

local function fresh()
  local params = {}
  for i, n in ipairs(NAMES) do params[i] = gold["muon." .. n .. ".p0"]:clone() end
  return params
end

t.suite("muon", {
  newton_schulz_matches = function()
    local X = muon.newton_schulz(gold["ns.G"], 5)
    -- bf16 values on both sides; f32 sums in another order move a few by one bf16 ulp
    t.assert_tensor_close(X, gold["ns.X"], 1e-2, 1e-2, "orthogonalized")
    local d = (X - gold["ns.X"]):abs():max():item()
    t.assert(d < 2e-2, "max difference " .. d)
  end,

  steps_match_llamafactory = function()
    local params = fresh()
    local opt = muon.Muon({{params = params, names = NAMES, weight_decay = 0.1}}, {lr = 2e-2, beta1 = 0.9, beta2 = 0.999,
      eps = 1e-8})
    t.assert_eq(opt.n_muon, 3, "3 Muon params")
    t.assert_eq(opt.n_adamw, 3, "embeddings, head and the norm take AdamW")
    for step = 1, 4 do
      for i, n in ipairs(NAMES) do params[i].grad = gold["muon." .. n .. ".grad" .. step] end
      opt:step()
      for i, n in ipairs(NAMES) do
        local want = gold["muon." .. n .. ".p" .. step]
        if muon.uses_muon(n, params[i]) then
          -- the update is a bf16 matrix times lr 0.2 sqrt(max dim) (~0.014): bf16 ulps of it
          t.assert_tensor_close(params[i], want, 2e-4, 1e-3, n .. " step " .. step)
        else
          t.assert_tensor_close(params[i], want, 1e-5, 1e-6, n .. " step " .. step)
        end
      end
    end
  end,

  state_round_trip = function()
    local a, b = fresh(), fresh()
    local oa = muon.Muon({{params = a, names = NAMES, weight_decay = 0.1}}, {lr = 2e-2, beta2 = 0.999})
    for i, n in ipairs(NAMES) do a[i].grad = gold["muon." .. n .. ".grad1"] end
    oa:step()
    local ts, meta = oa:state_tensors()
    t.assert(ts["layers.0.q_proj.weight.momentum_buffer"] ~= nil, "Muon momentum saved")
    t.assert(ts["embed_tokens.weight.exp_avg_sq"] ~= nil and meta["embed_tokens.weight"] == 1, "AdamW moments saved")
    for i = 1, #NAMES do b[i] = a[i]:clone() end
    local ob = muon.Muon({{params = b, names = NAMES, weight_decay = 0.1}}, {lr = 2e-2, beta2 = 0.999})
    ob:load_state_tensors(ts, meta)
    for i, n in ipairs(NAMES) do
      a[i].grad = gold["muon." .. n .. ".grad2"]
      b[i].grad = gold["muon." .. n .. ".grad2"]
    end
    oa:step(); ob:step()
    for i, n in ipairs(NAMES) do t.assert_tensor_close(b[i], a[i], 0, 0, n .. " resumed step") end
  end,

  trains_from_a_recipe = function()
    local out = tmp .. "/run"
    local lines = {}
    local orig = print
    print = function(...) lines[#lines + 1] = table.concat({...}, " "); orig(...) end
    local ok, res = pcall(lfl.trainer.run, lfl.args.resolve({model_name_or_path = model_dir, stage = "sft",
      finetuning_type = "full", use_muon = true, dataset = "identity", template = "chatml", cutoff_len = 64,
      max_samples = 8, per_device_train_batch_size = 4, max_steps = 10, learning_rate = 1e-2, lr_scheduler_type = "constant", logging_steps = 1,
      save_steps = 0, output_dir = out, overwrite_output_dir = true, disable_tqdm = true}, {}, "test"))
    print = orig
    t.assert(ok, tostring(res))
    local log = table.concat(lines, "\n")
    t.assert(log:find("Muon optimizer: %d+ Muon params and %d+ AdamW params") ~= nil, "the split is logged")
    local h = res.state.log_history
    local first, last = h[1].loss, h[#h].loss
    t.assert(last < first * 0.9, ("loss falls: %.4f -> %.4f"):format(first, last))
  end,

  refuses_combinations = function()
    for _, extra in ipairs({{use_galore = true}, {use_badam = true}}) do
      local r = {model_name_or_path = model_dir, stage = "sft", finetuning_type = "full", use_muon = true,
        dataset = "identity", template = "chatml", output_dir = os.tmpname()}
      for k, v in pairs(extra) do r[k] = v end
      t.assert_error(function() lfl.args.resolve(r, {}, "test") end, "use_muon cannot be combined")
    end
    t.assert_error(function()
      lfl.args.resolve({model_name_or_path = model_dir, stage = "sft", finetuning_type = "lora", use_muon = true,
        loraplus_lr_ratio = 16, dataset = "identity", template = "chatml", output_dir = os.tmpname()}, {}, "test")
    end, "use_muon cannot be combined with loraplus_lr_ratio")
  end,
})

local ok = t.run()
lfl.fs.remove(tmp)
return ok
