-- Every tokenizer.json in shared/data/tokenizers and every GGUF vocabulary in
-- shared/data/tokenizer-vectors against goldens written by the Hugging Face
-- `tokenizers` package (tests/ref/make_tokenizer_goldens.py) on the corpus in
-- tests/ref/tokenizer_corpus.py: ids with and without special tokens, with
-- special tokens left unparsed, byte offsets, and decoding with and without
-- skipping special tokens. The synth-* tokenizers are small ones trained by
-- that script to reach components the real files do not use.
local t = lfl.test
local json = dofile(lfl.home .. "/tests/lua/lib/json.lua")
local G = lfl.home .. "/tests/golden/tokenizers/"
local S = lfl.home .. "/../shared/data/"
local fmt, concat = string.format, table.concat

local texts = {}
for i, c in ipairs(json.read(G .. "corpus.json").texts) do
  texts[i] = c.text or c.hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
end

local function show(s)
  s = fmt("%q", s):gsub("\\\n", "\\n")
  return #s > 60 and s:sub(1, 57) .. "..." or s
end

-- nil when equal, else a description of the first difference
local function diff(got, exp)
  for i = 1, math.max(#got, #exp) do
    if got[i] ~= exp[i] then
      return fmt("first difference at %d: got %s, expected %s (lengths %d, %d)", i, tostring(got[i]),
                 tostring(exp[i]), #got, #exp)
    end
  end
end

local function check(tok_path, golden)
  local tok = lfl.tokenizer.load(tok_path)
  local g = json.read(G .. golden .. ".json")
  t.assert_eq(#g.cases, #texts, "golden case count")
  local bad = {}
  local function note(i, what, d) bad[#bad + 1] = fmt("text %d %s: %s: %s", i, show(texts[i]), what, d) end
  for i, c in ipairs(g.cases) do
    local s = texts[i]
    local ids, offs = tok:encode(s)
    local d = diff(ids, c.ids)
    if d then note(i, "ids", d) end
    local plain = tok:encode(s, {add_special_tokens = false, offsets = false})
    d = diff(plain, c.ids_no_special or c.ids)
    if d then note(i, "ids without special tokens", d) end
    local split = tok:encode(s, {add_special_tokens = false, parse_special = false, offsets = false})
    d = diff(split, c.ids_split_special or c.ids_no_special or c.ids)
    if d then note(i, "ids with specials unparsed", d) end
    if c.offsets then
      local flat = {}
      for k, o in ipairs(offs) do flat[2 * k - 1], flat[2 * k] = o[1], o[2] end
      d = diff(flat, c.offsets)
      if d then note(i, "offsets", d) end
    end
    local dec = tok:decode(c.ids)
    if dec ~= c.decoded then note(i, "decode", fmt("got %s, expected %s", show(dec), show(c.decoded))) end
    local skip = tok:decode(c.ids, {skip_special_tokens = true})
    local want = c.decoded_skip or c.decoded
    if skip ~= want then note(i, "decode skipping specials", fmt("got %s, expected %s", show(skip), show(want))) end
  end
  if #bad > 0 then
    error(fmt("%s: %d mismatches\n  %s", golden, #bad, concat(bad, "\n  ", 1, math.min(#bad, 8))), 0)
  end
end

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
