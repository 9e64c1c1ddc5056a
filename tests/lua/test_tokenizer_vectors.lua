-- llama.cpp's tokenizer vectors (shared/data/tokenizer-vectors, produced by HF
-- AutoTokenizer.encode(text, add_special_tokens=False)): every vocabulary with
-- a .gguf present, plus the vectors whose vocabulary ships as a tokenizer.json
-- in shared/data/tokenizers (llama-bpe = Llama 3, qwen2 / deepseek-r1-qwen =
-- the Qwen2 tokenizer that Qwen3 keeps). Also decode(encode(x)) == x on them,
-- except where the ids hold an added token: deepseek's vocabularies add "ü"
-- etc. as plain added tokens, which HF's ByteLevel decoder reads as the bytes
-- they map (so "Führer" decodes to "F\u{FFFD}hrer" in HF too).
local t = lfl.test
local V = lfl.home .. "/../shared/data/tokenizer-vectors/"
local T = lfl.home .. "/../shared/data/tokenizers/"
local fmt = string.format

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local a, b = s:find(sep, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    i = b + 1
  end
  return out
end

-- name -> tokenizer source; `nfc`: the tokenizer normalizes (decode gives the NFC text)
local vocabs = {
  ["llama-spm"] = V .. "ggml-vocab-llama-spm.gguf", ["phi-3"] = V .. "ggml-vocab-phi-3.gguf",
  ["gpt-2"] = V .. "ggml-vocab-gpt-2.gguf", mpt = V .. "ggml-vocab-mpt.gguf",
  falcon = V .. "ggml-vocab-falcon.gguf", ["deepseek-llm"] = V .. "ggml-vocab-deepseek-llm.gguf",
  ["deepseek-coder"] = V .. "ggml-vocab-deepseek-coder.gguf", starcoder = V .. "ggml-vocab-starcoder.gguf",
  refact = V .. "ggml-vocab-refact.gguf", ["llama-bpe"] = T .. "llama3", qwen2 = T .. "qwen3",
  ["deepseek-r1-qwen"] = T .. "qwen3",
}

local cache = {}
local function load(path)
  cache[path] = cache[path] or lfl.tokenizer.load(path)
  return cache[path]
end

local cases = {}
for name, path in pairs(vocabs) do
  cases[name] = function()
    local tok = load(path)
    local inp = split(read(V .. "ggml-vocab-" .. name .. ".gguf.inp"), "\n__ggml_vocab_test__\n")
    local out = split(read(V .. "ggml-vocab-" .. name .. ".gguf.out") .. "\n", "\n")
    t.assert_eq(#inp, 46, "test strings in the .inp file")
    local added = {}
    for _, a in ipairs(tok:added_tokens()) do added[a.id] = true end
    local bad = {}
    for i, s in ipairs(inp) do
      local ids = tok:encode(s, {add_special_tokens = false, parse_special = false, offsets = false})
      local got = #ids > 0 and (" " .. table.concat(ids, " ")) or ""
      if got ~= out[i] then bad[#bad + 1] = fmt("case %d %q:\n    got %s\n    exp %s", i, s, got, out[i]) end
      local plain = true
      for _, id in ipairs(ids) do plain = plain and not added[id] end
      local back = tok:decode(ids)
      if plain and back ~= s then bad[#bad + 1] = fmt("case %d %q: decodes to %q", i, s, back) end
    end
    if #bad > 0 then error(fmt("%s: %d failures\n  %s", name, #bad, table.concat(bad, "\n  ", 1, math.min(#bad, 5))), 0) end
  end
end

t.suite("tokenizer_vectors", cases)
t.run()
