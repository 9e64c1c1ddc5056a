-- LoRA SFT steps and decoding of a Llama-shaped model with random weights, on
-- a device: tokens/s, peak device memory (the caching allocator's), and MFU
-- against a measured bf16 GEMM peak. Part of tests/gpu/run.sh; figures only.
--
--   lfl tests/gpu/bench_lora.lua SIZE [DEVICE] [SEQ] [BATCH] [STEPS]
-- SIZE: tiny (a test of this script, runs anywhere), 1b (Llama-3.2-1B's
-- shapes), 8b (Llama-3.1-8B's). DEVICE: cuda (default) or cpu. Prints one
-- "RESULT key=value ..." line for run.sh's table.
local fmt, clock = string.format, lfl.sys.clock
local size, device = arg[1] or "tiny", arg[2] or "cuda"
local seq, batch, steps = tonumber(arg[3]) or 1024, tonumber(arg[4]) or 4, tonumber(arg[5]) or 6
local presets = {
  tiny = {hidden = 64, inter = 160, layers = 2, heads = 4, kv = 2, vocab = 512},
  ["1b"] = {hidden = 2048, inter = 8192, layers = 16, heads = 32, kv = 8, vocab = 128256},
  ["8b"] = {hidden = 4096, inter = 14336, layers = 32, heads = 32, kv = 8, vocab = 128256},
}
local P = assert(presets[size], "size: tiny, 1b or 8b")
if device ~= "cpu" and select(2, lfl.sys.cuda()) < 1 then error("bench_lora: no CUDA device: " .. lfl.sys.cuda(), 0) end
if size == "tiny" then seq, batch, steps = math.min(seq, 32), math.min(batch, 2), math.min(steps, 3) end
local H, I, L, NH, KV, V = P.hidden, P.inter, P.layers, P.heads, P.kv, P.vocab
local D = math.floor(H / NH)
local cfg = {architectures = {"LlamaForCausalLM"}, model_type = "llama", hidden_size = H, intermediate_size = I,
  num_hidden_layers = L, num_attention_heads = NH, num_key_value_heads = KV, head_dim = D, vocab_size = V,
  rms_norm_eps = 1e-5, rope_theta = 500000.0, max_position_embeddings = 8192, tie_word_embeddings = false,
  hidden_act = "silu"}
lfl.manual_seed(0)
local t0 = clock()
-- bf16 weights, made one tensor at a time (randn in f32 then rounded) so the
-- host never holds more than the model in bf16 plus one f32 matrix
local params = {}
local function w(name, ...)
  local t = lfl.randn(...) * 0.02
  params[name] = t:to("bf16")
end
w("model.embed_tokens.weight", V, H)
w("lm_head.weight", V, H)
params["model.norm.weight"] = lfl.ones(H):to("bf16")
for l = 0, L - 1 do
  local p = "model.layers." .. l .. "."
  params[p .. "input_layernorm.weight"] = lfl.ones(H):to("bf16")
  params[p .. "post_attention_layernorm.weight"] = lfl.ones(H):to("bf16")
  w(p .. "self_attn.q_proj.weight", NH * D, H)
  w(p .. "self_attn.k_proj.weight", KV * D, H)
  w(p .. "self_attn.v_proj.weight", KV * D, H)
  w(p .. "self_attn.o_proj.weight", H, NH * D)
  w(p .. "mlp.gate_proj.weight", I, H)
  w(p .. "mlp.up_proj.weight", I, H)
  w(p .. "mlp.down_proj.weight", H, I)
end
local m = lfl.model.from_params(cfg, params, {dtype = "bf16"}, "random " .. size)
params = nil
collectgarbage()
local nparams = m:num_parameters()
lfl.peft.add_lora(m, {rank = 16})
if device ~= "cpu" then m:to(device) end
local init_s = clock() - t0
local names, trainable = lfl.peft.lora_parameters(m)
local opt = lfl.optim.AdamW({{params = trainable, lr = 1e-4}})
lfl.sys.matmul_precision("medium") -- bf16 products, f32 sums (LlamaFactory's bf16 autocast)
local rows = {}
for b = 1, batch do
  local r = {}
  for i = 1, seq do r[i] = (i * 7919 + b * 104729) % (V - 1) + 1 end
  rows[b] = r
end
local ids = lfl.tensor(rows, "i64")
if device ~= "cpu" then ids = ids:to(device) end
local dev_idx = tonumber(device:match("cuda:(%d+)") or (device == "cuda" and 0 or -1))
local function sync() if dev_idx >= 0 then lfl.sys.device_memory(dev_idx) end end -- a device call: work done
if dev_idx >= 0 then lfl.sys.device_memory(dev_idx, "reset") end
local times, loss = {}, nil
for s = 1, steps do
  local s0 = clock()
  local l = m:loss(ids, ids, {gradient_checkpointing = true})
  loss = l:item() -- a copy to the host: the step's kernels are done
  l:backward()
  opt:step()
  opt:zero_grad()
  sync()
  times[s] = clock() - s0
end
local warm = {}
for s = 2, steps do warm[#warm + 1] = times[s] end
if #warm == 0 then warm = times end
table.sort(warm)
local step_s = warm[math.ceil(#warm / 2)]
local tps = batch * seq / step_s
-- model FLOPs of a LoRA step: forward 2N, backward of the activations 2N (the
-- frozen weights' own gradients are skipped), recompute 2N (checkpointing),
-- plus attention 4 * seq * H * L per token forward, twice that backward
local ntok = batch * seq
local flops = ntok * (6 * nparams + 12 * seq * H * L * 0.5)
local peak_mb = 0
if dev_idx >= 0 then peak_mb = lfl.sys.device_memory(dev_idx).peak / 1048576 end
-- the peak of the GEMM lfl's training runs on this device (f32 activations
-- times a bf16 weight, bf16 products with f32 sums): one 8192^3 product (256^3
-- for tiny/cpu), best of 3
local n = (size == "tiny" or device == "cpu") and 256 or 8192
local a = lfl.randn(n, n)
local bm = lfl.randn(n, n):to("bf16")
if device ~= "cpu" then a, bm = a:to(device), bm:to(device) end
local best = math.huge
for _ = 1, 3 do
  local g0 = clock()
  local c = lfl.matmul(a, bm)
  c:_at(1)
  best = math.min(best, clock() - g0)
end
local gemm_tflops = 2 * n * n * n / best / 1e12
-- decoding: greedy, batch 1 and 32, 32 new tokens after a 64-token prompt
local g = require("lfl.infer.generate")
local function decode(bs)
  local prompts = {}
  for b = 1, bs do
    local p = {}
    for i = 1, 64 do p[i] = (i * 31 + b * 7) % (V - 1) + 1 end
    prompts[b] = p
  end
  local d0 = clock()
  if bs == 1 then g.generate(m, prompts[1], {max_new_tokens = 32}) else g.generate_batch(m, prompts, {max_new_tokens = 32}) end
  return bs * 32 / (clock() - d0)
end
local ok1, dec1 = pcall(decode, 1)
local ok32, dec32 = pcall(decode, size == "tiny" and 4 or 32)
print(fmt("RESULT size=%s device=%s params=%.2fB seq=%d batch=%d init_s=%.1f step_s=%.3f tokens_per_s=%.0f "
  .. "peak_mib=%.0f loss=%.4f gemm_tflops=%.1f mfu=%.3f decode_b1=%s decode_b32=%s", size, device, nparams / 1e9, seq,
  batch, init_s, step_s, tps, peak_mb, loss, gemm_tflops, flops / step_s / (gemm_tflops * 1e12),
  ok1 and fmt("%.1f", dec1) or "error", ok32 and fmt("%.1f", dec32) or "error"))
if not ok1 then print("decode b1: " .. tostring(dec1)) end
if not ok32 then print("decode b32: " .. tostring(dec32)) end
