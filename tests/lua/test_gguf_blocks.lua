-- GGUF block weights kept as the file stores them (lfl.model.load's
-- gguf_blocks, the trainer's gguf_blocks argument) on the real small model
-- (SmolLM2-135M-Instruct, the Q4_1 GGUF in ~/.cache/lfl/models; its layers are
-- q4_1, token_embd q8_0):
-- - linear and lora_linear on the file's own tensors (q4_1 and q8_0) against
--   the same tensors dequantized: the tiled path (> 8 rows, and the input
--   gradient) within 1e-5 of the largest output, the int8 decode path (<= 8
--   rows) within 1% in norm (activations quantized to 8 bits per block of 32;
--   tests/c/test_ggml_gemm.c checks its exact bound on random blocks of every
--   kind);
-- - the loaded model: only the layers' linears stay blocks (q/k rows unpermuted
--   block row by block row, equal to the dequantized model's), logits equal to
--   the dequantized model's within 1e-3 on the tiled path, and greedy decoding
--   makes the same 24 tokens on it; with the int8 dot products (layers and the
--   file's q8_0 head) the first 16 are the same and every token is the
--   dequantized model's argmax on its prefix or within 0.5 of its top logit
--   (int8 activations can flip a near-tie: token 24 did, gap 0.18, when this
--   test was written; none does since the fused kernels, 2026-12-07);
-- - 20 LoRA SFT steps on the kept Q4_1 base lower the loss, by default for a
--   GGUF with finetuning_type lora;
-- - full / freeze fine-tuning and merging on block weights are refused by name;
--   lfl chat --gguf-blocks loads the blocks.
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_gguf_blocks: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_ggufq"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function rel_max(a, b) return (a - b):abs():max():item() / b:abs():max():item() end
local function rel_norm(a, b)
  local d = a - b
  return math.sqrt((d * d):sum():item() / (b * b):sum():item())
end

local cases = {}

cases.linear_on_the_files_tensors = function()
  local ts = lfl.gguf.tensors(model)
  lfl.manual_seed(3)
  local seen = {}
  for _, name in ipairs({"blk.0.attn_q.weight", "blk.5.ffn_down.weight", "blk.29.ffn_up.weight", "token_embd.weight"}) do
    local w = ts[name]
    seen[w:dtype()] = true
    local wf = w:to("f32")
    local n, k = w:size(1), w:size(2)
    for _, m in ipairs({1, 5, 8, 12, 40}) do
      if not (name == "token_embd.weight" and m == 40) then
        local x = lfl.randn(m, k)
        local y, r = lfl.linear(x, w), lfl.linear(x, wf)
        t.assert_eq(table.concat(y:size(), ","), m .. "," .. n, name .. " output shape")
        if m <= 8 then
          local e = rel_norm(y, r)
          t.assert(e < 1e-2, fmt("%s m %d (int8 dot): relative error %.3g in norm", name, m, e))
        else
          local e = rel_max(y, r)
          t.assert(e < 1e-5, fmt("%s m %d (tiles): relative error %.3g", name, m, e))
        end
      end
    end
    if name ~= "token_embd.weight" then
      -- the input gradient (dx = g @ W) and lora_linear's, both on the tiled path
      local x = lfl.randn(6, k)
      local g = lfl.randn(6, n)
      local xa, xb = x:clone():requires_grad(), x:clone():requires_grad()
      ;(lfl.linear(xa, w) * g):sum():backward()
      ;(lfl.linear(xb, wf) * g):sum():backward()
      t.assert(rel_max(xa.grad, xb.grad) < 1e-5, name .. " input gradient")
      local A, B = (lfl.randn(4, k) * 0.1):requires_grad(), (lfl.randn(n, 4) * 0.1):requires_grad()
      local A2, B2 = A:detach():clone():requires_grad(), B:detach():clone():requires_grad()
      local xc, xd = lfl.randn(20, k):requires_grad(), nil
      xd = xc:detach():clone():requires_grad()
      local g2 = lfl.randn(20, n)
      local yc, yd = lfl.lora_linear(xc, w, nil, A, B, 2.0), lfl.lora_linear(xd, wf, nil, A2, B2, 2.0)
      t.assert(rel_max(yc, yd) < 1e-5, name .. " lora_linear forward")
      ;(yc * g2):sum():backward()
      ;(yd * g2):sum():backward()
      t.assert(rel_max(xc.grad, xd.grad) < 1e-5, name .. " lora_linear dx")
      t.assert(rel_max(A.grad, A2.grad) < 1e-5, name .. " lora_linear dA")
      t.assert(rel_max(B.grad, B2.grad) < 1e-5, name .. " lora_linear dB")
    end
  end
  t.assert(seen.q4_1 and seen.q8_0, "the fixture's q4_1 and q8_0 tensors were both covered")
  -- a block weight is frozen
  local w = ts["blk.0.attn_q.weight"]
  t.assert_error(function() return lfl.linear(lfl.randn(2, 576), w:requires_grad()) end, "only floating tensors can require grad")
end

cases.model_keeps_blocks = function()
  local kb = lfl.model.load(model, {gguf_blocks = true})
  local dq = lfl.model.load(model)
  t.assert(kb.gguf_blocks, "the model says it keeps blocks")
  local blocks, plain = 0, 0
  for _, name in ipairs(kb.names) do
    local p = kb.params[name]
    if p:dtype() == "q4_1" then
      blocks = blocks + 1
      t.assert(name:match("^model%.layers%.%d+%.") and not name:find("norm"), name .. " kept as blocks")
    else
      plain = plain + 1
      t.assert_eq(p:dtype(), "f32", name)
    end
  end
  t.assert_eq(blocks, 30 * 7, "the 7 linears of 30 layers stay q4_1")
  t.assert_eq(kb.params["model.embed_tokens.weight"]:dtype(), "f32", "the q8_0 embedding is dequantized")
  -- q/k rows in HF order: the same values as the dequantized (unpermuted) model
  for _, nm in ipairs({"model.layers.0.self_attn.q_proj.weight", "model.layers.7.self_attn.k_proj.weight",
                       "model.layers.7.mlp.gate_proj.weight"}) do
    t.assert_eq(t.max_abs_diff(kb.params[nm]:to("f32"), dq.params[nm]), 0, nm .. " values")
  end
  local ids = lfl.tensor({{1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
    19712, 8182, 2, 198, 1, 4093, 198}}, "i64")
  local prev = lfl.ggml_vecdot_rows(0)
  local e = lfl.no_grad(function() return rel_max(kb:forward(ids), dq:forward(ids)) end)
  lfl.ggml_vecdot_rows(prev)
  t.assert(e < 1e-3, fmt("logits on the tiled path: relative difference %.3g", e))
  -- greedy decoding on the tiled path makes the dequantized model's 24 tokens
  local prompt = {}
  for i = 1, ids:size(2) do prompt[i] = ids:_at(i) end
  local b = lfl.generate.generate(dq, prompt, {max_new_tokens = 24, do_sample = false})
  prev = lfl.ggml_vecdot_rows(0)
  local c = lfl.generate.generate(kb, prompt, {max_new_tokens = 24, do_sample = false})
  lfl.ggml_vecdot_rows(prev)
  t.assert_eq(table.concat(c, " "), table.concat(b, " "), "greedy tokens with kept blocks (tiled path)")
  -- with the int8 dot products (each new token) a near-tie may flip: each token the kept blocks choose
  -- is the dequantized model's argmax on the same prefix, or within 0.5 of its top logit
  local a = lfl.generate.generate(kb, prompt, {max_new_tokens = 24, do_sample = false})
  print(fmt("      greedy: %s", table.concat(a, " ")))
  local all = {}
  for _, v in ipairs(prompt) do all[#all + 1] = v end
  for _, v in ipairs(a) do all[#all + 1] = v end
  local lg = lfl.no_grad(function() return dq:forward(lfl.tensor({all}, "i64")) end)
  local flips, worst = 0, 0
  for i = 1, #a do
    local row = lg:narrow(2, #prompt + i - 1, 1):view(-1)
    local gap = row:max():item() - row:_at(a[i] + 1)
    if gap > 0 then flips = flips + 1 end
    worst = math.max(worst, gap)
  end
  print(fmt("      int8 path: %d of 24 tokens not the dequantized argmax, largest logit gap %.3f", flips, worst))
  t.assert(worst < 0.5 and flips <= 2, fmt("int8 path: %d flips, gap %.3f", flips, worst))
  t.assert_eq(table.concat(a, " ", 1, 16), table.concat(b, " ", 1, 16), "the first 16 greedy tokens")
  -- the logits came from the file's q8_0 head; a replaced (trained, resized) embedding is the head again
  local dec = require("lfl.model.decoder")
  t.assert_eq(dec.head_weight(kb):dtype(), "q8_0", "the tied head stays in the file's blocks")
  kb.params["model.embed_tokens.weight"] = kb.params["model.embed_tokens.weight"]:clone()
  t.assert_eq(dec.head_weight(kb):dtype(), "f32", "a replaced embedding is the head")
  t.assert_eq(dec.head_weight(dq):dtype(), "f32", "no blocks kept without gguf_blocks")
  collectgarbage(); collectgarbage()
end

local function mean(xs, i, j) local s = 0; for k = i, j do s = s + xs[k] end return s / (j - i + 1) end

cases.lora_sft_on_q4_1_blocks = function()
  local out = tmp .. "/sft"
  local tr = lfl.trainer({model_name_or_path = model, stage = "sft", dataset = "identity", template = "smollm",
    finetuning_type = "lora", lora_rank = 8, lora_target = "all", cutoff_len = 32,
    max_samples = 8, per_device_train_batch_size = 2, max_steps = 20, logging_steps = 1, save_steps = 1000,
    learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 7, output_dir = out})
  local m = tr.model
  t.assert(m.gguf_blocks, "LoRA on a GGUF keeps its blocks by default")
  t.assert_eq(m.params["model.layers.3.mlp.down_proj.weight"]:dtype(), "q4_1")
  tr:train()
  local losses = {}
  for _, h in ipairs(tr.log_history) do if h.loss then losses[#losses + 1] = h.loss end end
  t.assert_eq(#losses, 20, "a loss per step")
  local first, last = mean(losses, 1, 3), mean(losses, 18, 20)
  print(fmt("      gguf q4_1 blocks loss %.4f (steps 1-3) -> %.4f (steps 18-20)", first, last))
  t.assert(last < first * 0.8, fmt("loss %.4f -> %.4f", first, last))
  local ts = lfl.safetensors.load(out .. "/adapter_model.safetensors")
  t.assert(ts["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"], "a PEFT adapter was saved")
  -- merging into the blocks is refused; the saved adapter merges into the dequantized file
  t.assert_error(function() lfl.peft.merge(m) end, "GGUF q4_1 block weight")
  collectgarbage(); collectgarbage()
end

cases.full_and_freeze_refused = function()
  local function run(over)
    local r = {model_name_or_path = model, stage = "sft", dataset = "identity", template = "smollm",
      cutoff_len = 16, max_samples = 2, max_steps = 1, output_dir = tmp .. "/x", overwrite_output_dir = true}
    for k, v in pairs(over) do r[k] = v end
    return lfl.trainer(r)
  end
  t.assert_error(function() run({finetuning_type = "full", gguf_blocks = true}) end,
    "only finetuning_type lora trains on them")
  t.assert_error(function() run({finetuning_type = "freeze", gguf_blocks = true}) end, "gguf_blocks: false")
  t.assert_error(function() run({finetuning_type = "lora", gguf_blocks = true, quantization_bit = 4}) end,
    "choose one")
  t.assert_eq(require("lfl.train.trainer").gguf_blocks({model_name_or_path = model, finetuning_type = "full"}), nil,
    "full fine-tuning of a GGUF dequantizes it by default")
  t.assert_eq(require("lfl.train.trainer").gguf_blocks({model_name_or_path = model, finetuning_type = "lora",
    gguf_blocks = false}), false, "gguf_blocks: false dequantizes for LoRA")
  -- the selection itself refuses a block weight, whoever calls it
  local kb = lfl.model.load(model, {gguf_blocks = true})
  t.assert_error(function() lfl.peft.select_trainable(kb, "freeze", {freeze_trainable_layers = 1}) end,
    "cannot be trained")
  t.assert_error(function() lfl.model.load(model, {gguf_blocks = true, quantize = {type = "nf4", double_quant = true}}) end,
    "choose one")
  t.assert_error(function() kb:save(tmp .. "/saved") end, "load the GGUF without gguf_blocks")
  -- lfl chat --gguf-blocks
  local chat = require("lfl.cmd.chat")
  local cm = chat.load(chat.parse({"--model", model, "--gguf-blocks"}))
  t.assert(cm.gguf_blocks, "lfl chat --gguf-blocks keeps the blocks")
  t.assert_eq(cm.params["model.layers.0.mlp.up_proj.weight"]:dtype(), "q4_1")
  t.assert_error(function() chat.load(chat.parse({"--model", model, "--gguf-blocks", "--merge", "--adapter", tmp})) end,
    "drop one of them")
  collectgarbage(); collectgarbage()
end

t.suite("gguf_blocks", cases)
t.run()
lfl.fs.remove(tmp)
