-- API throughput under concurrent load (figures, not pass/fail): the
-- OpenAI-compatible server of stdlib/lfl/infer/serve.lua in this process with
-- SmolLM2-135M-Instruct (Q4_1 GGUF), C curl clients posting at once, each
-- asking for N greedy tokens (no early stop: ignore_eos is not an OpenAI
-- field, so the prompt asks for a long answer and the figure counts the tokens
-- actually returned). Prints completion tokens/s over the wall time of the
-- whole load, with the server decoding waiting requests as one batch
-- (max_batch 8) and one at a time (max_batch 1):
--   OMP_NUM_THREADS=2 ./build/lfl tests/bench/bench_generate_api.lua [C] [N]
-- C concurrent clients (8), N max_tokens each (32). Needs curl.
local fmt = string.format
local C = tonumber(arg and arg[1]) or 8
local N = tonumber(arg and arg[2]) or 32
local path = os.getenv("HOME") .. "/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local m = lfl.model.load(path)
local tok = lfl.tokenizer.load(path)
local tpl = lfl.template.get("chatml")
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local topics = {"the sea", "mountains", "a city at night", "bread", "trains", "winter", "a garden", "the moon"}

local function run(max_batch)
  local srv = lfl.serve.new{model = m, tokenizer = tok, template = tpl, port = 0, max_queue = 64,
    max_batch = max_batch}
  local port = srv:port()
  os.remove(dir .. "/done")
  local cmds = {}
  for i = 1, C do
    local body = fmt('{"messages":[{"role":"user","content":"Write a long story about %s."}],"max_tokens":%d,"temperature":0}',
      topics[(i - 1) % #topics + 1], N)
    cmds[i] = fmt("curl -s -H Content-Type:application/json -d '%s' http://127.0.0.1:%d/v1/chat/completions > %s/out%d &",
      body, port, dir, i)
  end
  local t0 = lfl.sys.clock()
  os.execute("( " .. table.concat(cmds, " ") .. " wait; touch " .. dir .. "/done ) &")
  srv:run(function()
    local f = io.open(dir .. "/done")
    if f then f:close() end
    return f ~= nil
  end)
  local wall = lfl.sys.clock() - t0
  srv:stop()
  local toks = 0
  for i = 1, C do
    local f = assert(io.open(fmt("%s/out%d", dir, i)))
    local r = lfl.json.decode(f:read("*a"))
    f:close()
    toks = toks + r.usage.completion_tokens
  end
  return toks / wall, toks, wall
end

print(fmt("lfl serve, SmolLM2-135M Q4_1, %d concurrent clients, max_tokens %d, greedy", C, N))
for _, mb in ipairs({8, 1}) do
  local rate, toks, wall = run(mb)
  print(fmt("max_batch %d: %7.1f completion tok/s (%d tokens in %.1f s)", mb, rate, toks, wall))
end
os.execute("rm -rf " .. dir)
