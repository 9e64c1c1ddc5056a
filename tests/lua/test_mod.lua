-- Mixture-of-depths (lfl.model.mod, decoder's routed layers) against the
-- MoD package 1.2.0 (tests/ref/make_mod_goldens.py): `load` reads what MoD's
-- save_pretrained wrote, `convert` renames the layers as apply_mod_to_hf does,
-- the eval forward (capacity 0.125), a two-row batch, the same two rows packed
-- in one row, and two train-mode forwards (capacity 1.0, then 0.5625) with
-- their losses and gradients match; the refusals name the setting; a CI run
-- converts the tiny llama, trains with falling loss, saves and loads back.
local t = lfl.test
local fmt = string.format
local mod = require("lfl.model.mod")
local decoder = require("lfl.model.decoder")

local root = lfl.home .. "/tests/golden/mod/"
local g = lfl.safetensors.load(root .. "mod_cases.safetensors")
-- float32 on both sides; lfl's GEMMs and attention sum in other orders than
-- torch's (measured: eval logits 2.1e-6 abs, batch 2.5e-6, train-mode logits
-- 6e-5 abs, losses 2e-6 abs, gradients 5.3e-4 of the tensor's largest, in
-- layer 0, whose gradient passes through both routed layers' score products);
-- the router scores sit at least min_gap (0.045) from their thresholds, so
-- the selections are the same
local LOGIT_TOL, LOSS_TOL, GRAD_TOL = 1e-4, 1e-5, 1e-3

local function load_mod() return lfl.model.load(root .. "llama_mod", {mixture_of_depths = "load"}) end

-- the selection mask [1, T] of a routed layer from the forward's 1-based flat indices
local function mask_of(sel, T)
  local m = {}
  for j = 1, T do m[j] = 0 end
  for _, j in ipairs(sel) do m[j] = 1 end
  return lfl.tensor({m}, "i64")
end

local function eval_forward(m, ids, opts)
  return lfl.no_grad(function() return m:forward(ids, opts) end)
end

local tmp, tiny_dir = t.tiny_llama_dir("mod")

local function train(extra)
  local r = {model_name_or_path = tiny_dir, stage = "sft", dataset = "identity", template = "chatml", cutoff_len = 64,
    max_samples = 8, per_device_train_batch_size = 4, max_steps = 8, learning_rate = 5e-3, logging_steps = 1,
    lr_scheduler_type = "constant", save_steps = 0, output_dir = tmp .. "/run", overwrite_output_dir = true,
    disable_tqdm = true, finetuning_type = "full", mixture_of_depths = "convert"}
  for k, v in pairs(extra or {}) do r[k] = v end
  return lfl.trainer.new(lfl.args.resolve(r, {}, "test"))
end

t.suite("mod", {
  load_reads_mod_checkpoint = function()
    local m = load_mod()
    t.assert(m.mod ~= nil, "MoD state")
    t.assert_eq(m.mod.capacity, 0.125)
    t.assert(m.mod.layers[2] and m.mod.layers[4] and not m.mod.layers[1] and not m.mod.layers[3], "odd layers routed")
    t.assert_eq(m.config.architectures[1], "LlamaMoDForCausalLM")
    t.assert(m.params["model.layers.1.block.self_attn.q_proj.weight"] ~= nil, "block names")
    t.assert(m.params["model.layers.0.self_attn.q_proj.weight"] ~= nil, "plain layer names")
    t.assert_eq(m.params["model.layers.3.router.weight_predictor.weight"]:dtype(), "f32")
  end,

  eval_logits_and_selection = function()
    local m = load_mod()
    local sel = {}
    local logits = eval_forward(m, g["eval.input_ids"], {mod_selection = sel})
    local d = t.max_abs_diff(logits, g["eval.logits"])
    t.assert(d <= LOGIT_TOL, fmt("eval logits max abs diff %.3g", d))
    t.assert_eq(sel.capacity, 0.125)
    for _, i in ipairs({1, 3}) do
      t.assert_tensor_close(mask_of(sel[i + 1], 24), g["eval.sel." .. i], 0, 0, "layer " .. i .. " selection")
    end
    -- the routing changes the output: not the plain llama's logits
    local plain = lfl.model.load(root .. "llama_plain")
    t.assert(t.max_abs_diff(eval_forward(plain, g["eval.input_ids"]), g["eval.logits"]) > 0.05, "routing matters")
  end,

  batch_and_packed_rows = function()
    local m = load_mod()
    local ids = g["batch.input_ids"]
    local d = t.max_abs_diff(eval_forward(m, ids), g["batch.logits"])
    t.assert(d <= LOGIT_TOL, fmt("batch logits max abs diff %.3g", d))
    -- the two rows packed in one (positions restart, segments 1 and 2): each
    -- example routes its own top-k, as MoD routes one example per row
    local packed = ids:reshape(1, 32)
    local pos, seg = {}, {}
    for j = 1, 32 do pos[j], seg[j] = (j - 1) % 16, j <= 16 and 1 or 2 end
    local lp = eval_forward(m, packed, {position_ids = lfl.tensor({pos}, "i64"), segments = lfl.tensor({seg}, "i64")})
    d = t.max_abs_diff(lp:reshape(2, 16, 64), g["batch.logits"])
    t.assert(d <= LOGIT_TOL, fmt("packed logits max abs diff %.3g", d))
  end,

  -- what lfl saves (tests/ref/lfl_save_mod.lua) is what the MoD package's
  -- AutoMoDModelForCausalLM reads: its logits for that folder are lfl's
  mod_reads_lfl_save = function()
    local m = lfl.model.load(root .. "lfl_saved", {mixture_of_depths = "load"})
    local d = t.max_abs_diff(eval_forward(m, g["eval.input_ids"]), g["lfl_saved.logits"])
    t.assert(d <= LOGIT_TOL, fmt("lfl-saved model: logits max abs diff %.3g", d))
  end,

  convert_matches_apply_mod_to_hf = function()
    local m = lfl.model.load(root .. "llama_plain")
    mod.convert(m)
    local ref = lfl.safetensors.load(root .. "llama_mod/model.safetensors")
    local want, have = {}, {}
    for n in pairs(ref) do want[#want + 1] = n end
    table.sort(want)
    for i, n in ipairs(m.names) do have[i] = n end
    t.assert_eq(table.concat(have, " "), table.concat(want, " "), "parameter names")
    -- nn.Linear's init: uniform in +-1/sqrt(32)
    local w = m.params["model.layers.1.router.weight_predictor.weight"]
    t.assert(w:abs():max():item() <= 1 / math.sqrt(32) and w:abs():max():item() > 0, "router init bound")
    for n, v in pairs(ref) do
      if not n:find("router", 1, true) then
        t.assert_tensor_close(m.params[n], v, 0, 0, n .. " moved unchanged")
      end
    end
    lfl.no_grad(function()
      for _, n in ipairs(want) do if n:find("router", 1, true) then m.params[n]:copy_(ref[n]) end end
    end)
    local d = t.max_abs_diff(eval_forward(m, g["eval.input_ids"]), g["eval.logits"])
    t.assert(d <= LOGIT_TOL, fmt("converted eval logits max abs diff %.3g", d))
    t.assert_eq(m.config.architectures[1], "LlamaMoDForCausalLM")
    t.assert_error(function() mod.convert(m) end, "already a mixture-of-depths model")
  end,

  train_mode_forwards_and_gradients = function()
    local m = load_mod()
    local names, params = m:named_parameters()
    for _, n in ipairs(names) do params[n]:requires_grad(true) end
    local ids = g["eval.input_ids"]
    for step = 1, 2 do
      local pre = "train" .. step .. "."
      for _, n in ipairs(names) do params[n].grad = nil end
      local sel = {}
      local logits = m:forward(ids, {mod_selection = sel})
      t.assert_close(sel.capacity, 0.125 + 0.875 / step, 1e-12, "capacity")
      -- capacity 1.0 routes (and scales) nearly every token: larger logits, relative tolerance
      local d = t.max_abs_diff(logits:detach(), g[pre .. "logits"])
      local tol = LOGIT_TOL * math.max(1, g[pre .. "logits"]:abs():max():item())
      t.assert(d <= tol, fmt("%slogits max abs diff %.3g (tolerance %.3g)", pre, d, tol))
      for _, i in ipairs({1, 3}) do
        t.assert_tensor_close(mask_of(sel[i + 1], 24), g[pre .. "sel." .. i], 0, 0, pre .. "layer " .. i .. " selection")
      end
      -- that forward counted as a training call too: the gradient's forward is the next one
      m.mod.step = step - 1
      local loss = m:loss(ids, ids)
      t.assert_close(loss:item(), g[pre .. "loss"]:_at(1), LOSS_TOL, pre .. "loss")
      loss:backward()
      -- gradient checkpointing recomputes the routed layer with the same selection
      if step == 1 then
        for _, n in ipairs(names) do params[n].grad = nil end
        m.mod.step = 0
        m:loss(ids, ids, {gradient_checkpointing = true}):backward()
        local ck = {}
        for _, n in ipairs(names) do ck[n] = params[n].grad end
        for _, n in ipairs(names) do params[n].grad = nil end
        m.mod.step = 0
        m:loss(ids, ids):backward()
        for _, n in ipairs(names) do
          t.assert(ck[n] ~= nil, "checkpointed: no gradient for " .. n)
          t.assert(t.max_abs_diff(ck[n], params[n].grad) <= 1e-6 * math.max(1, params[n].grad:abs():max():item()),
            "checkpointed gradient of " .. n)
        end
      end
      for _, n in ipairs(names) do
        local gr = params[n].grad
        t.assert(gr ~= nil, pre .. "no gradient for " .. n)
        -- relative to the tensor's largest gradient, at least 0.01 (layer 3's
        -- router gets ~1e-6 in train1: its terms cancel)
        local ref = g[pre .. "grad." .. n]
        local e = (gr - ref):abs():max():item() / math.max(ref:abs():max():item(), 1e-2)
        t.assert(e <= GRAD_TOL, fmt("%s%s gradient relative error %.3g", pre, n, e))
      end
    end
  end,

  refusals = function()
    -- a MoD checkpoint read as a plain one would lose its routed layers
    t.assert_error(function() lfl.model.load(root .. "llama_mod") end,
      "LlamaMoDForCausalLM is a mixture-of-depths checkpoint")
    t.assert_error(function() lfl.model.load(root .. "llama_plain", {mixture_of_depths = "load"}) end,
      "the checkpoint is not a mixture-of-depths model")
    -- generation: the routed layers have no KV cache
    local m = load_mod()
    t.assert_error(function()
      lfl.no_grad(function() m:forward(g["eval.input_ids"], {cache = decoder.new_cache()}) end)
    end, "generation (a KV cache) with a mixture-of-depths model is not implemented")
    -- a family lfl has that LlamaFactory's MOD_SUPPORTED_MODELS lacks
    local q = lfl.model.load(root .. "llama_plain")
    local c = {}
    for k, v in pairs(q.config) do c[k] = v end
    c.model_type = "qwen2"
    q.config = c
    t.assert_error(function() mod.convert(q) end, "model_type qwen2 is not supported")
    t.assert_error(function() train({finetuning_type = "lora"}) end,
      "mixture_of_depths: convert trains with finetuning_type full or freeze (this run's is lora)")
    t.assert_error(function() train({predict_with_generate = true, do_predict = true}) end,
      "mixture_of_depths: predict_with_generate:")
    t.assert_error(function() train({mixture_of_depths = "maybe"}) end, "mixture_of_depths")
    t.assert_error(function()
      require("lfl.cmd.export").export(lfl.args.resolve({model_name_or_path = tiny_dir, export_dir = tmp .. "/x",
        mixture_of_depths = "convert", do_train = false}, {}, "test"))
    end, "export: mixture_of_depths: convert would write a model whose new routers are untrained")
  end,

  -- the CI run: convert the tiny llama (2 layers: layer 1 routed), full
  -- fine-tuning with gradient checkpointing on packed batches, the loss falls;
  -- the saved folder is MoD's layout and `load` reads it back to the same logits
  -- (at capacity 0.125, as the MoD package's from_pretrained starts)
  train_save_load = function()
    local tr = train()
    t.assert(tr.model.mod ~= nil and tr.model.mod.layers[2], "converted")
    t.assert(tr.gradient_checkpointing, "gradient checkpointing on (LlamaFactory's default)")
    local routers = 0
    for _, n in ipairs(tr.names) do if n:find("router", 1, true) then routers = routers + 1 end end
    t.assert_eq(routers, 2, "the router's weight and bias train")
    local first, last
    for _ = 1, 8 do
      local info = tr:step()
      first = first or info.loss
      last = info.loss
    end
    t.assert(last < 0.95 * first, fmt("loss falls: %.4f -> %.4f", first, last))
    t.assert_eq(tr.model.mod.step, 8, "one training call per step (8 steps, one micro-batch each)")
    local res = tr:finish()
    local out = tmp .. "/run"
    local cfg = lfl.json.decode(lfl.fs.read(out .. "/config.json"))
    t.assert_eq(cfg.architectures[1], "LlamaMoDForCausalLM")
    local saved = lfl.safetensors.load(out .. "/model.safetensors")
    t.assert(saved["model.layers.1.block.mlp.down_proj.weight"] ~= nil and saved["model.layers.0.mlp.down_proj.weight"]
      and saved["model.layers.1.router.weight_predictor.bias"] ~= nil, "MoD's parameter names")
    local back = lfl.model.load(out, {mixture_of_depths = "load"})
    t.assert_eq(back.mod.capacity, 0.125)
    local trained = res.model or tr.model
    trained.mod.capacity = 0.125
    local ids = lfl.tensor({{1, 5, 9, 2, 7, 3, 11, 4, 8, 6, 10, 12, 13, 14, 15, 16}}, "i64")
    local sel = {}
    local a = eval_forward(back, ids, {mod_selection = sel})
    t.assert_eq(#sel[2], 1, "k = 2 of 16 tokens: one above the threshold")
    t.assert_tensor_close(a, eval_forward(trained, ids), 0, 0, "same logits after save and load")
    -- lfl export of the MoD model (load) writes it in the same layout
    local ex = require("lfl.cmd.export").export(lfl.args.resolve({model_name_or_path = out,
      export_dir = tmp .. "/exported", mixture_of_depths = "load", do_train = false}, {}, "test"))
    local again = lfl.model.load(ex.dir, {mixture_of_depths = "load"})
    t.assert_eq(again.config.architectures[1], "LlamaMoDForCausalLM")
    t.assert_tensor_close(eval_forward(again, ids), a, 0, 0, "exported logits")
    t.assert_error(function()
      require("lfl.cmd.export").export(lfl.args.resolve({model_name_or_path = out, export_dir = tmp .. "/x.gguf",
        mixture_of_depths = "load", export_format = "gguf", do_train = false}, {}, "test"))
    end, "export_format gguf is not supported with mixture_of_depths")
    -- DPO: the frozen reference routes with the initial routers, never in
    -- training mode (capacity 0.125, as LlamaFactory's reference in eval mode);
    -- the policy's training forwards move its capacity
    local dpo = train({model_name_or_path = out, mixture_of_depths = "load", stage = "dpo",
      dataset = "preference_demo", max_steps = 2, output_dir = tmp .. "/dpo"})
    local rm = dpo.reference.model.mod
    t.assert(rm ~= nil and rm ~= dpo.model.mod, "the reference has its own routing state")
    local info = dpo:step()
    t.assert(info.loss == info.loss and info.loss > 0, "DPO loss finite")
    t.assert_eq(rm.capacity, 0.125, "reference capacity")
    t.assert_eq(rm.step, 0, "the reference's forwards are not training calls")
    t.assert(dpo.model.mod.step >= 1, "the policy's are")
    -- and training from the saved MoD model (load) runs
    local tr2 = train({model_name_or_path = out, mixture_of_depths = "load", max_steps = 2,
      output_dir = tmp .. "/run2"})
    t.assert(tr2.model.mod ~= nil, "loaded as MoD")
    tr2:step()
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
