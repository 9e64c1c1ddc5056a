-- Tokens/s, peak RSS and FLOPs utilisation of LoRA training of
-- SmolLM2-135M-Instruct at cutoff_len 512, batch 4, rank 8 (rows of exactly 512
-- tokens from the pretraining demo text), through lfl.trainer. Figures only.
-- Run: build/lfl tests/bench/bench_lora_sft.lua [steps] [peak GFLOP/s] [bf16|f32] [cutoff_len] [selective|full|nogc]
-- ("bf16" as the third argument trains with bf16 = true: the frozen base in bf16
-- and bf16 GEMM products; a shorter cutoff_len than 512 gives quicker, rougher
-- figures on a busy machine; the last argument is the gradient checkpointing:
-- the trainer's "selective" policy (its default here), "full" recompute, or
-- none). Two utilisation figures: the usual model FLOPs (6 N per token) against
-- the 2-thread SGEMM peak, and the FLOPs this run actually executes (LoRA skips
-- the frozen weights' gradients but full checkpointing recomputes the forward)
-- against the peak of the GEMM it runs (bf16 or f32), both peaks from
-- build/bench_gemm.
local steps = tonumber(arg[1]) or 6
local peak = tonumber(arg[2]) or 185 -- measured 2-thread SGEMM peak of this CPU (build/bench_gemm)
local peak_bf16 = 364 -- measured 2-thread bf16 GEMM peak (build/bench_gemm, precision medium)
local bf16 = arg[3] == "bf16"
local cutoff = tonumber(arg[4]) or 512
local gc = arg[5] or "selective"
assert(gc == "selective" or gc == "full" or gc == "nogc", "checkpointing: selective, full or nogc")
local nogc = gc == "nogc" -- disable_gradient_checkpointing: no recompute, more activation memory
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local a = lfl.args.resolve({
  model_name_or_path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf", stage = "pt", dataset = "pretrain_demo",
  finetuning_type = "lora", lora_rank = 8, lora_target = "all", cutoff_len = cutoff, packing = true,
  per_device_train_batch_size = 4, max_steps = steps, logging_steps = 1, save_steps = 0, learning_rate = 1e-4,
  lr_scheduler_type = "constant", output_dir = os.tmpname() .. "_bench", overwrite_output_dir = true,
  disable_tqdm = true, overwrite_cache = true, bf16 = bf16, disable_gradient_checkpointing = nogc,
  gradient_checkpointing_policy = nogc and "auto" or gc,
  gguf_blocks = false, -- the f32 / bf16 base LlamaFactory trains (bench_qlora.lua lora-gguf keeps the Q4_1 blocks)
}, {}, "bench")
-- wall time per step, and the process's CPU time (all threads): on a VM that
-- other sessions load, CPU time per token is the steadier figure
local times, cpus = {}, {}
local last, last_cpu = lfl.sys.clock(), os.clock()
local res = lfl.trainer.run(a, {on_step = function(st)
  local now, cpu = lfl.sys.clock(), os.clock()
  times[#times + 1], cpus[#cpus + 1] = now - last, cpu - last_cpu
  last, last_cpu = now, cpu
end})
table.remove(times, 1) -- the first step warms caches
table.remove(cpus, 1)
table.sort(times)
table.sort(cpus)
local med = times[math.ceil(#times / 2)]
local med_cpu = cpus[math.ceil(#cpus / 2)]
local tokens_per_step = 4 * cutoff
local n = res.model:num_parameters()
local tps = tokens_per_step / med
local _, rss = lfl.sys.rss()
print(string.format("LoRA r8 SFT, SmolLM2-135M (%s base, %s), seq %d x batch 4, %s", bf16 and "bf16" or "f32",
  nogc and "no gradient checkpointing" or gc .. " gradient checkpointing", cutoff, lfl.sys.blas()))
print(string.format("  median step %.2f s -> %.0f tokens/s, peak RSS %.0f MB", med, tps, rss))
print(string.format("  median step CPU time %.2f s (all threads) -> %.0f tokens per CPU-second", med_cpu,
  tokens_per_step / med_cpu))
if bf16 then print("  bf16 GEMM: " .. lfl.sys.bf16_gemm()) end
print(string.format("  MFU (6 N FLOPs/token, N = %.1fM) %.1f GFLOP/s = %.0f%% of the SGEMM peak %.0f GFLOP/s", n / 1e6,
  tps * 6 * n / 1e9, 100 * tps * 6 * n / 1e9 / peak, peak))
-- executed per token: forward and dx of the frozen linears (4 N_lin), the tied
-- head's logits and dhidden (4 V H), attention (causal: 2 T H per layer forward,
-- 2.5x that backward), plus the forward again under full checkpointing (the
-- selective policy recomputes no GEMM and no attention); LoRA's
-- rank-8 products (~1% more) are left out
local m, arch, nlin = res.model, res.model.arch, 0
for _, name in ipairs(m.names) do
  local p = m.params[name]
  if p:dim() == 2 and not name:find("embed") and not name:find("lm_head") then nlin = nlin + p:numel() end
end
local attn = arch.layers * 2 * cutoff * arch.heads * arch.head_dim
local exec = 4 * nlin + 4 * arch.vocab * arch.hidden + 3.5 * attn + (gc == "full" and 2 * nlin + attn or 0)
local gpeak = (bf16 and select(2, lfl.sys.matmul_precision())) and peak_bf16 or peak
print(string.format("  executed %.0f MFLOP/token: %.1f GFLOP/s = %.0f%% of the %s GEMM peak %.0f GFLOP/s", exec / 1e6,
  tps * exec / 1e9, 100 * tps * exec / 1e9 / gpeak, gpeak == peak_bf16 and "bf16" or "f32", gpeak))
os.execute("rm -rf " .. a.output_dir)
