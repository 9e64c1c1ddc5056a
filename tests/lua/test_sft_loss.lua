-- LlamaFactory's SFT loss variants (use_dft_loss, use_eaft_loss + eaft_alpha,
-- use_asft_loss + asft_alpha) against its own loss functions (tests/ref/make_sftloss_goldens.py, torch
-- f32): the decoder's token-weighted cross-entropy through the fused head on
-- fixed hidden/w (chunk 8 and the default), and the tiny golden llama's loss
-- and gradients; lfl.linear_topk_entropy against a brute-force top-k entropy;
-- lfl.linear_kl_div against the KL of full softmaxes, with a gradcheck;
-- a finite-difference gradcheck of the weighted loss with its weights held
-- fixed (they are taken without gradient); the arguments and a short training
-- run on the tiny llama where each flag changes the step loss.
-- Tolerances: losses within 2e-6 absolute + 2e-5 relative, gradients within
-- atol 2e-6 / rtol 2e-5 (fixed) and 1e-6 / 1e-4 (through the model's layers):
-- f32 with another summation order. (lfl sums the top-k entropy in f64; torch's
-- f32 one loses relative precision as the entropy nears 0: 1.8% at 4e-5, so
-- the fixed case's peaked row stays at entropy 0.017, 3e-5 off.)
local t = lfl.test
local dec = require("lfl.model.decoder")
local fmt = string.format
local home = lfl.home
local G = lfl.safetensors.load(home .. "/tests/golden/loss/sftloss.safetensors")
local TW = {ce = nil, dft = {kind = "dft"}, eaft1 = {kind = "eaft", alpha = 1.0}, eaft05 = {kind = "eaft", alpha = 0.5}}
local NAMES = {"ce", "dft", "eaft1", "eaft05"}

local function loss_of(hf, W, lab, name, chunk)
  if name == "ce" then return lfl.linear_cross_entropy(hf, W, lab, {chunk = chunk}) end
  return dec.token_weighted_ce(hf, W, lab, TW[name], chunk)
end

-- brute force: the entropy of the softmax over a row's k largest values
local function topk_entropy(row, k)
  local v = {}
  for j = 1, #row do v[j] = row[j] end
  table.sort(v, function(a, b) return a > b end)
  local s = 0
  for i = 1, k do s = s + math.exp(v[i] - v[1]) end
  local lse, e = v[1] + math.log(s), 0
  for i = 1, k do e = e - math.exp(v[i] - lse) * (v[i] - lse) end
  return e
end

-- the tiny llama from a scratch folder for the training runs
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_sftloss"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp .. "/model")
for _, f in ipairs({"tests/golden/models/llama/config.json", "tests/golden/models/llama/model.safetensors",
                    "tests/golden/serve/tokenizer.json"}) do
  lfl.fs.symlink(home .. "/" .. f, tmp .. "/model/" .. f:match("[^/]+$"))
end
lfl.fs.mkdir(tmp .. "/gemma2")
for _, f in ipairs({"tests/golden/models/gemma2/config.json", "tests/golden/models/gemma2/model.safetensors",
                    "tests/golden/serve/tokenizer.json"}) do
  lfl.fs.symlink(home .. "/" .. f, tmp .. "/gemma2/" .. f:match("[^/]+$"))
end
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return tmp .. "/cache" end return real_getenv(k) end

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "sft", dataset = "alpaca_demo", template = "chatml",
    cutoff_len = 24, max_samples = 8, per_device_train_batch_size = 2, gradient_accumulation_steps = 1,
    max_steps = 2, logging_steps = 1, save_steps = 1000, learning_rate = 1e-2, overwrite_output_dir = true,
    disable_tqdm = true, seed = 5, finetuning_type = "lora", output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

t.suite("sft_loss", {
  fixed_against_llamafactory = function()
    local h, W = G["fixed.hidden"], G["fixed.w"]
    local H = h:size(3)
    local lab = dec.shift_labels(G["fixed.labels"]):reshape(-1)
    for _, name in ipairs(NAMES) do
      local want = G["fixed." .. name .. ".loss"]:item()
      -- LlamaFactory's num_items_in_batch (the labelled count) gives the same value as its mean
      t.assert_close(G["fixed." .. name .. ".loss_nib"]:item(), want, 1e-6, name .. ": golden nib")
      local atol = 2e-6
      for _, chunk in ipairs({8, 0}) do
        local hg, wg = h:reshape(-1, H):clone():requires_grad(), W:clone():requires_grad()
        local loss = loss_of(hg, wg, lab, name, chunk)
        local what = fmt("%s chunk %d", name, chunk)
        t.assert_close(loss:item(), want, 2e-6 + 2e-5 * math.abs(want), what .. ": loss")
        loss:backward()
        t.assert_tensor_close(hg.grad:reshape(h:size()), G["fixed." .. name .. ".dhidden"], atol, 2e-5,
          what .. ": d/dhidden")
        t.assert_tensor_close(wg.grad, G["fixed." .. name .. ".dw"], atol, 2e-5, what .. ": d/dw")
      end
      -- a frozen head (LoRA): the fused op's one-pass form gives the same hidden gradient
      local hg = h:reshape(-1, H):clone():requires_grad()
      loss_of(hg, W, lab, name, 8):backward()
      t.assert_tensor_close(hg.grad:reshape(h:size()), G["fixed." .. name .. ".dhidden"], atol, 2e-5,
        name .. " frozen head: d/dhidden")
    end
    -- ASFT: DFT + alpha * KL to the reference logits ref_hidden @ ref_w^T
    local rh, rw = G["fixed.ref_hidden"], G["fixed.ref_w"]
    local rows = function() return rh:reshape(-1, rh:size(3)), rw end
    for name, alpha in pairs({asft01 = 0.1, asft05 = 0.5}) do
      local tw = {kind = "asft", alpha = alpha, ref_rows = rows}
      local want = G["fixed." .. name .. ".loss"]:item()
      for _, chunk in ipairs({8, 0}) do
        local hg, wg = h:reshape(-1, H):clone():requires_grad(), W:clone():requires_grad()
        local loss = dec.token_weighted_ce(hg, wg, lab, tw, chunk)
        local what = fmt("%s chunk %d", name, chunk)
        t.assert_close(loss:item(), want, 2e-6 + 2e-5 * math.abs(want), what .. ": loss")
        loss:backward()
        t.assert_tensor_close(hg.grad:reshape(h:size()), G["fixed." .. name .. ".dhidden"], 2e-6, 2e-5,
          what .. ": d/dhidden")
        t.assert_tensor_close(wg.grad, G["fixed." .. name .. ".dw"], 2e-6, 2e-5, what .. ": d/dw")
      end
    end
    -- the variants differ from each other and from the plain loss
    t.assert(math.abs(G["fixed.dft.loss"]:item() - G["fixed.ce.loss"]:item()) > 1, "dft differs from ce")
    t.assert(math.abs(G["fixed.eaft1.loss"]:item() - G["fixed.eaft05.loss"]:item()) > 0.1, "eaft_alpha matters")
  end,

  tiny_llama_against_llamafactory = function()
    local ids, labels = G["model.ids"], G["model.labels"]
    for _, name in ipairs(NAMES) do
      local m = lfl.model.load(home .. "/tests/golden/models/llama")
      local head, q = m.params["lm_head.weight"], m.params["model.layers.0.self_attn.q_proj.weight"]
      head:requires_grad(); q:requires_grad()
      local loss = dec.loss(m, ids, labels, {token_weight = TW[name]})
      local want = G["model." .. name .. ".loss"]:item()
      t.assert_close(loss:item(), want, 2e-6 + 2e-5 * math.abs(want), name .. ": model loss")
      loss:backward()
      t.assert_tensor_close(head.grad, G["model." .. name .. ".d_lm_head"], 1e-6, 1e-4, name .. ": d lm_head")
      t.assert_tensor_close(q.grad, G["model." .. name .. ".d_q_proj"], 1e-6, 1e-4, name .. ": d q_proj")
    end
  end,

  tiny_llama_asft_against_llamafactory = function()
    -- the reference: the same llama with lm_head and layer 0's q_proj scaled by 1.5
    local ids, labels = G["model.ids"], G["model.labels"]
    local m = lfl.model.load(home .. "/tests/golden/models/llama")
    local ref = lfl.model.load(home .. "/tests/golden/models/llama")
    for _, k in ipairs({"lm_head.weight", "model.layers.0.self_attn.q_proj.weight"}) do
      ref.params[k] = ref.params[k] * 1.5
    end
    local head, q = m.params["lm_head.weight"], m.params["model.layers.0.self_attn.q_proj.weight"]
    head:requires_grad(); q:requires_grad()
    local loss = dec.loss(m, ids, labels, {token_weight = {kind = "asft", alpha = 0.1,
      reference = {kind = "model", model = ref}}})
    local want = G["model.asft01.loss"]:item()
    t.assert_close(loss:item(), want, 2e-6 + 2e-5 * math.abs(want), "asft: model loss")
    loss:backward()
    t.assert_tensor_close(head.grad, G["model.asft01.d_lm_head"], 1e-6, 1e-4, "asft: d lm_head")
    t.assert_tensor_close(q.grad, G["model.asft01.d_q_proj"], 1e-6, 1e-4, "asft: d q_proj")
    t.assert(math.abs(want - G["model.dft.loss"]:item()) > 1e-4, "the KL term counts")
    -- the reference as this model with its adapter off is the model itself: KL 0, the DFT loss
    local off = {kind = "asft", alpha = 0.1, reference = {kind = "adapter_off"}}
    local l0 = dec.loss(m, ids, labels, {token_weight = off})
    t.assert_close(l0:item(), G["model.dft.loss"]:item(), 2e-6, "no adapter: asft = dft")
    t.assert_error(function() dec.loss(m, ids, labels, {token_weight = {kind = "asft"}}) end, "no reference model")
  end,

  kl_div_op = function()
    lfl.manual_seed(13)
    local h, W = lfl.randn({2, 3, 5}, "f64"):requires_grad(), lfl.randn({23, 5}, "f64"):requires_grad()
    local hr, Wr = lfl.randn({2, 3, 4}, "f64"), lfl.randn({23, 4}, "f64") * 2
    local lab = lfl.tensor({{1, -100, 4}, {0, 22, 9}}, "i64")
    for _, chunk in ipairs({4, 7, 0}) do
      local kl = lfl.linear_kl_div(h, W, hr, Wr, lab, {chunk = chunk})
      t.assert_eq(kl:dim(), 2, "leading dims kept")
      local lp = lfl.log_softmax(lfl.linear(h:reshape(-1, 5), W), 2)
      local qq = lfl.softmax(lfl.linear(hr:reshape(-1, 4), Wr), 2)
      local want = (qq * (qq:log() - lp)):sum(2):reshape(2, 3):masked_fill(lab:eq(-100), 0)
      t.assert_tensor_close(kl, want, 1e-12, 1e-10, "kl chunk " .. chunk)
      t.gradcheck(function(a, b) return lfl.linear_kl_div(a, b, hr, Wr, lab, {chunk = chunk}) end, {h, W})
    end
    -- the same distributions: 0; a frozen w: only hidden's gradient
    local hs = h:detach()
    t.assert_close(lfl.linear_kl_div(hs, W:detach(), hs, W:detach(), lab):abs():max():item(), 0, 1e-12, "KL(p || p)")
    local h32, W32 = lfl.randn({4, 3}), lfl.randn({9, 3})
    local hg = h32:clone():requires_grad()
    local lab4 = lfl.tensor({1, 2, 3, 4}, "i64")
    lfl.linear_kl_div(hg, W32, lfl.randn({4, 2}), lfl.randn({9, 2}), lab4):sum():backward()
    t.assert(hg.grad and hg.grad:abs():max():item() > 0, "f32 hidden gradient")
    t.assert_error(function() lfl.linear_kl_div(h32, W32, lfl.randn({4, 2}), lfl.randn({8, 2}), lab4) end,
      "reference's vocabulary (8) differs")
    t.assert_error(function() lfl.linear_kl_div(h32, W32, lfl.randn({3, 2}), lfl.randn({9, 2}), lab4) end,
      "differ in their rows")
    t.assert_error(function()
      lfl.linear_kl_div(h32, W32, lfl.randn({4, 2}, "f64"), lfl.randn({9, 2}, "f64"), lab4)
    end, "reference hidden is f64")
    t.assert_error(function() lfl.linear_kl_div(h32, W32, lfl.randn({4, 2}), lfl.randn({9, 3}), lab4) end,
      "does not match its w")
    t.assert_error(function() lfl.linear_kl_div(h32, W32, lfl.randn({4, 2}), lfl.randn({9, 2}),
      lfl.tensor({1, 2, 3, 9}, "i64")) end, "label")
  end,

  softcapped_head = function()
    -- a soft-capped head (Gemma 2) computes the logits whole: DFT then weighs
    -- lfl.cross_entropy's per-token values; EAFT is refused
    local ids, labels = G["model.ids"], G["model.labels"]
    local m = lfl.model.load(home .. "/tests/golden/models/llama")
    m.arch.final_softcap = 0.05 -- the tiny model's logits are small: a cap that bites
    local head = m.params["lm_head.weight"]
    head:requires_grad()
    local loss = dec.loss(m, ids, labels, {token_weight = TW.dft})
    loss:backward()
    local got = head.grad
    head.grad = nil
    local logits = dec.forward(m, ids, {})
    local V = logits:size(3)
    local lab = dec.shift_labels(labels):reshape(-1)
    local ce = lfl.cross_entropy(logits:reshape(-1, V), lab, {reduction = "none"})
    local w = lfl.no_grad(function() return (-ce:detach()):exp() end)
    local n = lfl.nonzero(lab:ne(-100)):numel()
    local want = (ce * w):sum() * (1 / n)
    want:backward()
    t.assert_close(loss:item(), want:item(), 1e-7, "softcap dft loss")
    t.assert_tensor_close(got, head.grad, 1e-8, 1e-6, "softcap dft d lm_head")
    t.assert(math.abs(loss:item() - G["model.dft.loss"]:item()) > 1e-4, "the cap changed the loss")
    t.assert_error(function() dec.loss(m, ids, labels, {token_weight = TW.eaft1}) end, "final_logit_softcapping")
  end,

  topk_entropy_op = function()
    lfl.manual_seed(11)
    for _, dt in ipairs({"f64", "f32"}) do
      local h, W = lfl.randn({2, 3, 6}, dt), lfl.randn({29, 6}, dt) * 2
      local logits = lfl.linear(h:reshape(-1, 6), W)
      for _, k in ipairs({1, 5, 20, 29}) do
        for _, chunk in ipairs({4, 7, 0}) do
          local e = lfl.linear_topk_entropy(h, W, {k = k, chunk = chunk})
          t.assert_eq(e:dim(), 2, "leading dims kept")
          t.assert_eq(e:dtype(), dt)
          local ef = e:reshape(-1)
          for r = 1, 6 do
            local row = {}
            for j = 1, 29 do row[j] = logits[r][j] end
            t.assert_close(ef[r], topk_entropy(row, k), dt == "f64" and 1e-12 or 2e-5,
              fmt("%s k %d chunk %d row %d", dt, k, chunk, r))
          end
        end
      end
      -- k = 1: one value, no uncertainty
      t.assert_close(lfl.linear_topk_entropy(h, W, {k = 1}):abs():max():item(), 0, 1e-12, "k 1 is 0")
    end
    local h, W = lfl.randn({3, 4}), lfl.randn({5, 4})
    t.assert_error(function() lfl.linear_topk_entropy(h, W, {k = 6}) end, "k must be in [1, V = 5]")
    t.assert_error(function() lfl.linear_topk_entropy(h, W, {k = 0}) end, "got 0")
    t.assert_error(function() lfl.linear_topk_entropy(h, lfl.randn({5, 3}), {k = 2}) end, "does not match w")
    t.assert_error(function() lfl.linear_topk_entropy(h, W, {k = 2, chunk = -1}) end, "chunk must be >= 0")
    t.assert_error(function() lfl.linear_topk_entropy(h, W:to("f64"), {k = 2}) end, "dtype")
    -- detached: no gradient flows through it
    local hg = h:clone():requires_grad()
    local e = lfl.linear_topk_entropy(hg, W, {k = 3})
    t.assert(not e:get_requires_grad(), "the entropy is detached")
  end,

  gradcheck_weights_held = function()
    -- the weights are detached, so the gradient is that of sum(w0 * ce) / n with
    -- w0 the weights at the point; a finite-difference check of exactly that
    lfl.manual_seed(12)
    local h, W = lfl.randn({5, 6}, "f64"):requires_grad(), lfl.randn({23, 6}, "f64"):requires_grad()
    local lab = lfl.tensor({3, -100, 22, 0, 7}, "i64")
    for _, name in ipairs({"dft", "eaft1", "eaft05"}) do
      local w0 = lfl.no_grad(function()
        local ce = lfl.linear_cross_entropy(h, W, lab, {reduction = "none"})
        if name == "dft" then return (-ce):exp() end
        return (lfl.linear_topk_entropy(h, W, {k = 20}) * (1 / 3)):pow(TW[name].alpha)
      end)
      t.gradcheck(function(a, b)
        return (lfl.linear_cross_entropy(a, b, lab, {reduction = "none", chunk = 4}) * w0):sum() * (1 / 4)
      end, {h, W})
      -- and the variant's own gradient is that one
      h.grad, W.grad = nil, nil
      dec.token_weighted_ce(h, W, lab, TW[name], 4):backward()
      local gh, gw = h.grad, W.grad
      h.grad, W.grad = nil, nil
      ;((lfl.linear_cross_entropy(h, W, lab, {reduction = "none"}) * w0):sum() * (1 / 4)):backward()
      t.assert_tensor_close(gh, h.grad, 1e-12, 1e-10, name .. ": d/dh")
      t.assert_tensor_close(gw, W.grad, 1e-12, 1e-10, name .. ": d/dw")
      h.grad, W.grad = nil, nil
    end
    -- no labelled token: 0 (LlamaFactory returns 0), with a gradient of zeros
    local none = lfl.full({5}, -100, "i64")
    local z = dec.token_weighted_ce(h, W, none, TW.dft, 4)
    t.assert_eq(z:item(), 0)
    z:backward()
    t.assert_eq(h.grad:abs():max():item(), 0)
    t.assert_error(function() dec.token_weighted_ce(h, W, lab, {kind = "kto"}, 4) end, "\"eaft\" or \"asft\"")
    t.assert_error(function() dec.token_weighted_ce(h, W, lab, {kind = "asft"}, 4) end, "needs ref_rows")
    t.assert_error(function() dec.token_weighted_ce(h, lfl.randn({7, 6}, "f64"), lfl.tensor({3, -100, 2, 0, 6}, "i64"),
      TW.eaft1, 4) end,
      "smaller than EAFT's top-20")
  end,

  arguments = function()
    local function refused(over, pat)
      local ok, err = pcall(lfl.args.resolve, recipe(over), {}, "test")
      t.assert(not ok, "should be refused: " .. lfl.json.encode(over))
      t.assert(tostring(err):find(pat), "message: " .. tostring(err))
    end
    refused({use_asft_loss = true}, "use_asft_loss.*lora needs ref_model")
    refused({use_asft_loss = true, use_dft_loss = true, finetuning_type = "full"}, "use_asft_loss.*DFT")
    refused({use_asft_loss = true, use_eaft_loss = true, finetuning_type = "full"}, "use_asft_loss.*EAFT")
    refused({ref_model = tmp .. "/model"}, "ref_model.*use_asft_loss")
    refused({use_dft_loss = true, use_eaft_loss = true}, "use_eaft_loss.*DFT")
    refused({eaft_alpha = 0.5}, "eaft_alpha.*applies with use_eaft_loss")
    refused({asft_alpha = 0.5}, "asft_alpha.*applies with use_asft_loss")
    refused({use_dft_loss = true, stage = "pt"}, "use_dft_loss.*stage sft")
    refused({use_eaft_loss = "maybe"}, "use_eaft_loss")
    local a = lfl.args.resolve(recipe({use_eaft_loss = true, eaft_alpha = 0.5}), {}, "test")
    t.assert_eq(a.use_eaft_loss, true)
    t.assert_eq(a.eaft_alpha, 0.5)
    local cl = require("lfl.data.collate")
    t.assert_eq(cl.token_weight(a).kind, "eaft")
    t.assert_eq(cl.token_weight(a).alpha, 0.5)
    t.assert_eq(cl.token_weight(lfl.args.resolve(recipe({use_dft_loss = true}), {}, "test")).kind, "dft")
    t.assert(cl.token_weight(lfl.args.resolve(recipe(), {}, "test")) == nil, "plain CE without a flag")
    local asft = lfl.args.resolve(recipe({use_asft_loss = true, asft_alpha = 0.3, finetuning_type = "full"}), {},
      "test")
    t.assert_eq(cl.token_weight(asft, {kind = "frozen"}).alpha, 0.3)
    t.assert_error(function() cl.token_weight(asft, nil) end, "no reference model")
    lfl.args.resolve(recipe({use_asft_loss = true, ref_model = tmp .. "/model"}), {}, "test") -- LoRA with a ref_model
  end,

  training_step_loss_changes = function()
    local losses = {}
    for name, over in pairs({ce = {}, dft = {use_dft_loss = true}, eaft = {use_eaft_loss = true},
                             eaft05 = {use_eaft_loss = true, eaft_alpha = 0.5}}) do
      over.output_dir = tmp .. "/run_" .. name
      local tr = lfl.trainer(recipe(over))
      local l1 = tr:step().loss
      local l2 = tr:step().loss
      t.assert(l1 == l1 and l2 == l2, name .. ": finite losses")
      losses[name] = {l1, l2}
    end
    for _, pair in ipairs({{"ce", "dft"}, {"ce", "eaft"}, {"eaft", "eaft05"}, {"dft", "eaft"}}) do
      local a, b = losses[pair[1]][1], losses[pair[2]][1]
      t.assert(math.abs(a - b) > 1e-3, fmt("step loss %s %.6f vs %s %.6f should differ", pair[1], a, pair[2], b))
    end
    -- ASFT, full: the reference is a frozen copy of the initial weights, so the
    -- first step's KL is 0 and its loss is DFT's; LoRA with ref_model (here the
    -- base itself: KL 0 again at the start) runs too
    local full = {}
    for _, name in ipairs({"dft", "asft"}) do
      local tr = lfl.trainer(recipe({finetuning_type = "full", use_dft_loss = name == "dft" or nil,
        use_asft_loss = name == "asft" or nil, asft_alpha = name == "asft" and 0.5 or nil,
        output_dir = tmp .. "/run_full_" .. name}))
      full[name] = {tr:step().loss, tr:step().loss}
    end
    t.assert_close(full.asft[1], full.dft[1], 1e-6, "asft step 1 = dft step 1 (KL to the initial weights is 0)")
    t.assert(math.abs(full.asft[2] - full.dft[2]) > 1e-6, fmt("asft step 2 %.8f should differ from dft %.8f",
      full.asft[2], full.dft[2]))
    local tr = lfl.trainer(recipe({use_asft_loss = true, ref_model = tmp .. "/model", output_dir = tmp .. "/run_al"}))
    local l1 = tr:step().loss
    t.assert_close(l1, losses.dft[1], 1e-6, "lora asft step 1 = dft step 1")
    -- a soft-capped model (Gemma 2) is refused EAFT when the run is set up, before any data
    local ok, err = pcall(lfl.trainer, recipe({model_name_or_path = tmp .. "/gemma2", use_eaft_loss = true,
      output_dir = tmp .. "/run_gemma2"}))
    t.assert(not ok and tostring(err):find("use_eaft_loss: not implemented for a model with final_logit_softcapping",
      1, true), "gemma2 + eaft: " .. tostring(err))
    -- DFT weighs each token's loss by its probability (< 1): below the plain loss
    t.assert(losses.dft[1] < losses.ce[1], fmt("dft %.4f < ce %.4f", losses.dft[1], losses.ce[1]))
  end,
})

local res = t.run()
lfl.fs.remove(tmp)
return res
