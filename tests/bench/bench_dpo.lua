-- bench_dpo: one LoRA (r8, all linears) DPO step of SmolLM2-135M on n random
-- pairs (prompt P tokens, answers A tokens each, packed in one row): the
-- policy's forward + backward and the reference's forward with the adapter
-- off, against an SFT step on the same row. Per step the median wall time and
-- process CPU time (os.clock, less disturbed when other jobs share the cores),
-- tokens/s, and the peak RSS. Figures only.
--
--   ./build/lfl tests/bench/bench_dpo.lua [n] [P] [A] [steps]
local fmt, clock = string.format, lfl.sys.clock
local n, P, A, steps = tonumber(arg[1]) or 4, tonumber(arg[2]) or 48, tonumber(arg[3]) or 32, tonumber(arg[4]) or 3
local path = (os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")) .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local pref, pw = require("lfl.train.pref"), require("lfl.data.pairwise")
local m = lfl.model.load(path)
lfl.manual_seed(0)
lfl.peft.add_lora(m, {rank = 8})
local _, params = lfl.peft.lora_parameters(m)
local opt = lfl.optim.AdamW({{params = params, lr = 1e-4}})
local rows, k = {}, 0
local function tok() k = k + 1; return (k * 7919) % 49000 + 1 end
for i = 1, n do
  local p, c, r, lp, lc, lr = {}, {}, {}, {}, {}, {}
  for j = 1, P do p[j] = tok() end
  for j = 1, P do c[j], r[j], lc[j], lr[j] = p[j], p[j], -100, -100 end
  for j = 1, A do c[P + j] = tok(); lc[P + j] = c[P + j]; r[P + j] = tok(); lr[P + j] = r[P + j] end
  rows[i] = {chosen_input_ids = c, chosen_labels = lc, rejected_input_ids = r, rejected_labels = lr}
end
local batch = pw.collate_pairwise_packed(rows)
local N = batch.ntokens
local state = {model = m, reference = {kind = "adapter_off"}, gradient_checkpointing = true,
               args = {pref_loss = "sigmoid", pref_beta = 0.1, pref_ftx = 0, dpo_label_smoothing = 0}}
local function run(step)
  local wall, cpu = {}, {}
  for s = 1, steps do
    local w0, c0 = clock(), os.clock()
    step()
    opt:step()
    opt:zero_grad()
    wall[s], cpu[s] = clock() - w0, os.clock() - c0
  end
  table.sort(wall); table.sort(cpu)
  local mid = math.ceil(steps / 2)
  return wall[mid], cpu[mid]
end
local dw, dc = run(function() local l = pref.step(m, batch, state, "sigmoid"); l:backward() end)
local sw, sc = run(function()
  local l = m:loss(batch.input_ids, batch.labels, {shifted = true, position_ids = batch.position_ids,
    segments = batch.segments, gradient_checkpointing = true})
  l:backward()
end)
local _, rss = lfl.sys.rss()
print(fmt("dpo step: %d pairs, %d tokens in one row: median wall %.2f s, cpu %.2f s -> %.0f tokens/s (%.0f tokens/cpu-s)",
  n, N, dw, dc, N / dw, N / dc))
print(fmt("sft step on the same row: wall %.2f s, cpu %.2f s; dpo / sft = %.2f (cpu %.2f); peak RSS %.0f MB",
  sw, sc, dw / sw, dc / sc, rss))
