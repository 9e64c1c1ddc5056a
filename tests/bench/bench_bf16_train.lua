-- bench_bf16_train: one LoRA (r8, all linears) training step of SmolLM2-135M on
-- a random [1, T] row, with the base loaded in f32 or bf16: load time, peak RSS,
-- and per step the wall time and the process CPU time (os.clock, less disturbed
-- than wall time when other jobs share the cores). Figures only.
--
--   ./build/lfl tests/bench/bench_bf16_train.lua [f32|bf16] [T] [steps]
local fmt, clock = string.format, lfl.sys.clock
local dt, T, steps = arg[1] or "f32", tonumber(arg[2]) or 64, tonumber(arg[3]) or 3
local path = (os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")) .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local t0 = clock()
local m = lfl.model.load(path, {dtype = dt})
local load = clock() - t0
lfl.manual_seed(0)
lfl.peft.add_lora(m, {rank = 8})
local _, params = lfl.peft.lora_parameters(m)
local opt = lfl.optim.AdamW({{params = params, lr = 1e-4}})
local rows = {}
for i = 1, T do rows[i] = (i * 7919) % 49000 + 1 end
local ids = lfl.tensor({rows}, "i64")
local wall, cpu, loss = {}, {}, nil
for s = 1, steps do
  local w0, c0 = clock(), os.clock()
  local l = m:loss(ids, ids, {gradient_checkpointing = true})
  loss = l:item()
  l:backward()
  opt:step()
  opt:zero_grad()
  wall[s], cpu[s] = clock() - w0, os.clock() - c0
end
table.sort(wall); table.sort(cpu)
local mid = math.ceil(steps / 2)
local _, rss = lfl.sys.rss()
print(fmt("%s base: load %.1f s, step (T=%d) median wall %.2f s, cpu %.2f s -> %.0f tokens/s, %.0f tokens/cpu-s; "
  .. "loss %.4f; peak RSS %.0f MB", dt, load, T, wall[mid], cpu[mid], T / wall[mid], T / cpu[mid], loss, rss))
