-- The device communicator (NCCL; the NCCL emulator in build-emu) on however
-- many ranks run it (tests/sh/test_cuda_nccl.sh): every collective on device
-- tensors must give exactly what the MPI communicator gives on host copies of
-- the same data (f32 and f64, every op, in place and not), and its errors must
-- name the operation. arg[1] = "stall": rank 1 stalls past the timeout and rank 0
-- must fail naming all_reduce; "kill": rank 1 exits before the collective.
local mode = arg and arg[1] or "ok"
local info = lfl.comm.init(20)
local W, r = info.size, info.rank
local dinfo = lfl.comm.device_info()
local function check(c, msg) if not c then error(string.format("rank %d of %d: %s", r, W, msg), 0) end end
check(dinfo.backend == (W > 1 and "nccl" or "local"), "device backend " .. tostring(dinfo.backend))
check(dinfo.device >= 0 and dinfo.rank == r and dinfo.size == W, "device communicator's rank/size/device")
local dev = "cuda:" .. dinfo.device

local function busy(s) local t = os.clock() while os.clock() - t < s do end end

if mode == "stall" or mode == "kill" then
  lfl.comm.set_timeout(3)
  local x = lfl.tensor({1, 2, 3}, "f32"):to(dev)
  lfl.comm.all_reduce(x) -- both ranks healthy once
  if r == 1 then
    if mode == "kill" then error("rank 1 dies on purpose", 0) end
    busy(8)
    return
  end
  local t0 = os.time()
  local ok, err = pcall(lfl.comm.all_reduce, x)
  check(not ok, "all_reduce with a stalled rank 1 succeeded")
  check(tostring(err):find("all_reduce of 3 f32 values on " .. dev .. " (nccl) failed on rank 0 of 2", 1, true),
        "the error names the operation: " .. tostring(err))
  check(tostring(err):find("died or stalled", 1, true), "the error says why: " .. tostring(err))
  -- the job cannot go on: the next collective refuses at once
  local ok2, err2 = pcall(lfl.comm.all_reduce, x)
  check(not ok2 and tostring(err2):find("earlier collective failed", 1, true), "after a failure: " .. tostring(err2))
  print(string.format("nccl %s ok after %d s: %s", mode, os.time() - t0, err))
  os.exit(3)
end

-- data that differs per rank and per element, with tails (sizes not multiples of anything)
local function data(n, dt, salt)
  local t = lfl.zeros(n, dt)
  for i = 1, n do t[i] = ((i * 7 + r * 13 + salt) % 17 - 8) / 3 + r * 0.25 end
  return t
end
local function same(dev_t, host_t, what)
  local a = dev_t:to("cpu")
  check(lfl.numel(a) == lfl.numel(host_t), what .. ": sizes")
  for i = 1, lfl.numel(a) do
    if a[i] ~= host_t[i] then
      error(string.format("rank %d: %s: element %d is %.17g on the device, %.17g from MPI", r, what, i, a[i], host_t[i]), 0)
    end
  end
end

for _, dt in ipairs({"f32", "f64"}) do
  for _, n in ipairs({1, 37, 1000}) do
    for _, op in ipairs({"sum", "mean", "max", "min"}) do
      local h = data(n, dt, n)
      local d = h:to(dev)
      lfl.comm.all_reduce(h, op)
      lfl.comm.all_reduce(d, op)
      same(d, h, string.format("all_reduce %s of %d %s", op, n, dt))
    end
    -- reduce_scatter: send holds W blocks of n
    for _, op in ipairs({"sum", "mean"}) do
      local hs, hr = data(n * W, dt, 3), lfl.zeros(n, dt)
      local ds, dr = hs:to(dev), hr:to(dev)
      lfl.comm.reduce_scatter(hs, hr, op)
      lfl.comm.reduce_scatter(ds, dr, op)
      same(dr, hr, string.format("reduce_scatter %s of %d x %d %s", op, W, n, dt))
      same(ds, hs, "reduce_scatter leaves send as it was")
    end
    local hs, hr = data(n, dt, 5), lfl.zeros(n * W, dt)
    local ds, dr = hs:to(dev), hr:to(dev)
    lfl.comm.all_gather(hs, hr)
    lfl.comm.all_gather(ds, dr)
    same(dr, hr, string.format("all_gather of %d x %d %s", W, n, dt))
    for root = 0, W - 1 do
      local h = data(n, dt, 11 + root)
      local d = h:to(dev)
      lfl.comm.broadcast(h, root)
      lfl.comm.broadcast(d, root)
      same(d, h, string.format("broadcast of %d %s from rank %d", n, dt, root))
    end
  end
end
-- the data-parallel bucket layout on device tensors (odd sizes, buckets of 7:
-- padding in every bucket, tensors cut between buckets): the same as on the host
local sizes = {5, 1, 13, 4}
local function lists(salt)
  local h, d = {}, {}
  for i, n in ipairs(sizes) do h[i] = data(n, "f32", salt + i); d[i] = h[i]:to(dev) end
  return h, d
end
local function same_lists(d, h, what) for i = 1, #sizes do same(d[i], h[i], what .. ", tensor " .. i) end end
local hdp, ddp = lfl.comm.dp(sizes, 7), nil
do
  local _, d = lists(0)
  ddp = lfl.comm.dp(d, 7)
end
local h, d = lists(1)
hdp:all_reduce_mean(h); ddp:all_reduce_mean(d)
same_lists(d, h, "dp:all_reduce_mean")
h, d = lists(2)
hdp:broadcast(h, W - 1); ddp:broadcast(d, W - 1)
same_lists(d, h, "dp:broadcast")
h, d = lists(3)
hdp:reduce_scatter_mean_inplace(h); ddp:reduce_scatter_mean_inplace(d)
-- only the rank's slice is defined after it: compare the pieces
for _, pc in ipairs(hdp:pieces()) do
  local a, b = d[pc.tensor]:to("cpu"), h[pc.tensor]
  for k = pc.offset + 1, pc.offset + pc.len do
    check(a[k] == b[k], string.format("dp:reduce_scatter_mean_inplace tensor %d element %d: %g vs %g", pc.tensor, k,
      a[k], b[k]))
  end
end
h, d = lists(4)
hdp:all_gather_inplace(h); ddp:all_gather_inplace(d)
same_lists(d, h, "dp:all_gather_inplace")
h, d = lists(5)
local hs, ds = lfl.zeros(hdp:shard_numel()), lfl.zeros(ddp:shard_numel()):to(dev)
hdp:pack(h, hs); ddp:pack(d, ds)
same(ds, hs, "dp:pack")
h, d = lists(6)
hdp:reduce_scatter_mean(h, hs); ddp:reduce_scatter_mean(d, ds)
same(ds, hs, "dp:reduce_scatter_mean")
hdp:all_gather(hs, h); ddp:all_gather(ds, d)
same_lists(d, h, "dp:all_gather")
-- a missing gradient counts as zeros when read; all_reduce_mean must write every tensor
h, d = lists(7)
hdp:reduce_scatter_mean({h[1], nil, h[3], h[4]}, hs); ddp:reduce_scatter_mean({d[1], nil, d[3], d[4]}, ds)
same(ds, hs, "dp:reduce_scatter_mean with a missing tensor")
local okm, errm = pcall(function() ddp:all_reduce_mean({d[1], nil, d[3], d[4]}) end)
check(not okm and tostring(errm):find("tensor 2 is missing", 1, true), "a missing tensor to write: " .. tostring(errm))
local okh, errh = pcall(function() ddp:all_reduce_mean({lfl.zeros(5), d[2], d[3], d[4]}) end)
check(not okh and tostring(errh):find("on " .. dev, 1, true), "a host tensor in a device layout: " .. tostring(errh))

-- lfl.train.dist's step synchronisation (stage 0) with the parameters on the
-- device: the gradients averaged over the ranks there, a gradient missing on
-- one rank counting as zeros (made on the parameter's device), as on the host
local D = require("lfl.train.dist")._D
local function sync_run(on_dev)
  local params = {}
  for i, n in ipairs(sizes) do
    local p = data(n, "f32", 20 + i)
    if on_dev then p = p:to(dev) end
    params[i] = p
    -- rank 1 has no gradient for tensor 3 (a parameter its batches did not use)
    if not (r == 1 and i == 3) then
      local g = data(n, "f32", 40 + i)
      p.grad = on_dev and g:to(dev) or g
    end
  end
  local self = setmetatable({params = params, stage = 0, dp = lfl.comm.dp(params, 7)}, D)
  self:sync({})
  return params
end
local hp, dpar = sync_run(false), sync_run(true)
for i = 1, #sizes do
  check(dpar[i].grad and dpar[i].grad:device() == dev, "dist sync: gradient " .. i .. " on the device")
  same(dpar[i].grad, hp[i].grad, "dist sync (stage 0) gradient " .. i)
end

-- errors name the call
local ok, err = pcall(lfl.comm.all_gather, lfl.zeros(2):to(dev), lfl.zeros(2 * W))
check(not ok and tostring(err):find("one device", 1, true), "mixed devices: " .. tostring(err))
lfl.comm.barrier()
print("nccl collectives ok")
