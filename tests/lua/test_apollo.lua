-- use_apollo: lfl.train.apollo against apollo_torch.APOLLOAdamW 1.0.3 (the
-- optimizer LlamaFactory imports; goldens by tests/ref/make_apollo_goldens.py).
-- The reference's random projections come from torch's generator, lfl's from
-- its own, so the golden test feeds lfl the matrices the reference drew at each
-- refresh and checks 5 steps of a tall and a wide weight (channel and tensor
-- scaling, the norm-growth limiter, weight decay) and a plain AdamW vector.
-- Also: lfl's own draws have the reference's scale and refresh schedule, the
-- checkpoint round trip, the recipe key end to end (the loss falls) and the
-- refused combinations.
local t = lfl.test
local apollo = require("lfl.train.apollo")
local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/methods/apollo.safetensors")

local tmp, model_dir = t.tiny_llama_dir("apollo")

local function build(scale_type)
  local pre = "apollo." .. scale_type .. "."
  local ps = {vec = gold[pre .. "vec.p0"]:clone(), tall = gold[pre .. "tall.p0"]:clone(),
    wide = gold[pre .. "wide.p0"]:clone()}
  local opt = apollo.APOLLOAdamW({{params = {ps.vec}, weight_decay = 0},
    {params = {ps.tall, ps.wide}, weight_decay = 0.1, apollo = {rank = 3, proj = "random", proj_type = "std",
      update_proj_gap = 2, scale = 4.0, scale_type = scale_type}}}, {lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8})
  return ps, opt, pre
end

local function recipe(extra)
  local r = {model_name_or_path = model_dir, stage = "sft", finetuning_type = "full", use_apollo = true,
    apollo_rank = 4, apollo_scale = 4, apollo_update_interval = 5, dataset = "identity", template = "chatml",
    cutoff_len = 64, max_samples = 8, per_device_train_batch_size = 4, max_steps = 10, learning_rate = 5e-3,
    lr_scheduler_type = "constant", logging_steps = 1, save_steps = 0, output_dir = tmp .. "/run",
    overwrite_output_dir = true, disable_tqdm = true}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

t.suite("apollo", {
  matches_apollo_torch_given_its_projections = function()
    local real = apollo.random_matrix
    for _, scale_type in ipairs({"channel", "tensor"}) do
      local ps, opt, pre = build(scale_type)
      local count = {}
      -- the tall weight asks [3, 8] (right side), the wide one [6, 3] (left)
      apollo.random_matrix = function(rows, cols, rank, seed)
        local who = (rows == 3 and cols == 8) and "tall" or (rows == 6 and cols == 3) and "wide" or nil
        t.assert(who ~= nil, ("unexpected projection shape %dx%d"):format(rows, cols))
        count[who] = (count[who] or 0) + 1
        return gold[pre .. who .. ".proj" .. count[who]]:clone()
      end
      for step = 1, 5 do
        for n, p in pairs(ps) do p.grad = gold[pre .. n .. ".grad" .. step] end
        opt:step()
        for n, p in pairs(ps) do
          t.assert_tensor_close(p, gold[pre .. n .. ".p" .. step], 2e-6, 1e-6, ("%s %s step %d"):format(scale_type, n, step))
        end
      end
      t.assert_eq(count.tall, 3, "refreshed at steps 0, 2, 4")
      t.assert_eq(count.wide, 3, "refreshed at steps 0, 2, 4")
    end
    apollo.random_matrix = real
  end,

  own_projection = function()
    local p1 = apollo.random_matrix(64, 256, 16, 7)
    local p2 = apollo.random_matrix(64, 256, 16, 7)
    t.assert_tensor_close(p1, p2, 0, 0, "a seed gives the same matrix")
    local sd = math.sqrt((p1 * p1):sum():item() / p1:numel())
    t.assert(math.abs(sd - 0.25) < 0.02, "N(0, 1) / sqrt(16): std " .. sd)
    local before = {lfl.rng_state()}
    apollo.random_matrix(4, 4, 2, 1)
    local after = {lfl.rng_state()}
    t.assert(before[1] == after[1] and before[2] == after[2], "the global stream is untouched")
    t.assert(apollo.next_seed(1) ~= 1 and apollo.next_seed(1) == apollo.next_seed(1), "next_seed")
  end,

  state_round_trip = function()
    local a, oa = build("channel")
    for n, p in pairs(a) do p.grad = gold["apollo.channel." .. n .. ".grad1"] end
    oa:step()
    local ts, meta = oa:state_tensors()
    local b, ob = build("channel")
    for n in pairs(b) do b[n]:copy_(a[n]) end
    ob:load_state_tensors(ts, meta)
    for n in pairs(a) do
      a[n].grad = gold["apollo.channel." .. n .. ".grad2"]; b[n].grad = gold["apollo.channel." .. n .. ".grad2"]
    end
    oa:step(); ob:step()
    for n in pairs(a) do t.assert_tensor_close(b[n], a[n], 0, 0, n) end
  end,

  trains_from_a_recipe = function()
    local res = lfl.trainer.run(lfl.args.resolve(recipe(), {}, "test"))
    local h = res.state.log_history
    t.assert(h[#h].loss < h[1].loss * 0.95, ("loss falls: %.4f -> %.4f"):format(h[1].loss, h[#h].loss))
    t.assert_eq(res.state.optimizer.kind, "apollo_adamw")
  end,

  refused = function()
    t.assert_error(function() lfl.args.resolve(recipe({finetuning_type = "lora"}), {}, "test") end,
      "LoRA cannot be combined with GaLore, APOLLO or BAdam")
    t.assert_error(function() lfl.args.resolve(recipe({use_galore = true}), {}, "test") end,
      "GaLore, APOLLO and BAdam are mutually exclusive")
    t.assert_error(function()
      lfl.args.resolve(recipe({apollo_layerwise = true, gradient_accumulation_steps = 2}), {}, "test")
    end, "Per-layer APOLLO does not support gradient accumulation.")
    t.assert_error(function() lfl.args.resolve(recipe({use_apollo = false}), {"apollo_rank=8"}, "test") end,
      "apollo_rank: 8 has no effect: it applies with use_apollo: true")
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
