-- Efficient fine-tuning methods: 8-bit AdamW against bitsandbytes, QR/SVD,
-- GaLore against galore_torch's update, PiSSA against PEFT's init, BAdam's block
-- and ratio schedules on the tiny llama.
local t = lfl.test
local K = lfl.optim_kernels
local optim, galore, badam, peft = lfl.optim, require("lfl.train.galore"), require("lfl.train.badam"), require("lfl.train.peft")
local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/methods/methods.safetensors")
local model_dir = lfl.home .. "/tests/golden/models/llama"

local function eye_close(q, tol, msg)
  local k = q:size(2)
  t.assert_tensor_close(lfl.matmul(q:transpose(1, 2), q), lfl.eye(k), tol, 0, msg)
end

local function u8_count_diff(a, b)
  local n, off, big = a:numel(), 0, 0
  for i = 1, n do
    local d = math.abs(a:_at(i) - b:_at(i))
    if d > 0 then off = off + 1 end
    if d > 1 then big = big + 1 end
  end
  return off, big
end

local function tiny_batch()
  math.randomseed(7)
  local ids = {}
  for b = 1, 2 do ids[b] = {}; for i = 1, 12 do ids[b][i] = math.random(3, 63) end end
  local x = lfl.tensor(ids, "i64")
  return x, x
end

t.suite("adamw8bit", {
  qmaps_match_bitsandbytes = function()
    t.assert_tensor_close(K.qmap("signed"), gold["bnb.code_signed"], 0, 0, "signed map")
    t.assert_tensor_close(K.qmap("unsigned"), gold["bnb.code_unsigned"], 0, 0, "unsigned map")
  end,

  quantize_blockwise_matches_bitsandbytes = function()
    -- x: against bitsandbytes' CPU kernel; y (unsigned map): against the exact
    -- nearest-code formula of bitsandbytes' default backend (see the ref script)
    for _, c in ipairs({{"x", "signed", "x_q"}, {"y", "unsigned", "y_q_nearest"}}) do
      local x = gold["bnb." .. c[1]]
      local q, am = lfl.zeros(x:numel(), "u8"), lfl.zeros(4)
      K.quantize_blockwise(x, q, am, 256, c[2])
      t.assert_tensor_close(am, gold["bnb." .. c[1] .. "_absmax"], 0, 1e-7, c[1] .. " absmax")
      local off, big = u8_count_diff(q, gold["bnb." .. c[3]])
      -- bnb's CPU kernel and the bucketize formula may split exact midpoints differently
      t.assert(off <= 2 and big == 0, string.format("%s: %d codes differ (%d by more than one)", c[1], off, big))
    end
    local x = gold["bnb.x"]
    local q, am, back = lfl.zeros(1000, "u8"), lfl.zeros(4), lfl.zeros(1000)
    K.quantize_blockwise(x, q, am, 256, "signed")
    K.dequantize_blockwise(gold["bnb.x_q"], gold["bnb.x_absmax"], 256, back, "signed")
    t.assert_tensor_close(back, gold["bnb.x_deq"], 0, 1e-7, "dequantize")
  end,

  map_round_trips = function()
    for _, kind in ipairs({"signed", "unsigned"}) do
      local code = K.qmap(kind)
      local x = code * 2.5
      local q, am, back = lfl.zeros(256, "u8"), lfl.zeros(1), lfl.zeros(256)
      K.quantize_blockwise(x, q, am, 256, kind)
      t.assert_close(am:item(), 2.5, 1e-7)
      for i = 1, 256 do t.assert_eq(q:_at(i), i - 1, kind .. " code " .. i) end
      K.dequantize_blockwise(q, am, 256, back, kind)
      t.assert_tensor_close(back, x, 1e-7, 1e-6, kind .. " round trip")
    end
    t.assert_error(function() K.qmap("other") end, "signed")
  end,

  matches_bitsandbytes_adamw8bit = function()
    local p = gold["a8.p0"]:clone()
    local opt = optim.AdamW8bit({{params = {p}}}, {lr = 1e-2, beta1 = 0.9, beta2 = 0.95, eps = 1e-8,
      weight_decay = 0.1, min_8bit_size = 0})
    for i = 1, 5 do
      p.grad = gold["a8.grad" .. i]
      opt:step()
      t.assert_tensor_close(p, gold["a8.p" .. i], 1e-6, 1e-5, "step " .. i)
    end
    local st = opt.state[p]
    for _, k in ipairs({"1", "2"}) do
      local off, big = u8_count_diff(st["q" .. k], gold["a8.state" .. k])
      t.assert(off <= 3 and big == 0, string.format("state%s: %d codes differ", k, off))
      t.assert_tensor_close(st["a" .. k], gold["a8.absmax" .. k], 1e-9, 1e-5, "absmax" .. k)
    end
  end,

  tracks_f32_adamw_and_uses_a_quarter_of_the_memory = function()
    -- least squares W [64, 96] (6144 elements: 8-bit states), 50 steps
    lfl.manual_seed(11)
    local X, Wt = lfl.randn(96, 32), lfl.randn(64, 96) * 0.3
    local Y = lfl.matmul(Wt, X)
    local W0 = lfl.zeros(64, 96)
    local function run(make)
      local W = W0:clone():requires_grad()
      local opt = make({{params = {W}}})
      local loss
      for _ = 1, 50 do
        local d = lfl.matmul(W, X) - Y
        loss = (d * d):mean()
        loss:backward()
        opt:step()
        opt:zero_grad()
      end
      return W:detach(), loss:item(), opt
    end
    local W32, l32 = run(function(g) return optim.AdamW(g, {lr = 2e-2, weight_decay = 0.01}) end)
    local W8, l8, o8 = run(function(g) return optim.AdamW8bit(g, {lr = 2e-2, weight_decay = 0.01}) end)
    local dw, nw = (W8 - W32), W32
    local rel = math.sqrt((dw * dw):sum():item() / (nw * nw):sum():item())
    t.assert(rel < 0.1, "8-bit AdamW drifted from f32 AdamW by " .. rel)
    t.assert(math.abs(l8 - l32) < 0.05 * l32 + 1e-4, string.format("losses %g vs %g", l8, l32))
    local n = 64 * 96
    t.assert_eq(o8:state_bytes(), 2 * n + 4 * 2 * math.ceil(n / 256), "state bytes")
    t.assert(o8:state_bytes() < 0.27 * 8 * n, "not a quarter of f32 states")
    -- tensors under min_8bit_size keep f32 states, like bitsandbytes
    local small = lfl.zeros(10):requires_grad()
    local o = optim.AdamW8bit({{params = {small}}}, {lr = 1e-2})
    small.grad = lfl.ones(10)
    o:step()
    t.assert(o.state[small].m ~= nil and o:state_bytes() == 80)
  end,

  checkpoint_state_round_trips = function()
    local p = gold["a8.p0"]:clone()
    local opt = optim.AdamW8bit({{params = {p}, names = {"w"}}}, {lr = 1e-2, min_8bit_size = 0})
    p.grad = gold["a8.grad1"]; opt:step()
    local ts, meta = opt:state_tensors()
    t.assert(ts["w.state1"]:dtype() == "u8" and ts["w.absmax1"]:numel() == 3)
    local p2 = p:clone()
    local o2 = optim.AdamW8bit({{params = {p2}, names = {"w"}}}, {lr = 1e-2, min_8bit_size = 0})
    o2:load_state_tensors(ts, meta)
    p.grad, p2.grad = gold["a8.grad2"], gold["a8.grad2"]
    opt:step(); o2:step()
    t.assert_tensor_close(p2, p, 0, 0)
  end,
})

t.suite("linalg", {
  svd_reconstructs_with_orthonormal_factors = function()
    lfl.manual_seed(5)
    for _, sh in ipairs({{7, 5}, {4, 9}, {6, 6}, {1, 5}, {5, 1}}) do
      local a = lfl.randn(sh[1], sh[2])
      local U, S, Vt = lfl.linalg.svd(a)
      local k = math.min(sh[1], sh[2])
      t.assert_eq(U:size(2), k); t.assert_eq(Vt:size(1), k)
      t.assert_tensor_close(lfl.matmul(U * S:view(1, -1), Vt), a, 1e-5, 1e-5, "reconstruct " .. sh[1] .. "x" .. sh[2])
      eye_close(U, 1e-5, "U orthonormal"); eye_close(Vt:transpose(1, 2), 1e-5, "V orthonormal")
      for i = 2, k do t.assert(S:_at(i) <= S:_at(i - 1), "descending") end
    end
  end,

  svd_of_a_known_decomposition = function()
    lfl.manual_seed(6)
    local U0 = lfl.linalg.qr(lfl.randn(10, 4))
    local V0 = lfl.linalg.qr(lfl.randn(6, 4))
    local s = lfl.tensor({5, 3, 1, 0.25})
    local a = lfl.matmul(U0 * s:view(1, -1), V0:transpose(1, 2)):double()
    local U, S, Vt = lfl.linalg.svd(a)
    t.assert_tensor_close(S:narrow(1, 1, 4), s:double(), 1e-6, 0, "singular values")
    for i = 5, 6 do t.assert(math.abs(S:_at(i)) < 1e-6, "rank 4") end
    eye_close(U, 1e-10, "U orthonormal (rank deficient)")
    t.assert_tensor_close(lfl.matmul(U * S:view(1, -1), Vt), a, 1e-10, 0)
    -- each left vector spans the same line as the known one
    for j = 1, 4 do
      local c = lfl.matmul(U:narrow(2, j, 1):transpose(1, 2), U0:double():narrow(2, j, 1)):item()
      t.assert_close(math.abs(c), 1, 1e-6, "vector " .. j)
    end
    -- sign convention: the largest |entry| of each U column is positive
    for j = 1, 6 do
      local best, bv = 0, 0
      for i = 1, 10 do local v = U:_at((i - 1) * 6 + j); if math.abs(v) > math.abs(bv) then bv = v; best = i end end
      t.assert(bv > 0, "sign of column " .. j)
    end
  end,

  qr = function()
    lfl.manual_seed(8)
    local a = lfl.randn(9, 4):double()
    local Q, R = lfl.linalg.qr(a)
    eye_close(Q, 1e-12, "Q")
    t.assert_tensor_close(lfl.matmul(Q, R), a, 1e-12, 0, "QR")
    for i = 2, 4 do for j = 1, i - 1 do t.assert_eq(R:_at((i - 1) * 4 + j), 0, "upper triangular") end end
    t.assert_error(function() lfl.linalg.qr(lfl.randn(2, 3)) end, "rows >= columns")
    t.assert_error(function() lfl.linalg.svd(lfl.randn(2, 3, 4)) end, "2-D")
  end,

  svd_lowrank = function()
    lfl.manual_seed(9)
    local a = lfl.matmul(lfl.randn(20, 3), lfl.randn(3, 15)):double()
    local U, S, V = lfl.linalg.svd_lowrank(a, 3, 2)
    local _, Se = lfl.linalg.svd(a)
    t.assert_tensor_close(S, Se:narrow(1, 1, 3), 1e-6, 1e-6, "exact on a (nearly, f32-rounded) rank-3 matrix")
    t.assert_tensor_close(lfl.matmul(U * S:view(1, -1), V:transpose(1, 2)), a, 1e-5, 1e-6)
    eye_close(U, 1e-10, "U"); eye_close(V, 1e-10, "V")
    t.assert_error(function() lfl.linalg.svd_lowrank(a, 16, 2) end, "rank q")
  end,
})

t.suite("galore", {
  matches_galore_torch = function()
    for _, name in ipairs({"std_tall", "std_wide", "reverse_std", "right", "left", "full", "plain"}) do
      local pre = "galore." .. name .. "."
      local p = gold[pre .. "p0"]:clone()
      local cfg = name ~= "plain" and {rank = 3, update_proj_gap = 2, scale = 0.5,
        proj_type = (name:match("^std") and "std" or name)} or nil
      local opt = galore.GaLoreAdamW({{params = {p}, galore = cfg, weight_decay = 0.1}}, {lr = 1e-2, eps = 1e-6})
      for i = 1, 5 do
        p.grad = gold[pre .. "grad" .. i]
        opt:step()
        t.assert_tensor_close(p, gold[pre .. "p" .. i], 2e-5, 1e-5, name .. " step " .. i)
      end
      if cfg then
        t.assert_eq(opt.state[p].refreshes, 3, name .. ": projection refreshed at steps 0, 2, 4")
        local low = opt.state[p].m:size()
        local side = galore.side(cfg.proj_type, p:size(1), p:size(2))
        local want = side == "right" and {p:size(1), 3} or side == "left" and {3, p:size(2)} or {3, 3}
        t.assert(low[1] == want[1] and low[2] == want[2], name .. ": states in the projected space")
      end
    end
  end,

  rejects_bad_input = function()
    t.assert_error(function() galore.GaLoreAdamW({{params = {lfl.zeros(3)}, galore = {rank = 2}}}) end, "2-D")
    t.assert_error(function() galore.GaLoreAdamW({{params = {lfl.zeros(3, 3)}, galore = {proj_type = "diag"}}}) end,
      "galore_proj_type")
  end,
})

t.suite("pissa", {
  matches_peft_init = function()
    local m = lfl.model.load(model_dir)
    local W = gold["pissa.W"]
    -- one matrix through the same code path: a fake model with a single linear
    local fake = lfl.model.new()
    fake.params["x.q_proj.weight"], fake.arch = W:clone(), m.arch
    peft.add_lora(fake, {rank = 4, alpha = 8, target = "all", init = "pissa", pissa_iter = -1})
    local e = fake.adapters["x.q_proj"]
    t.assert_tensor_close(e.A, gold["pissa.A"], 1e-5, 1e-4, "A")
    t.assert_tensor_close(e.B, gold["pissa.B"], 1e-5, 1e-4, "B")
    t.assert_tensor_close(fake.params["x.q_proj.weight"], gold["pissa.W_res"], 1e-5, 1e-4, "residual")
    t.assert_tensor_close(fake.params["x.q_proj.weight"] + lfl.matmul(e.B, e.A) * 2, W, 1e-5, 1e-5, "reconstructs W")
    t.assert_eq(fake.lora.init_lora_weights, "pissa")
  end,

  model_output_unchanged_and_conversion_reproduces_training = function()
    local ids = tiny_batch()
    local base = lfl.model.load(model_dir)
    local ref = lfl.no_grad(function() return base:forward(ids) end)
    for _, niter in ipairs({-1, 4}) do
      local m = lfl.model.load(model_dir)
      lfl.manual_seed(1)
      peft.add_lora(m, {rank = 4, alpha = 8, init = "pissa", pissa_iter = niter})
      local out = lfl.no_grad(function() return m:forward(ids) end)
      t.assert_tensor_close(out, ref, 1e-4, 1e-4, "PiSSA starts at the original model, niter " .. niter)
      -- "train": move every A, B
      lfl.no_grad(function()
        for _, e in pairs(m.adapters) do
          e.A:copy_(e.A + lfl.randn(e.A:size()) * 0.05); e.B:copy_(e.B + lfl.randn(e.B:size()) * 0.05)
        end
      end)
      local trained = lfl.no_grad(function() return m:forward(ids) end)
      local dir = os.tmpname(); os.remove(dir)
      peft.save_pissa_converted(m, dir)
      local cfg = lfl.json.decode(io.open(dir .. "/adapter_config.json"):read("*a"))
      t.assert_eq(cfg.r, 8); t.assert_eq(cfg.lora_alpha, 16)
      local orig = lfl.model.load(model_dir)
      peft.load_adapter(orig, dir)
      local conv = lfl.no_grad(function() return orig:forward(ids) end)
      t.assert_tensor_close(conv, trained, 1e-4, 1e-4, "converted LoRA on the original weights")
      os.execute("rm -rf '" .. dir .. "'")
    end
  end,

  randomized_init_finds_the_top_subspace = function()
    lfl.manual_seed(2)
    local W = lfl.matmul(lfl.randn(24, 4) * lfl.tensor({8, 4, 2, 1}):view(1, -1), lfl.randn(4, 16)) + lfl.randn(24, 16) * 0.01
    local fake = {names = {"x.q_proj.weight"}, params = {["x.q_proj.weight"] = W:clone()}}
    peft.add_lora(fake, {rank = 4, alpha = 4, init = "pissa", pissa_iter = 4})
    local res = fake.params["x.q_proj.weight"]
    local rel = math.sqrt((res * res):sum():item() / (W * W):sum():item())
    t.assert(rel < 0.01, "residual after removing the top-4 subspace is " .. rel)
  end,
})

local function load_trainable()
  local m = lfl.model.load(model_dir)
  for _, p in ipairs(m:parameters()) do p:requires_grad(false) end
  local names, params = peft.select_trainable(m, "full")
  require("lfl.train.trainer").writable_params(m, names, params)
  return m, names, params
end

local function snapshot(params)
  local s = {}
  for i, p in ipairs(params) do s[i] = p:detach():clone() end
  return s
end

local function changed(a, b) return t.max_abs_diff(a, b) > 0 end

t.suite("badam", {
  layer_mode_trains_one_block_at_a_time = function()
    local m, names, params = load_trainable()
    local ids, labels = tiny_batch()
    local opt = badam.BlockOptimizer(names, params, {lr = 1e-2, switch_every = 3, switch_mode = "ascending"})
    t.assert_eq(#opt.blocks, 2)
    -- BAdam switches after steps 2, 5, 8: block 0, 0, 1, 1, 1, 0, 0, 0
    local want = {0, 0, 1, 1, 1, 0, 0, 0}
    for s = 1, #want do
      local before = snapshot(params)
      local loss = m:loss(ids, labels)
      loss:backward()
      opt:step()
      opt:zero_grad()
      for i, n in ipairs(names) do
        local l = n:match("layers%.(%d+)%.")
        local should = l and tonumber(l) == want[s]
        t.assert_eq(changed(params[i], before[i]), should and true or false, string.format("step %d %s", s, n))
      end
    end
  end,

  layer_mode_switch_orders = function()
    local _, names, params = load_trainable()
    local d = badam.BlockOptimizer(names, params, {lr = 1e-3, switch_every = 2, switch_mode = "descending"})
    t.assert_eq(d.active.index, 1)
    local f = badam.BlockOptimizer(names, params, {lr = 1e-3, switch_every = 2, switch_mode = "fixed", start_block = 1})
    for _ = 1, 5 do f:step() end
    t.assert_eq(f.active.index, 1)
    lfl.manual_seed(3)
    local r = badam.BlockOptimizer(names, params, {lr = 1e-3, switch_every = 1, switch_mode = "random"})
    local seen = {[r.active.index] = 1}
    -- random: every block once per round
    r:step()
    seen[r.active.index] = (seen[r.active.index] or 0) + 1
    t.assert(seen[0] == 1 and seen[1] == 1, "random mode visits each block once per round")
    t.assert_error(function() badam.BlockOptimizer(names, params, {switch_mode = "zigzag"}) end, "badam_switch_mode")
    t.assert_error(function() badam.BlockOptimizer(names, params, {start_block = 2}) end, "badam_start_block")
  end,

  ratio_mode_updates_the_masked_entries = function()
    local m, names, params = load_trainable()
    local ids, labels = tiny_batch()
    local opt = badam.RatioOptimizer(names, params, {lr = 1e-2, update_ratio = 0.1, mask_mode = "adjacent",
                                                     switch_every = 2})
    local function step_and_check(expect_offset)
      local before = snapshot(params)
      local loss = m:loss(ids, labels)
      loss:backward()
      opt:before_clip()
      opt:step()
      opt:zero_grad()
      for i, n in ipairs(names) do
        local p, b = params[i], before[i]
        if n:find("embed") or n:find("lm_head") then
          t.assert(not changed(p, b), n .. " is frozen")
        else
          local k = math.floor(p:numel() * 0.1)
          local diff, flat, pb = 0, p:contiguous():view(-1), b:contiguous():view(-1)
          for j = 1, p:numel() do
            if flat:_at(j) ~= pb:_at(j) then
              diff = diff + 1
              local pos = (j - 1 - expect_offset(p:numel())) % p:numel()
              t.assert(pos < k, string.format("%s entry %d outside the mask", n, j))
            end
          end
          t.assert(diff <= k and diff >= k - 1, string.format("%s: %d entries changed, mask %d", n, diff, k))
        end
      end
    end
    step_and_check(function() return 0 end)
    step_and_check(function() return 0 end)
    -- after switch_every = 2 steps the window moves on by its length and states reset
    t.assert(next(opt.state) == nil, "states reset at the switch")
    step_and_check(function(n) return math.floor(n * 0.1) end)
  end,

  ratio_scatter_mask = function()
    local _, names, params = load_trainable()
    local opt = badam.RatioOptimizer(names, params, {update_ratio = 0.25, mask_mode = "scatter"})
    local p = opt.params[2]
    local idx = opt:mask(p)
    t.assert_eq(idx:numel(), math.floor(p:numel() * 0.25))
    local seen = {}
    for j = 1, idx:numel() do
      local v = idx:_at(j)
      t.assert(not seen[v] and v >= 0 and v < p:numel()); seen[v] = true
    end
    t.assert_error(function() badam.RatioOptimizer(names, params, {mask_mode = "blocks"}) end, "badam_mask_mode")
  end,
})

t.run()
