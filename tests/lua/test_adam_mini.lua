-- use_adam_mini: lfl.train.adam_mini against adam_mini.Adam_mini 1.1.1 (the
-- package LlamaFactory imports; goldens by tests/ref/make_adam_mini_goldens.py):
-- the block kinds by name (heads for q/k, rows for v/o/MLP/embedding/head, one
-- block for norms, element-wise for biases) over 4 steps with weight decay; the
-- states' size; a checkpoint round trip; the recipe key end to end on the tiny
-- llama (the loss falls); LoRA and optimizer combinations refused.
local t = lfl.test
local am = require("lfl.train.adam_mini")
local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/methods/adam_mini.safetensors")

local tmp, model_dir = t.tiny_llama_dir("adam_mini")

local NAMES = {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
  "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.weight",
  "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
  "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight",
  "model.layers.0.input_layernorm.weight", "model.norm.weight", "lm_head.weight"}

local function fresh()
  local ps = {}
  for i, n in ipairs(NAMES) do ps[i] = gold[n .. ".p0"]:clone() end
  return ps
end
local OPTS = {lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, dim = 8, n_heads = 2}

local function recipe(extra)
  local r = {model_name_or_path = model_dir, stage = "sft", finetuning_type = "full", use_adam_mini = true,
    dataset = "identity", template = "chatml", cutoff_len = 64, max_samples = 8, per_device_train_batch_size = 4,
    max_steps = 10, learning_rate = 1e-2, lr_scheduler_type = "constant", logging_steps = 1, save_steps = 0,
    output_dir = tmp .. "/run", overwrite_output_dir = true, disable_tqdm = true}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

t.suite("adam_mini", {
  kinds = function()
    local want = {"row", "head", "adam", "head", "row", "row", "row", "row", "block", "block", "row"}
    for i, n in ipairs(NAMES) do t.assert_eq(am.kind(n), want[i], n) end
    t.assert(not am.decays("model.norm.weight") and not am.decays("model.layers.0.self_attn.q_proj.bias"), "no decay")
    t.assert(am.decays("model.layers.0.mlp.gate_proj.weight"), "decay")
  end,

  steps_match_the_package = function()
    local ps = fresh()
    local opt = am.AdamMini(NAMES, ps, OPTS)
    for step = 1, 4 do
      for i, n in ipairs(NAMES) do ps[i].grad = gold[n .. ".grad" .. step] end
      opt:step()
      for i, n in ipairs(NAMES) do t.assert_tensor_close(ps[i], gold[n .. ".p" .. step], 2e-6, 1e-6, n .. " step " .. step) end
    end
    -- second moments: 2 heads of q, 1 of k, a value a row elsewhere, one a norm, the bias's 8
    t.assert_eq(opt.state[ps[2]].v:numel(), 2, "q: one per head")
    t.assert_eq(opt.state[ps[4]].v:numel(), 1, "k: one per kv head")
    t.assert_eq(opt.state[ps[7]].v:numel(), 12, "gate_proj: one per row")
    t.assert_eq(opt.state[ps[10]].v:numel(), 1, "norm: one")
    t.assert_eq(opt.state[ps[3]].v:numel(), 8, "bias: element-wise")
  end,

  state_round_trip = function()
    local a, b = fresh(), fresh()
    local oa = am.AdamMini(NAMES, a, OPTS)
    for i, n in ipairs(NAMES) do a[i].grad = gold[n .. ".grad1"] end
    oa:step()
    local ts, meta = oa:state_tensors()
    for i = 1, #NAMES do b[i] = a[i]:clone() end
    local ob = am.AdamMini(NAMES, b, OPTS)
    ob:load_state_tensors(ts, meta)
    for i, n in ipairs(NAMES) do a[i].grad = gold[n .. ".grad2"]; b[i].grad = gold[n .. ".grad2"] end
    oa:step(); ob:step()
    for i, n in ipairs(NAMES) do t.assert_tensor_close(b[i], a[i], 0, 0, n) end
  end,

  trains_from_a_recipe = function()
    local res = lfl.trainer.run(lfl.args.resolve(recipe(), {}, "test"))
    local h = res.state.log_history
    t.assert(h[#h].loss < h[1].loss * 0.9, ("loss falls: %.4f -> %.4f"):format(h[1].loss, h[#h].loss))
    t.assert(res.state.optimizer.kind == "adam_mini", "Adam-mini ran")
  end,

  refused = function()
    t.assert_error(function() lfl.args.resolve(recipe({finetuning_type = "lora"}), {}, "test") end,
      "use_adam_mini: Adam-mini shares second moments")
    t.assert_error(function() lfl.args.resolve(recipe({use_muon = true}), {}, "test") end,
      "use_muon cannot be combined with use_adam_mini")
    t.assert_error(function() lfl.args.resolve(recipe({use_galore = true}), {}, "test") end,
      "use_adam_mini cannot be combined with use_galore")
    t.assert_error(function() am.AdamMini({"x.q_proj.weight"}, {lfl.zeros(3, 5)}, OPTS) end,
      "does not split into heads")
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
