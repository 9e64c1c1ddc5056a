-- lfl.train.dist in one process (the multi-rank runs are tests/sh/test_dist.sh):
-- a DeepSpeed config's stage, "auto" values filled from the recipe and numbers
-- that disagree refused, offload / stage3_* (outside stage 3, unknown, or
-- not honoured) / optimizer sections refused by key, stage 3's own keys, the
-- bucket size, the bundled copy of LlamaFactory's configs; the micro-batch
-- sharding arithmetic; lfl.comm in a single process, with ZeRO-3's release
-- and re-materialisation of a parameter and the accumulating reduce-scatter.
local t = lfl.test
local dist = require("lfl.train.dist")
local tmp = os.tmpname()
os.remove(tmp)
lfl.fs.mkdir(tmp)

local function ds(tbl)
  local path = tmp .. "/ds.json"
  lfl.fs.write(path, lfl.json.encode(tbl))
  return path
end
local function args(over)
  local a = {per_device_train_batch_size = 2, gradient_accumulation_steps = 4, max_grad_norm = 1.0, bf16 = false}
  for k, v in pairs(over or {}) do a[k] = v end
  return a
end

t.suite("dist", {
  no_config_is_stage_0 = function()
    local c = dist.deepspeed_config(args(), 2)
    t.assert_eq(c.stage, 0)
    t.assert_eq(c.bucket, dist.MAX_BUCKET)
  end,

  llamafactory_configs = function()
    for stage, file in pairs({[0] = "ds_z0_config.json", [2] = "ds_z2_config.json"}) do
      local c = dist.deepspeed_config(args({deepspeed = lfl.home .. "/recipes/deepspeed/" .. file}), 4)
      t.assert_eq(c.stage, stage, file)
      -- reduce_bucket_size 5e8 is cut to the 64 MB bucket
      t.assert_eq(c.bucket, dist.MAX_BUCKET, file)
      local ignored = table.concat(c.ignored, ",")
      t.assert(ignored:find("zero_optimization.overlap_comm", 1, true), ignored)
    end
    local c3 = dist.deepspeed_config(args({deepspeed = lfl.home .. "/recipes/deepspeed/ds_z3_config.json"}), 4)
    t.assert_eq(c3.stage, 3)
    t.assert_eq(c3.z3.persist, "auto", "stage3_param_persistence_threshold auto: 10 x hidden at set-up")
    t.assert_eq(c3.z3.max_live, 1e9)
    t.assert(c3.z3.bucket_auto, "reduce_bucket_size auto: hidden x hidden at set-up")
    local ig = table.concat(c3.ignored, ",")
    t.assert(ig:find("zero_optimization.stage3_prefetch_bucket_size", 1, true), ig)
    t.assert(ig:find("zero_optimization.stage3_max_reuse_distance", 1, true), ig)
    -- a recipe copied from LlamaFactory names examples/deepspeed/...: lfl's copy is used
    local c = dist.deepspeed_config(args({deepspeed = "examples/deepspeed/ds_z2_config.json"}), 2)
    t.assert_eq(c.stage, 2)
    t.assert(c.path:find("recipes/deepspeed/ds_z2_config.json", 1, true), c.path)
    t.assert_error(function() dist.deepspeed_config(args({deepspeed = tmp .. "/none.json"}), 2) end,
      "deepspeed: cannot read '" .. tmp .. "/none.json'")
  end,

  auto_values_and_mismatches = function()
    local c = dist.deepspeed_config(args({deepspeed = ds({train_micro_batch_size_per_gpu = 2,
      gradient_accumulation_steps = "auto", train_batch_size = 16, gradient_clipping = 1.0,
      zero_optimization = {stage = 1, reduce_bucket_size = 1000}})}), 2)
    t.assert_eq(c.stage, 1)
    t.assert_eq(c.bucket, 1000, "a smaller reduce_bucket_size is the bucket")
    t.assert_error(function()
      dist.deepspeed_config(args({deepspeed = ds({train_micro_batch_size_per_gpu = 8})}), 2)
    end, "train_micro_batch_size_per_gpu is 8 but the recipe's per_device_train_batch_size is 2")
    t.assert_error(function() dist.deepspeed_config(args({deepspeed = ds({train_batch_size = 8})}), 2) end,
      "train_batch_size is 8 but the recipe's per_device_train_batch_size x gradient_accumulation_steps x world size is 16")
    t.assert_error(function() dist.deepspeed_config(args({deepspeed = ds({gradient_clipping = 0.5})}), 2) end,
      "gradient_clipping is 0.5 but the recipe's max_grad_norm is 1")
    t.assert_error(function() dist.deepspeed_config(args({deepspeed = ds({bf16 = {enabled = true}})}), 2) end,
      "bf16.enabled is true but the recipe's bf16 is false")
    t.assert_error(function() dist.deepspeed_config(args({deepspeed = ds({fp16 = {enabled = true}})}), 2) end,
      "fp16.enabled is true")
  end,

  refused_by_key = function()
    local cases = {
      {{zero_optimization = {stage = 5}}, "zero_optimization.stage must be 0, 1, 2 or 3"},
      {{zero_optimization = {stage = 3, stage3_made_up = 1}}, "zero_optimization.stage3_made_up is not known to lfl"},
      {{zero_optimization = {stage = 3, stage3_gather_16bit_weights_on_model_save = false}},
       "stage3_gather_16bit_weights_on_model_save is false: lfl always saves the gathered model"},
      {{zero_optimization = {stage = 3, stage3_param_persistence_threshold = -1}},
       "stage3_param_persistence_threshold must be \"auto\" or a number >= 0, got -1"},
      {{zero_optimization = {stage = 3, offload_param = {device = "cpu"}}},
       "zero_optimization.offload_param is not implemented in lfl"},
      {{zero_optimization = {stage = 2, offload_optimizer = {device = "cpu"}}},
       "zero_optimization.offload_optimizer is not implemented in lfl"},
      {{zero_optimization = {stage = 2, offload_param = {device = "nvme"}}},
       "zero_optimization.offload_param is not implemented in lfl"},
      {{zero_optimization = {stage = 2, stage3_prefetch_bucket_size = "auto"}},
       "zero_optimization.stage3_prefetch_bucket_size belongs to stage 3"},
      {{zero_optimization = {stage = 2, made_up = 1}}, "zero_optimization.made_up is not known to lfl"},
      {{optimizer = {type = "AdamW"}}, "the 'optimizer' section is not supported"},
      {{scheduler = {type = "WarmupLR"}}, "the 'scheduler' section is not supported"},
    }
    for _, c in ipairs(cases) do
      t.assert_error(function() dist.deepspeed_config(args({deepspeed = ds(c[1])}), 2) end, c[2], c[2])
    end
    -- offload with device none is the same as no offload (LlamaFactory's files spell it out)
    local c = dist.deepspeed_config(args({deepspeed = ds({zero_optimization = {stage = 2,
      offload_optimizer = {device = "none"}}})}), 2)
    t.assert_eq(c.stage, 2)
    local c3 = dist.deepspeed_config(args({deepspeed = ds({zero_optimization = {stage = 3, reduce_bucket_size = 500,
      stage3_param_persistence_threshold = 100, stage3_max_live_parameters = 1e6}})}), 2)
    t.assert_eq(c3.stage, 3)
    t.assert_eq(c3.z3.persist, 100)
    t.assert_eq(c3.z3.max_live, 1e6)
    t.assert_eq(c3.bucket, 500)
    t.assert(not c3.z3.bucket_auto)
    for _, f in ipairs({"ds_z2_offload_config.json", "ds_z3_offload_config.json"}) do
      t.assert_error(function()
        dist.deepspeed_config(args({deepspeed = lfl.home .. "/recipes/deepspeed/" .. f}), 2)
      end, "zero_optimization.", f)
    end
  end,

  sharding_arithmetic = function()
    -- 3 ranks over 10 global micro-batches: 4 each, the last ones wrap to the epoch's start
    local seen = {}
    for r = 0, 2 do
      local d = setmetatable({rank = r, size = 3}, {__index = function(_, k) return dist._D[k] end})
      t.assert_eq(d:batches_per_epoch(10), 4)
      for b = 1, 4 do
        local g = d:global_batch(b, 10)
        t.assert_eq(g, ((b - 1) * 3 + r) % 10, "rank " .. r .. " batch " .. b)
        seen[g] = (seen[g] or 0) + 1
      end
    end
    for g = 0, 9 do t.assert(seen[g] and seen[g] >= 1, "global micro-batch " .. g .. " is taken") end
    t.assert_eq(seen[0] + seen[1], 4, "the two padding micro-batches repeat the epoch's first")
  end,

  one_process = function()
    t.assert_eq(dist.world(args()), nil, "not launched: no data parallel")
    local info = lfl.comm.init()
    t.assert_eq(info.size, 1)
    t.assert_eq(info.rank, 0)
    t.assert_eq(info.backend, "none")
    local x = lfl.tensor({1.5, 2.5}, "f32")
    lfl.comm.all_reduce(x, "mean")
    t.assert_eq(x[2], 2.5)
    t.assert_error(function() lfl.comm.all_reduce(lfl.tensor({1, 2}, "i64")) end, "needs a contiguous f32 or f64")
    t.assert_error(function() lfl.comm.set_timeout(0) end, "timeout must be > 0")
    t.assert_error(function() lfl.comm.dp({3, 4}, 0) end, "bucket size must be >= 1")
    local dp = lfl.comm.dp({3, 4}, 5)
    t.assert_error(function() dp:all_reduce_mean({lfl.zeros(3), lfl.zeros(5)}) end, "tensor 2 has 5 elements")
    t.assert_error(function() dp:all_reduce_mean({lfl.zeros(3), nil}) end, "tensor 2 is missing")
  end,

  zero3_release_and_materialize = function()
    lfl.comm.init()
    -- two parameters: a [2,3] one released (the same object, empty), a 4-element one kept (under 5)
    local a = lfl.tensor({{1, 2, 3}, {4, 5, 6}}, "f32")
    local b = lfl.tensor({7, 8, 9, 10}, "f32")
    a:requires_grad(true)
    local dp = lfl.comm.dp({a, b}, 4)
    local shard = lfl.zeros(dp:shard_numel())
    dp:pack({a, b}, shard)
    dp:release({a, b}, 5)
    t.assert_eq(a:numel(), 0, "released")
    t.assert_eq(#a:size(), 1)
    t.assert_eq(b:numel(), 4, "under the persistence threshold: kept")
    t.assert(a:get_requires_grad(), "still a parameter")
    -- a use before the next gather is an error, not a read of freed memory
    t.assert_error(function() return lfl.linear(lfl.zeros(1, 3), a) end, "does not match weight [0]")
    dp:materialize({a, b}, {{2, 3}, {4}})
    t.assert_eq(table.concat(a:size(), "x"), "2x3")
    dp:all_gather(shard, {a, b})
    dp:trim()
    t.assert_eq(a[2][3], 6)
    t.assert_eq(b[4], 10)
    -- the forward reads it again, and its gradient reaches the same object
    local y = lfl.linear(lfl.ones(1, 3), a):sum()
    y:backward()
    t.assert_eq(a.grad[2][1], 1)
    a.grad = nil
    dp:release({a, b}, 5)
    t.assert_error(function() dp:materialize({a, b}, {{7}, {4}}) end, "shape 1 has 7 elements, the layout 6")
    dp:release({a, b}) -- no threshold: every tensor goes
    t.assert_eq(b:numel(), 0)
    lfl.memory_trim()
  end,

  zero3_reduce_scatter_accumulates = function()
    lfl.comm.init()
    local dp = lfl.comm.dp({3, 2}, 2)
    local shard = lfl.zeros(dp:shard_numel())
    dp:reduce_scatter_mean({lfl.tensor({1, 2, 3}, "f32"), lfl.tensor({4, 5}, "f32")}, shard)
    dp:reduce_scatter_mean({lfl.tensor({10, 20, 30}, "f32"), nil}, shard, true)
    for i, v in ipairs({11, 22, 33, 4, 5}) do t.assert_eq(shard[i], v, "element " .. i) end
  end,
})

local res = t.run()
lfl.fs.remove(tmp)
return res
