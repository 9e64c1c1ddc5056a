-- Generation throughput (figures, not pass/fail): SmolLM2-135M-Instruct from
-- its Q4_1 GGUF, prefill tokens/s and decode tokens/s of
-- lfl.generate.generate_batch at batch 1 and 8, greedy, no stopping (every row
-- makes N tokens), median of R runs. The prompts are synthetic token ids, the
-- same as tests/bench/bench_generate_ref.py feeds llama.cpp and transformers:
--   OMP_NUM_THREADS=2 ./build/lfl tests/bench/bench_generate.lua [P] [N] [R]
-- P prompt tokens per row (128), N new tokens per row (32), R runs (3); cpu-
-- figures are tokens per CPU-second of the process (all threads); a 5th
-- argument names another GGUF (tests/bench/bench_decode_gguf.sh's Q4_K file).
local fmt = string.format
local P = tonumber(arg and arg[1]) or 128
local N = tonumber(arg and arg[2]) or 32
local R = tonumber(arg and arg[3]) or 3
local DT = arg and arg[4] or "f32" -- "bf16": weights kept in bf16 (half the bytes read per decoded token);
-- "blocks" / "blocks-bf16": the layers' linears kept in the file's Q4_1 blocks (gguf_blocks; decode through the
-- int8 dot products), the embedding/head in f32 / bf16
local BLOCKS = DT:match("^blocks") ~= nil
if BLOCKS then DT = DT:match("bf16") and "bf16" or "f32" end
local path = arg and arg[5] or os.getenv("HOME") .. "/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local gen = lfl.generate

-- row b's prompt: a fixed pseudo-random walk over ordinary vocabulary ids
local function prompt(b)
  local ids = {}
  for i = 1, P do ids[i] = 100 + ((i - 1) * 7919 + (b - 1) * 104729) % 40000 end
  return ids
end

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

local m = lfl.model.load(path, {dtype = DT, gguf_blocks = BLOCKS or nil})
print(fmt("lfl generate_batch, %s (weights as loaded: layers %s, embedding %s), threads %s, P=%d N=%d, median of %d",
  path:match("[^/]*$"), m.params["model.layers.0.mlp.up_proj.weight"]:dtype(), m.params["model.embed_tokens.weight"]:dtype(), tostring(lfl.sys.threads and lfl.sys.threads() or "?"), P, N, R))
gen.generate_batch(m, {prompt(1)}, {max_new_tokens = 2}) -- warm-up
for _, B in ipairs({1, 8}) do
  local prompts = {}
  for b = 1, B do prompts[b] = prompt(b) end
  local pre, dec, cpre, cdec = {}, {}, {}, {}
  for r = 1, R do
    local tm = {}
    local res = gen.generate_batch(m, prompts, {max_new_tokens = N, timings = tm})
    for b = 1, B do assert(#res[b][1] == N, "every row makes N tokens") end
    pre[r] = tm.prefill_tokens / tm.prefill_s
    dec[r] = tm.decode_tokens / tm.decode_s
    cpre[r] = tm.prefill_tokens / tm.prefill_cpu_s
    cdec[r] = tm.decode_tokens / tm.decode_cpu_s
  end
  local ps, ds = {}, {}
  for r = 1, R do ps[r], ds[r] = fmt("%.0f", pre[r]), fmt("%.1f", dec[r]) end
  print(fmt("batch %d: prefill %8.1f tok/s  decode %7.1f tok/s  cpu-prefill %8.1f cpu-decode %7.1f   " ..
    "(runs: prefill %s; decode %s)", B, median(pre), median(dec), median(cpre), median(cdec),
    table.concat(ps, " "), table.concat(ds, " ")))
end
