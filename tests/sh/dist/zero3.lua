-- ZeRO-3's partitioning seen from inside a rank (tests/sh/test_dist.sh runs it
-- with --nproc 2): after set-up every trainable tensor of the model is empty
-- and the rank holds half of the values as its slices; during a training
-- step no more than one layer and the embeddings/head are gathered at once,
-- each layer's full gradient is gone once its backward is over, and the
-- slices alone step; after training the model is whole again.
-- With a ZeRO-2 config (the per-layer ZeRO-2: the parameters stay whole) only
-- the gradients are watched: each layer's goes once reduced, none outlives it.
-- Usage: lfl zero3.lua MODEL_DIR DS_CONFIG OUT_DIR FINETUNING_TYPE --nproc 2
local model_dir, ds, out, ft = arg[1], arg[2], arg[3], arg[4]
local fmt = string.format
local t = lfl.trainer({model_name_or_path = model_dir, stage = "sft", dataset = "alpaca_demo", template = "chatml",
  cutoff_len = 24, max_samples = 16, per_device_train_batch_size = 2, gradient_accumulation_steps = 2,
  max_steps = 2, logging_steps = 1, save_steps = 0, learning_rate = 1e-2, overwrite_output_dir = true,
  disable_tqdm = true, seed = 5, finetuning_type = ft, lora_dropout = 0, deepspeed = ds, output_dir = out})
local d = t.dist
local r = d.rank
local function check(c, msg) if not c then error(fmt("rank %d: %s", r, msg), 0) end end
check(d.size == 2 and (d.stage == 3 or d.stage == 2) and d.z3, "ZeRO-3 or the per-layer ZeRO-2 with 2 ranks")
local z = d.z3
local whole = d.stage == 2 -- ZeRO-2: the parameters are never released
check((z.keep == true) == whole, "ZeRO-2 keeps the parameters whole, ZeRO-3 does not")
local full, total = {}, 0
for i, p in ipairs(d.params) do
  check((p:numel() == 0) ~= whole, d.names[i] .. " after set-up: " .. p:numel() .. " values")
end
for _, g in ipairs(z.groups) do
  full[g] = g.numel
  total = total + g.numel
  check(g.dp:shard_numel() <= math.ceil(g.numel / 2), fmt("group %d: a slice of %d for %d values", g.layer,
    g.dp:shard_numel(), g.numel))
end
check(#z.groups >= 2, "the tensors are grouped by layer (" .. #z.groups .. " groups)")
-- watch the gathers: how many groups are whole at once, and the gradients
local live, most, seen_release = {}, 0, 0
local gather, release, reduce = z.gather, z.release, z.reduce
function z:gather(g)
  gather(self, g)
  live[g] = true
  local n = 0
  for _ in pairs(live) do n = n + 1 end
  if n > most then most = n end
end
function z:release(g)
  release(self, g)
  if not self.all and not self.keep then
    for _, p in ipairs(g.params) do check(p:numel() == 0, "a released tensor keeps " .. p:numel() .. " values") end
    live[g] = nil
    seen_release = seen_release + 1
  end
end
local reduced = 0
function z:reduce(g)
  reduce(self, g)
  reduced = reduced + 1
  for _, p in ipairs(g.params) do check(p.grad == nil, "a full gradient outlives its reduce-scatter") end
  -- no other layer holds a full gradient while this one is reduced
  for _, h in ipairs(self.groups) do
    if h ~= g and h.layer ~= 0 then
      for _, p in ipairs(h.params) do check(p.grad == nil, fmt("layer %d holds a gradient while %d is reduced",
        h.layer, g.layer)) end
    end
  end
end
t:step()
check(whole or (most >= 1 and most <= (z.by_layer[0] and 2 or 1)), fmt("%d groups were gathered at once", most))
check(reduced == 2 * #z.groups, fmt("%d reduce-scatters in a step of 2 micro-batches over %d groups", reduced,
  #z.groups))
check(whole or seen_release > 0, "no group was released")
local in_step = most
for i, p in ipairs(d.params) do check((p:numel() == 0) ~= whole, d.names[i] .. " between steps") end
t:step()
t:finish()
for i, p in ipairs(d.params) do check(p:numel() > 0, d.names[i] .. " is not whole after training") end
print(fmt("zero%d ok: rank %d, %d groups, at most %d gathered at once in a step, %d values", d.stage, r, #z.groups, in_step,
  total))
