-- Tokenizer throughput (figures, not pass/fail): MB/s encoding a generated
-- ~10 MB multilingual text (prose, code, CJK, Cyrillic, digits, emoji) split
-- into documents of about 2 KB, one document at a time on one thread and as
-- one encode_batch over all threads. The text is written to a temp file that
-- tests/bench/bench_tokenizer_ref.py reads to time Python `tokenizers`:
--   ./build/lfl tests/bench/bench_tokenizer.lua [MB] [path]
--   $(bash tests/ref/venv.sh) tests/bench/bench_tokenizer_ref.py [path]
local fmt = string.format
local MB = tonumber(arg and arg[1]) or 10
local path = arg and arg[2] or "/tmp/lfl_bench_tokenizer.txt"
local T = lfl.home .. "/../shared/data/tokenizers/"

local words = {
  "the", "model", "training", "data", "learning", "rate", "is", "a", "of", "and", "to", "in", "we",
  "fine-tuning", "language", "tokenizer", "gradient", "batch", "loss", "with", "for", "that", "on",
  "Transformer", "attention", "layer", "token", "sequence", "length", "GPU", "memory", "optimizer",
  "données", "modèle", "apprentissage", "größe", "Schlüssel", "añadir", "canción",
  "обучение", "модель", "данные", "текст", "Привет", "мир",
  "学习", "模型", "数据", "训练", "语言", "你好", "世界", "トークン", "学習", "データ", "한국어", "모델",
  "2024", "3.14", "1,000", "42", "x=1", "f(x)", "🦙", "🚀", "😀", "👍🏽",
}
local code = {
  "def forward(self, x):\n    h = self.norm(x)\n    return self.proj(h) + x\n",
  "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
  "local t = {lr = 3e-4, epochs = 3}  -- config\n",
  "    if loss is None:\n        raise ValueError(\"no loss\")\n",
}

-- deterministic LCG so every run sees the same text
local seed = 42
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local docs, total = {}, 0
while total < MB * 1e6 do
  local parts, size = {}, 0
  while size < 2000 do
    local piece
    if rnd(10) == 0 then
      piece = code[rnd(#code) + 1]
    else
      local sent = {}
      for i = 1, 5 + rnd(15) do sent[i] = words[rnd(#words) + 1] end
      piece = table.concat(sent, " ") .. (rnd(4) == 0 and ".\n\n" or ". ")
    end
    parts[#parts + 1] = piece
    size = size + #piece
  end
  local d = table.concat(parts)
  docs[#docs + 1] = d
  total = total + #d
end
local f = assert(io.open(path, "wb"))
f:write(table.concat(docs, "\n\x1e\n")) -- record separator between documents
f:close()
print(fmt("text: %.2f MB in %d documents (written to %s); %d threads for batch", total / 1e6, #docs, path,
          lfl.sys.threads()))

local clock = lfl.sys.clock
local nthreads = lfl.sys.threads()
for _, name in ipairs{"llama3", "qwen3", "deepseek_v3", "gemma3", "llama2"} do
  local tok = lfl.tokenizer.load(T .. name)
  local opts = {add_special_tokens = false, offsets = false}
  tok:encode_batch(docs, opts) -- warm-up (first-touch, cache)
  lfl.sys.threads(1)
  local t0, ntok = clock(), 0
  for i = 1, #docs do ntok = ntok + #tok:encode(docs[i], opts) end
  local single = clock() - t0
  local t1 = clock()
  local _ = tok:encode_batch(docs, opts)
  local batch1 = clock() - t1
  lfl.sys.threads(nthreads)
  local t2 = clock()
  local out = tok:encode_batch(docs, opts)
  local batch = clock() - t2
  local t3 = clock()
  for i = 1, #docs do tok:encode(docs[i], {add_special_tokens = false}) end
  local with_off = clock() - t3
  print(fmt("%-12s %9d tokens  single %6.2f MB/s  (with offsets %6.2f)  batch x1 %6.2f MB/s  batch x%d %6.2f MB/s",
            name, ntok, total / 1e6 / single, total / 1e6 / with_off, total / 1e6 / batch1, nthreads,
            total / 1e6 / batch))
  out = nil
  collectgarbage()
end
