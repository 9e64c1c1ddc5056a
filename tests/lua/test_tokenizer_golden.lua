-- Every tokenizer.json in shared/data/tokenizers and every GGUF vocabulary in
-- shared/data/tokenizer-vectors against goldens written by the Hugging Face
-- `tokenizers` package (tests/ref/make_tokenizer_goldens.py) on the corpus in
-- tests/ref/tokenizer_corpus.py: ids with and without special tokens, with
-- special tokens left unparsed, byte offsets, and decoding with and without
-- skipping special tokens. The synth-* tokenizers are small ones trained by
-- that script to reach components the real files do not use.
local t = lfl.test
local tg = dofile(lfl.home .. "/tests/lua/lib/tokgolden.lua")
local G = tg.DIR
local S = lfl.home .. "/../shared/data/"

local function check(tok_path, golden) tg.check(lfl.tokenizer.load(tok_path), golden) end

local cases = {}
for _, name in ipairs{"llama2", "llama3", "qwen3", "deepseek_v3", "gemma3"} do
  cases["json_" .. name] = function() check(S .. "tokenizers/" .. name, name) end
end
for _, name in ipairs{"synth-metaspace", "synth-bytelevel", "synth-suffix", "synth-splits"} do
  cases[name] = function() check(G .. name .. ".tokenizer.json", name) end
end
for _, name in ipairs{"llama-spm", "phi-3", "gpt-2", "mpt", "falcon", "deepseek-llm", "deepseek-coder",
                      "starcoder", "refact", "baichuan", "gpt-neox"} do
  cases["gguf_" .. name] = function()
    check(S .. "tokenizer-vectors/ggml-vocab-" .. name .. ".gguf", "gguf-" .. name)
  end
end
t.suite("tokenizer_golden", cases)
t.run()
