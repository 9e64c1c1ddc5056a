-- lfl.comm's collectives and the data-parallel bucket layout on however many
-- ranks run it (tests/sh/test_dist.sh: 1 process, --nproc 2, --nproc 3); every
-- rank checks the results against what the operation must give; exits non-zero on
-- the first mismatch.
local info = lfl.comm.init(20)
local W, r = info.size, info.rank
local function check(c, msg) if not c then error(string.format("rank %d of %d: %s", r, W, msg), 0) end end
local function near(a, b) return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b)) end

-- all_reduce over a list and over tensors, every op
local s = lfl.comm.all_reduce({r + 1, 2 * r})
check(near(s[1], W * (W + 1) / 2) and near(s[2], W * (W - 1)), "all_reduce sum of a list")
local x = lfl.tensor({r + 1, -r}, "f32")
lfl.comm.all_reduce(x, "mean")
check(near(x[1], (W + 1) / 2) and near(x[2], -(W - 1) / 2), "all_reduce mean of an f32 tensor")
check(lfl.comm.all_reduce({r}, "max")[1] == W - 1 and lfl.comm.all_reduce({r}, "min")[1] == 0, "max / min")
-- reduce_scatter: block k of the sum goes to rank k
local send = lfl.zeros(3 * W)
for i = 1, 3 * W do send[i] = i * (r + 1) end
local recv = lfl.zeros(3)
lfl.comm.reduce_scatter(send, recv)
for j = 1, 3 do check(near(recv[j], (3 * r + j) * W * (W + 1) / 2), "reduce_scatter block " .. j) end
-- all_gather: rank order
local mine, all = lfl.tensor({r, r + 0.5}, "f32"), lfl.zeros(2 * W)
lfl.comm.all_gather(mine, all)
for k = 0, W - 1 do check(all[2 * k + 1] == k and all[2 * k + 2] == k + 0.5, "all_gather block " .. k) end
-- broadcast from the last rank
local b = lfl.tensor({r, r}, "f64")
lfl.comm.broadcast(b, W - 1)
check(b[1] == W - 1 and b[2] == W - 1, "broadcast from the last rank")
lfl.comm.barrier()

-- the bucket layout: tensors of odd sizes, buckets of 7 values (padding in every bucket)
local sizes = {5, 1, 13, 4}
local function make(fill)
  local ts = {}
  for i, n in ipairs(sizes) do
    ts[i] = lfl.zeros(n)
    for k = 1, n do ts[i][k] = fill(i, k) end
  end
  return ts
end
local dp = lfl.comm.dp(sizes, 7)
check(dp:buckets() == 4, "23 values in buckets of 7 make 4 buckets, got " .. dp:buckets())
-- the pieces of all ranks cover every value exactly once
local owned = 0
for _, pc in ipairs(dp:pieces()) do owned = owned + pc.len end
check(lfl.comm.all_reduce({owned})[1] == 23, "the shards together hold every value once")
local grads = make(function(i, k) return (r + 1) * (100 * i + k) end)
dp:all_reduce_mean(grads)
for i, n in ipairs(sizes) do
  for k = 1, n do check(near(grads[i][k], (W + 1) / 2 * (100 * i + k)), "all_reduce_mean tensor " .. i) end
end
-- reduce-scatter into the shard = this rank's slice of the mean
local shard = lfl.zeros(dp:shard_numel())
dp:reduce_scatter_mean(make(function(i, k) return (r + 1) * (100 * i + k) end), shard)
for _, pc in ipairs(dp:pieces()) do
  for j = 1, pc.len do
    local want = (W + 1) / 2 * (100 * pc.tensor + pc.offset + j)
    check(near(shard[pc.shard_offset + j], want), "reduce_scatter_mean piece of tensor " .. pc.tensor)
  end
end
-- each rank changes its slice, all_gather puts the whole back on every rank
for _, pc in ipairs(dp:pieces()) do
  for j = 1, pc.len do shard[pc.shard_offset + j] = -(1000 * pc.tensor + pc.offset + j) end
end
local params = make(function() return 0 end)
dp:all_gather(shard, params)
for i, n in ipairs(sizes) do
  for k = 1, n do check(params[i][k] == -(1000 * i + k), "all_gather into tensor " .. i .. " value " .. k) end
end
-- pack = the slice without communication; a missing tensor packs as zeros
local packed = lfl.zeros(dp:shard_numel())
dp:pack({params[1], nil, params[3], params[4]}, packed)
for _, pc in ipairs(dp:pieces()) do
  local want = pc.tensor == 2 and 0 or -(1000 * pc.tensor + pc.offset + 1)
  check(packed[pc.shard_offset + 1] == want, "pack of tensor " .. pc.tensor)
end
-- in place (ZeRO without shard copies): the reduce-scatter leaves this rank's slice of the mean
-- in the tensors' own slice; each rank negates its slice, all_gather_inplace spreads them
local inpl = make(function(i, k) return (r + 1) * (100 * i + k) end)
dp:reduce_scatter_mean_inplace(inpl)
for _, pc in ipairs(dp:pieces()) do
  for j = 1, pc.len do
    local want = (W + 1) / 2 * (100 * pc.tensor + pc.offset + j)
    check(near(inpl[pc.tensor][pc.offset + j], want), "reduce_scatter_mean_inplace tensor " .. pc.tensor)
    inpl[pc.tensor][pc.offset + j] = -want
  end
end
dp:all_gather_inplace(inpl)
for i, n in ipairs(sizes) do
  for k = 1, n do
    check(near(inpl[i][k], -(W + 1) / 2 * (100 * i + k)), "all_gather_inplace tensor " .. i .. " value " .. k)
  end
end
-- broadcast of a list from rank 0
local bl = make(function(i, k) return r * 10 + i + k end)
dp:broadcast(bl, 0)
check(bl[3][13] == 16, "dp broadcast from rank 0")
-- the bytes each collective handed over are counted
check(lfl.comm.stats().bytes > 0 or W == 1, "bytes counted")
print(string.format("collectives ok on rank %d of %d (%s)", r, W, info.backend))
