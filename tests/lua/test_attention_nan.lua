-- NaN through attention, as torch's softmax attention (eager, SDPA's math
-- backend, SDPA with a mask) has it: a NaN score makes its query's whole
-- output row, log-sum-exp and gradient NaN; rows that never see the NaN keep
-- exactly their values. Once the f32 tiles' row max dropped a NaN and a NaN
-- sum was taken for "no visible key", so NaN rows came out as zeros and a
-- model with a NaN weight or rope_theta 0 gave a finite loss. Model level:
-- a NaN in q_proj, and rope_theta 0 (inv_freq = 1 / 0^x is inf, angles inf or
-- NaN), give a NaN loss as transformers' eager attention does.
--
-- Reference (transformers 5.25, torch 2.15, this tiny llama, ids 1 5 9 3 7 2 8
-- 4 6 10): rope_theta 0 gives a NaN loss under attn_implementation "eager" and
-- under "sdpa" whenever a mask is materialised (a padded batch); only torch's
-- CPU flash kernel for unmasked causal SDPA maps NaN rows to 0 (loss 4.2078),
-- which is what lfl used to do.
local t = lfl.test
local nan = 0 / 0
local function isnan(x) return x ~= x end

-- every value of row (b, h, i) of a [B, H, T, D] tensor
local function row(x, b, h, i)
  local v = {}
  for d = 1, x:size(4) do v[d] = x[{b, h, i, d}] end
  return v
end

local function all_nan(v) for _, x in ipairs(v) do if not isnan(x) then return false end end return true end
local function none_nan(v) for _, x in ipairs(v) do if isnan(x) then return false end end return true end

local function same(a, b)
  for d = 1, #a do if a[d] ~= b[d] then return false end end
  return true
end

-- q [1, 4, T, 8], k/v [1, 2, T, 8] (two query heads per kv head)
local function inputs(dt, T)
  return lfl.randn(1, 4, T, 8, dt), lfl.randn(1, 2, T, 8, dt), lfl.randn(1, 2, T, 8, dt)
end

-- T crosses tile boundaries: f32 runs 64-wide tiles, f64 8-wide ones
local CASES = {{dt = "f32", T = 70, rows = {1, 2, 16, 17, 33, 64, 65, 70}},
               {dt = "f64", T = 20, rows = {1, 2, 8, 9, 15, 20}}}

t.suite("attention_nan", {
  nan_query = function()
    for _, c in ipairs(CASES) do
      for _, opts in ipairs({{causal = true}, {causal = false}, {causal = true, softcap = 5}, {causal = true, window = 3}}) do
        local q, k, v = inputs(c.dt, c.T)
        local clean = lfl.attention(q, k, v, opts)
        for _, i in ipairs(c.rows) do
          local qn = q:clone()
          qn[{1, 2, i, 3}] = nan
          local o, lse = lfl.attention(qn, k, v, {causal = opts.causal, softcap = opts.softcap, window = opts.window,
                                                  keep_lse = true})
          local what = string.format("%s T=%d row %d causal=%s", c.dt, c.T, i, tostring(opts.causal))
          t.assert(all_nan(row(o, 1, 2, i)), what .. ": the NaN query's row is NaN")
          t.assert(isnan(lse[{1, 2, i}]), what .. ": its log-sum-exp is NaN")
          for _, j in ipairs(c.rows) do
            if j ~= i then t.assert(same(row(o, 1, 2, j), row(clean, 1, 2, j)), what .. ": row " .. j .. " unchanged") end
          end
          t.assert(same(row(o, 1, 1, i), row(clean, 1, 1, i)), what .. ": the other query head of the group unchanged")
        end
      end
    end
  end,

  -- every key position of a tile, so the NaN sits in each lane of the row max
  nan_key = function()
    for _, c in ipairs(CASES) do
      local q, k, v = inputs(c.dt, c.T)
      local clean = lfl.attention(q, k, v, {causal = true})
      for j = 1, c.T do
        local kn = k:clone()
        kn[{1, 1, j, 5}] = nan
        local o = lfl.attention(q, kn, v, {causal = true})
        local what = string.format("%s T=%d key %d", c.dt, c.T, j)
        for _, i in ipairs(c.rows) do
          for _, h in ipairs({1, 2}) do -- the two query heads reading kv head 1
            if i >= j then t.assert(all_nan(row(o, 1, h, i)), what .. ": row " .. i .. " sees it and is NaN")
            else t.assert(same(row(o, 1, h, i), row(clean, 1, h, i)), what .. ": row " .. i .. " does not see it") end
          end
          t.assert(same(row(o, 1, 3, i), row(clean, 1, 3, i)), what .. ": kv head 2's queries unchanged")
        end
      end
      -- without a causal mask every query sees the key
      local kn = k:clone()
      kn[{1, 2, c.T, 1}] = nan
      local o = lfl.attention(q, kn, v, {})
      for _, i in ipairs(c.rows) do
        t.assert(all_nan(row(o, 1, 4, i)), c.dt .. ": non-causal row " .. i .. " is NaN")
        t.assert(none_nan(row(o, 1, 1, i)), c.dt .. ": kv head 1's rows stay finite")
      end
    end
  end,

  nan_value = function()
    for _, c in ipairs(CASES) do
      local q, k, v = inputs(c.dt, c.T)
      v[{1, 1, 1, 2}] = nan -- the first key's value: every row sees it
      local o = lfl.attention(q, k, v, {causal = true})
      for _, i in ipairs(c.rows) do
        t.assert(isnan(o[{1, 1, i, 2}]), c.dt .. ": row " .. i .. " dim 2 is NaN")
        t.assert(none_nan(row(o, 1, 3, i)), c.dt .. ": the other kv group is finite")
      end
    end
  end,

  -- backward: the NaN row's gradient is NaN, clean rows keep a finite dq and
  -- the other kv group is untouched (dK and dV of the NaN row's own group are
  -- NaN, as torch's eager softmax backward makes them: P's whole row is NaN)
  gradient = function()
    for _, c in ipairs(CASES) do
      local q, k, v = inputs(c.dt, c.T)
      local i = c.rows[#c.rows - 1]
      q[{1, 2, i, 1}] = nan
      q:requires_grad(); k:requires_grad(); v:requires_grad()
      lfl.attention(q, k, v, {causal = true}):sum():backward()
      t.assert(all_nan(row(q.grad, 1, 2, i)), c.dt .. ": the NaN row's dq is NaN")
      t.assert(none_nan(row(q.grad, 1, 2, i - 1)), c.dt .. ": the row before it has a finite dq")
      t.assert(none_nan(row(q.grad, 1, 3, i)), c.dt .. ": the other kv group's dq is finite")
      t.assert(isnan(k.grad[{1, 1, 1, 1}]) and isnan(v.grad[{1, 1, 1, 1}]), c.dt .. ": keys it saw get NaN")
      t.assert(none_nan(row(v.grad, 1, 2, 1)), c.dt .. ": the other kv head stays finite")
    end
  end,

  -- matmul precision "medium": the f32 tiles multiply in bf16 (where the CPU
  -- has AVX512_BF16); NaN survives the rounding to bf16
  bf16_tiles = function()
    local prev = lfl.sys.matmul_precision()
    lfl.sys.matmul_precision("medium")
    local ok, err = pcall(function()
      local q, k, v = inputs("f32", 70)
      q[{1, 3, 40, 1}] = nan
      k[{1, 1, 10, 1}] = nan
      local o = lfl.attention(q, k, v, {causal = true})
      t.assert(all_nan(row(o, 1, 3, 40)), "the NaN query's row")
      t.assert(all_nan(row(o, 1, 1, 10)) and all_nan(row(o, 1, 2, 70)), "rows that see the NaN key")
      t.assert(none_nan(row(o, 1, 1, 9)) and none_nan(row(o, 1, 3, 39)), "rows that see neither")
    end)
    lfl.sys.matmul_precision(prev)
    if not ok then error(err, 0) end
  end,

  -- what has no NaN is unchanged: a query that sees no key still gets zeros
  empty_rows_stay_zero = function()
    local q, k, v = inputs("f32", 5)
    local o = lfl.attention(q, k, v, {causal = true, kv_start = lfl.tensor({5}, "i64")})
    for i = 1, 5 do t.assert(same(row(o, 1, 1, i), {0, 0, 0, 0, 0, 0, 0, 0}), "row " .. i .. " sees nothing: zeros") end
  end,
})

local home = lfl.home
local src = home .. "/tests/golden/models/llama"
local base = os.tmpname()
local tmp = base .. "_nan"

-- the tiny llama with config edits, in a scratch folder
local function variant(name, edit)
  local dir = tmp .. "/" .. name
  lfl.fs.mkdir(dir)
  local cfg = lfl.json.decode(lfl.read_file(src .. "/config.json"))
  edit(cfg)
  lfl.fs.write(dir .. "/config.json", lfl.json.encode(cfg))
  lfl.fs.symlink(src .. "/model.safetensors", dir .. "/model.safetensors")
  return dir
end

local ids = lfl.tensor({{1, 5, 9, 3, 7, 2, 8, 4, 6, 10}}, "i64")

t.suite("model_nan", {
  nan_weight = function()
    local m = lfl.model.load(src)
    local clean = m:loss(ids, ids):item()
    t.assert(clean == clean, "the clean model's loss is a number")
    m.params["model.layers.0.self_attn.q_proj.weight"][{1, 1}] = nan
    t.assert(isnan(m:loss(ids, ids):item()), "a NaN in q_proj gives a NaN loss")
  end,

  rope_theta_zero = function()
    local m1 = lfl.model.load(variant("theta0", function(c) c.rope_parameters.rope_theta = 0 end))
    t.assert(isnan(m1:loss(ids, ids):item()), "rope_parameters.rope_theta 0: NaN loss")
    local m2 = lfl.model.load(variant("theta0_flat", function(c) c.rope_parameters = nil; c.rope_theta = 0 end))
    t.assert(isnan(m2:loss(ids, ids):item()), "rope_theta 0: NaN loss")
  end,
})

local ok, err = pcall(t.run)
lfl.fs.remove(tmp)
os.remove(base)
if not ok then error(err, 0) end
