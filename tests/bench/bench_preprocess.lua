-- SFT preprocessing throughput (figures, not pass/fail): examples/s turning
-- alpaca records into input_ids/labels with the llama3 template and the real
-- llama3 tokenizer, one thread: aligning (lfl.data.load), template + tokenize +
-- mask (sft.prepare), and reading the same rows back from the dataset cache.
-- The records (recipes/data/alpaca_demo.json repeated with a counter to N,
-- default 10000) are written to a temp folder that
-- tests/bench/bench_preprocess_ref.py reads to time LlamaFactory's
-- SupervisedDatasetProcessor on the same data:
--   ./build/lfl tests/bench/bench_preprocess.lua [N] [dir]
--   $(bash tests/ref/lf_venv.sh) tests/bench/bench_preprocess_ref.py [dir]
local fmt = string.format
local N = tonumber(arg and arg[1]) or 10000
local dir = arg and arg[2] or "/tmp/lfl_bench_preprocess"
local clock = lfl.sys.clock

os.execute(fmt("mkdir -p '%s/cache'", dir))
local f = assert(io.open(lfl.home .. "/recipes/data/alpaca_demo.json", "rb"))
local demo = lfl.json.decode(f:read("*a"))
f:close()
local recs = {}
for i = 1, N do
  local r = demo[(i - 1) % #demo + 1]
  recs[i] = {instruction = r.instruction .. " (#" .. i .. ")", input = r.input or "", output = r.output}
end
f = assert(io.open(dir .. "/alpaca_bench.json", "wb"))
f:write(lfl.json.encode(recs))
f:close()
f = assert(io.open(dir .. "/dataset_info.json", "wb"))
f:write('{"alpaca_bench": {"file_name": "alpaca_bench.json"}}')
f:close()

local tok = lfl.tokenizer.load(lfl.home .. "/../shared/data/tokenizers/llama3")
local sft = lfl.recipes.load("approaches", "sft")
local a = {stage = "sft", template = "llama3", dataset = "alpaca_bench", dataset_dir = dir, cutoff_len = 2048,
           preprocessing_batch_size = 1000, enable_thinking = true}
local ctx = {tokenizer = tok, template = lfl.template.get("llama3"), args = a}

local t0 = clock()
local data = lfl.data.load(a)
local t_load = clock() - t0
t0 = clock()
local rows = sft.prepare(data.train, ctx)
local t_prep = clock() - t0
local ntok = 0
for _, r in ipairs(rows) do ntok = ntok + #r.input_ids end

-- the dataset cache: build once, then time the read
local real_getenv = os.getenv
os.getenv = function(k) if k == "LFL_CACHE" then return dir .. "/cache" end return real_getenv(k) end
local dc = require("lfl.data.cache")
dc.prepare(a, ctx, sft, {tokenizer_path = lfl.home .. "/../shared/data/tokenizers/llama3"})
t0 = clock()
local cached = dc.prepare(a, ctx, sft, {tokenizer_path = lfl.home .. "/../shared/data/tokenizers/llama3"})
local t_cache = clock() - t0
os.getenv = real_getenv
assert(cached.cached and #cached.train == #rows)

print(fmt("lfl SFT preprocessing, %d alpaca examples, llama3 template + tokenizer, 1 thread", N))
print(fmt("  load + align        %8.3f s  %10.0f examples/s", t_load, N / t_load))
print(fmt("  template+tokenize   %8.3f s  %10.0f examples/s  (%.0f tokens/s, %.1f tokens/example)", t_prep,
  N / t_prep, ntok / t_prep, ntok / N))
print(fmt("  total               %8.3f s  %10.0f examples/s", t_load + t_prep, N / (t_load + t_prep)))
print(fmt("  from dataset cache  %8.3f s  %10.0f examples/s", t_cache, N / t_cache))
print(fmt("data left in %s for bench_preprocess_ref.py", dir))
