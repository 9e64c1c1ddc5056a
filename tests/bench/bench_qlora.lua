-- QLoRA figures (4-bit NF4/FP4 and 8-bit LLM.int8) on SmolLM2-135M-Instruct (the Q4_1 GGUF in ~/.cache/lfl/models).
-- One configuration per process, so each peak RSS is its own:
--   build/lfl tests/bench/bench_qlora.lua load  f32|bf16|int8|nf4|nf4dq|nf4dq-bf16|fp4|gguf|gguf-bf16
--     loads the model; prints peak and settled RSS, the tensor heap after a
--     full GC and bytes per parameter (all parameters, and the decoder's linears),
--     then RSS after one forward of 64 tokens (gguf: the layers' linears stay in
--     the file's Q4_1 blocks, mmapped: file pages, not heap, until read)
--   build/lfl tests/bench/bench_qlora.lua kinds
--     the decoder's linear weights in every kind lfl keeps side by side, in one
--     process: f32, bf16, int8 (LLM.int8), nf4, nf4 + double quantization, fp4,
--     and the GGUF blocks lfl can write (q8_0, q5_0; q4_k needs rows of 256) and
--     the file's own q4_1; for each, the bytes the tensors hold by their own count
--     and the tensor-heap growth (lfl.memory) while they exist, per parameter
--   build/lfl tests/bench/bench_qlora.lua train lora-f32|lora-bf16|qlora-int8|qlora-int8-bf16|qlora-nf4|qlora-nf4dq|qlora-nf4dq-bf16|lora-gguf|lora-gguf-bf16 [steps] [cutoff_len]
--     LoRA r8 (all linears) SFT-style training on packed rows of the pretraining
--     demo text, batch 4, as bench_lora_sft.lua; prints the median step's
--     tokens/s and the peak RSS. lora-bf16 is LlamaFactory's bf16: true (bf16
--     base, bf16 GEMM products); qlora-nf4dq-bf16 is QLoRA with bf16: true
--     (LlamaFactory's compute dtype bf16: the 4-bit tiles go to the bf16 GEMM),
--     as qlora-int8-bf16 for the 8-bit base (transformers' MatMul8bitFp in the
--     input's dtype); the other qlora runs compute in f32. lora-gguf keeps the file's Q4_1 blocks
--     as the base (gguf_blocks); lora-f32 / lora-bf16 dequantize the file.
--   build/lfl tests/bench/bench_qlora.lua gptq-make
--     writes a GPTQ 4-bit checkpoint of SmolLM2 (groups of 128, sym, v1 layout;
--     round-to-nearest through lfl.gptq_quantize, no calibration: the layout and
--     sizes of a GPTQ checkpoint, which is what the figures depend on) to
--     $LFL_CACHE/bench/smollm2-gptq4 for `load gptq|gptq-deq` and `train lora-gptq`:
--     gptq keeps the linears quantized (gptq4), gptq-deq dequantizes them at load
--     (opts.dequantize); lora-gptq trains on the kept base (lora-f32 is the same
--     model shape on a dequantized f32 base), lora-gptq-bf16 with bf16: true
--     (the tiles through the bf16 GEMM; compare lora-bf16).
-- Figures only; on a shared 2-core machine they are noisy (run each twice).
local fmt = string.format
local mode, what = arg[1], arg[2]
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local QUANT = {nf4 = {type = "nf4", double_quant = false}, nf4dq = {type = "nf4", double_quant = true},
               fp4 = {type = "fp4", double_quant = false}, int8 = {type = "int8"}}
QUANT["nf4dq-bf16"] = QUANT.nf4dq -- with bf16: true (the embeddings in bf16 too)
-- bytes per element of the GGUF block kinds (ggml's block bytes / block elements)
local gptq_dir = cache .. "/bench/smollm2-gptq4"
local BLOCK_BYTES = {q4_0 = 18 / 32, q4_1 = 20 / 32, q5_0 = 22 / 32, q5_1 = 24 / 32, q8_0 = 34 / 32,
                     q4_k = 144 / 256, q5_k = 176 / 256, q6_k = 210 / 256}

if mode == "load" then
  local gguf = what == "gguf" or what == "gguf-bf16"
  local gptq = what == "gptq" or what == "gptq-deq"
  assert(what == "f32" or what == "bf16" or QUANT[what] or gguf or gptq,
    "load f32|bf16|int8|nf4|nf4dq|nf4dq-bf16|fp4|gguf|gguf-bf16|gptq|gptq-deq")
  local t0 = lfl.sys.clock()
  local m = lfl.model.load(gptq and gptq_dir or path, {dtype = what:match("bf16") and "bf16" or nil,
                                  quantize = QUANT[what], gguf_blocks = gguf or nil,
                                  dequantize = what == "gptq-deq" or nil})
  local secs = lfl.sys.clock() - t0
  collectgarbage(); collectgarbage()
  local heap = lfl.memory()
  local now, peak = lfl.sys.rss()
  local n, nlin, blin = 0, 0, 0
  for _, name in ipairs(m.names) do
    local p = m.params[name]
    n = n + p:numel()
    if p:dim() == 2 and name:match("^model%.layers%.") then
      nlin = nlin + p:numel()
      local dt = p:dtype()
      blin = blin + (dt == "int8" and lfl.int8_state(p).nbytes or (dt == "nf4" or dt == "fp4") and lfl.q4_state(p).nbytes
        or dt == "gptq4" and lfl.gptq_state(p).nbytes
        or BLOCK_BYTES[dt] and p:numel() * BLOCK_BYTES[dt] or p:numel() * (dt == "f32" and 4 or 2))
    end
  end
  print(fmt("load %-10s %.1fs: peak RSS %.0f MB, RSS after GC %.0f MB, tensor heap %.1f MB = %.3f bytes/param "
    .. "(%.1fM params); decoder linears %.1f MB = %.3f bytes/param (%.1fM)", what, secs, peak, now, heap / 2^20,
    heap / n, n / 1e6, blin / 2^20, blin / nlin, nlin / 1e6))
  if gguf then
    -- the kept blocks are file pages (mmapped), outside the tensor heap: the weights' resident bytes add them
    local mapped = 0
    for _, name in ipairs(m.names) do
      local p = m.params[name]
      if BLOCK_BYTES[p:dtype()] then mapped = mapped + p:numel() * BLOCK_BYTES[p:dtype()] end
    end
    local hb = m.head_blocks and m.head_blocks.weight
    local hbytes = hb and hb:numel() * BLOCK_BYTES[hb:dtype()] or 0
    print(fmt("  weights resident: heap %.1f MB + mmapped blocks %.1f MB (layers) + %.1f MB (the head's %s) = %.3f "
      .. "bytes/param", heap / 2^20, mapped / 2^20, hbytes / 2^20, hb and hb:dtype() or "-",
      (heap + mapped + hbytes) / n))
  end
  local ids = {}
  for i = 1, 64 do ids[i] = 100 + (i * 7919) % 40000 end
  lfl.no_grad(function() return m:forward(lfl.tensor({ids}, "i64")) end)
  collectgarbage(); collectgarbage()
  local now2, peak2 = lfl.sys.rss()
  print(fmt("  after a forward of 64 tokens: RSS %.0f MB, peak RSS %.0f MB", now2, peak2))
elseif mode == "train" then
  local steps, cutoff = tonumber(arg[3]) or 6, tonumber(arg[4]) or 256
  local cfg = ({["lora-f32"] = {gguf_blocks = false}, ["lora-bf16"] = {bf16 = true, gguf_blocks = false},
    ["lora-gguf"] = {gguf_blocks = true}, ["lora-gguf-bf16"] = {gguf_blocks = true, bf16 = true}, ["qlora-nf4"] = {quantization_bit = 4,
    double_quantization = false}, ["qlora-nf4dq"] = {quantization_bit = 4},
    ["qlora-nf4dq-bf16"] = {quantization_bit = 4, bf16 = true}, ["qlora-int8"] = {quantization_bit = 8},
    ["qlora-int8-bf16"] = {quantization_bit = 8, bf16 = true}, ["lora-gptq"] = {model_name_or_path = gptq_dir},
    ["lora-gptq-bf16"] = {model_name_or_path = gptq_dir, bf16 = true}})[what]
  assert(cfg, "train lora-f32|lora-bf16|qlora-int8|qlora-int8-bf16|qlora-nf4|qlora-nf4dq|qlora-nf4dq-bf16|lora-gguf|lora-gguf-bf16|lora-gptq|lora-gptq-bf16 [steps] [cutoff_len]")
  local r = {model_name_or_path = path, stage = "pt", dataset = "pretrain_demo", finetuning_type = "lora",
    lora_rank = 8, lora_target = "all", cutoff_len = cutoff, packing = true, per_device_train_batch_size = 4,
    max_steps = steps, logging_steps = 1, save_steps = 0, learning_rate = 1e-4, lr_scheduler_type = "constant",
    output_dir = os.tmpname() .. "_benchq", overwrite_output_dir = true, disable_tqdm = true}
  for k, v in pairs(cfg) do r[k] = v end
  local a = lfl.args.resolve(r, {}, "bench")
  local times, cpu = {}, {}
  local last, lastc = lfl.sys.clock(), os.clock()
  lfl.trainer.run(a, {on_step = function()
    local now, nowc = lfl.sys.clock(), os.clock()
    times[#times + 1], cpu[#cpu + 1] = now - last, nowc - lastc
    last, lastc = now, nowc
  end})
  table.remove(times, 1); table.remove(cpu, 1) -- the first step warms caches
  table.sort(times); table.sort(cpu)
  local med, medc = times[math.ceil(#times / 2)], cpu[math.ceil(#cpu / 2)]
  local _, peak = lfl.sys.rss()
  print(fmt("train %-11s seq %d x 4: median step %.2f s -> %.0f tokens/s (CPU time %.2f s a step), peak RSS %.0f MB",
    what, cutoff, med, 4 * cutoff / med, medc, peak))
  lfl.fs.remove(a.output_dir)
elseif mode == "kinds" then
  local m = lfl.model.load(path) -- f32, dequantized from the file
  local names, n = {}, 0
  for _, name in ipairs(m.names) do
    local p = m.params[name]
    if p:dim() == 2 and name:match("^model%.layers%.") then names[#names + 1] = name; n = n + p:numel() end
  end
  local filekind = lfl.model.load(path, {gguf_blocks = true}).params[names[1]]:dtype()
  local kinds = {
    {"f32", function(w) return w:clone() end, function(q) return q:numel() * 4 end},
    {"bf16", function(w) return w:to("bf16") end, function(q) return q:numel() * 2 end},
    {"int8", lfl.quantize_8bit, function(q) return lfl.int8_state(q).nbytes end},
    {"nf4", function(w) return lfl.quantize_4bit(w, "nf4", false) end, function(q) return lfl.q4_state(q).nbytes end},
    {"nf4+dq", function(w) return lfl.quantize_4bit(w, "nf4", true) end, function(q) return lfl.q4_state(q).nbytes end},
    {"fp4", function(w) return lfl.quantize_4bit(w, "fp4", false) end, function(q) return lfl.q4_state(q).nbytes end},
    {"gptq4", function(w)
      local r = lfl.gptq_quantize(w, nil, 4, 128, 0)
      return lfl.gptq_pack(r.qweight, r.qzeros, r.scales, nil, 128, true)
    end, function(q) return lfl.gptq_state(q).nbytes end},
    {"q8_0", function(w) return lfl.gguf.quantize(w, "q8_0") end, function(q) return q:numel() * BLOCK_BYTES.q8_0 end},
    {"q5_0", function(w) return lfl.gguf.quantize(w, "q5_0") end, function(q) return q:numel() * BLOCK_BYTES.q5_0 end},
  }
  print(fmt("decoder linear weights of SmolLM2-135M: %d tensors, %.2fM parameters", #names, n / 1e6))
  print(fmt("%-8s %12s %10s %14s %10s", "kind", "own bytes", "B/param", "heap growth", "B/param"))
  for _, k in ipairs(kinds) do
    collectgarbage(); collectgarbage()
    local h0 = lfl.memory()
    local held, own = {}, 0
    for i, name in ipairs(names) do held[i] = k[2](m.params[name]); own = own + k[3](held[i]) end
    collectgarbage(); collectgarbage()
    local grow = lfl.memory() - h0
    print(fmt("%-8s %9.1f MB %10.4f %11.1f MB %10.4f", k[1], own / 2^20, own / n, grow / 2^20, grow / n))
    held = nil
  end
  print(fmt("%-8s %9.1f MB %10.4f %14s  (the file's blocks, kept mmapped by gguf_blocks; q4_k needs rows of 256: "
    .. "SmolLM2's are 576 wide)", filekind, n * BLOCK_BYTES[filekind] / 2^20, BLOCK_BYTES[filekind], "-"))
elseif mode == "gptq-make" then
  local gq = require("lfl.model.gptq_export")
  local m = lfl.model.load(path)
  local packed = {}
  local t0 = lfl.sys.clock()
  for _, name in ipairs(m.names) do
    local mod = name:match("^(model%.layers%.%d+%..+_proj)%.weight$")
    if mod then
      local r = lfl.gptq_quantize(m.params[name], nil, 4, 128, 0)
      packed[mod] = {qweight = r.qweight, qzeros = r.qzeros, scales = r.scales, g_idx = r.g_idx}
    end
  end
  lfl.fs.mkdir(cache .. "/bench")
  gq.save(m, gptq_dir, packed, gq.quantization_config(4, 128, 0, 0), {})
  print(fmt("wrote %s (round-to-nearest GPTQ, %.1fs)", gptq_dir, lfl.sys.clock() - t0))
else
  error("usage: bench_qlora.lua kinds | gptq-make | load f32|bf16|int8|nf4|nf4dq|fp4|gguf|gguf-bf16|gptq|gptq-deq | train lora-f32|lora-bf16|qlora-int8|qlora-int8-bf16|qlora-nf4|qlora-nf4dq|"
    .. "lora-gguf|lora-gguf-bf16|lora-gptq|lora-gptq-bf16 [steps] [cutoff]")
end
