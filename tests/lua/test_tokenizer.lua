-- lfl.tokenizer: loading (folder, tokenizer.json, GGUF) and its errors, lookups,
-- special ids, encode options, offsets, invalid UTF-8, batch encoding against
-- single encoding, decoding errors, round trips on random text, and
-- lfl.gguf.read.
local t = lfl.test
local S = lfl.home .. "/../shared/data/"
local T, V = S .. "tokenizers/", S .. "tokenizer-vectors/"
local fmt = string.format

local cache = {}
local function load(p)
  cache[p] = cache[p] or lfl.tokenizer.load(p)
  return cache[p]
end

local function tmpfile(content)
  local p = os.tmpname()
  local f = assert(io.open(p, "wb"))
  f:write(content)
  f:close()
  return p
end

local function eq_list(a, b, msg)
  t.assert_eq(#a, #b, (msg or "") .. " length")
  for i = 1, #a do
    if a[i] ~= b[i] then t.assert_eq(a[i], b[i], fmt("%s item %d", msg or "", i)) end
  end
end

-- random valid UTF-8 drawn from several scripts, emoji and whitespace (no '<',
-- so no special token can appear)
local ranges = {{0x20, 0x3B}, {0x3D, 0x7E}, {0x09, 0x0A}, {0xC0, 0x17F}, {0x391, 0x3C9}, {0x410, 0x44F},
                {0x4E00, 0x4FFF}, {0x3040, 0x30FF}, {0xAC00, 0xACFF}, {0x1F600, 0x1F64F}, {0x20, 0x20}}
local function utf8char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                     0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end
local function random_text(len)
  local out = {}
  for i = 1, len do
    local r = ranges[rnd(#ranges) + 1]
    out[i] = utf8char(r[1] + rnd(r[2] - r[1] + 1))
  end
  return table.concat(out)
end

t.suite("tokenizer", {
  load_forms = function()
    local a = load(T .. "llama3")
    local b = lfl.tokenizer.load(T .. "llama3/tokenizer.json")
    t.assert(lfl.tokenizer.is_tokenizer(a) and lfl.tokenizer.is_tokenizer(b))
    eq_list((a:encode("Hello world")), (b:encode("Hello world")), "folder vs file")
    local g = load(V .. "ggml-vocab-gpt-2.gguf")
    eq_list((g:encode("Hello world")), {15496, 995}, "gguf")
    t.assert(tostring(a):find("BPE (byte-level), vocab 128256", 1, true), tostring(a))
    t.assert(tostring(a):find('bos 128000 "<|begin_of_text|>"', 1, true), tostring(a))
  end,

  load_errors = function()
    t.assert_error(function() lfl.tokenizer.load("/nonexistent/tok") end, "/nonexistent/tok")
    t.assert_error(function() lfl.tokenizer.load(lfl.home .. "/stdlib") end, "has no tokenizer.json")
    t.assert_error(function() lfl.tokenizer.load(V .. "ggml-vocab-bert-bge.gguf") end, "'bert' is not supported")
    local bad = tmpfile('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": ')
    t.assert_error(function() lfl.tokenizer.load(bad) end, "invalid JSON")
    os.remove(bad)
    local wp = tmpfile('{"model": {"type": "WordPiece", "vocab": {"a": 0}}}')
    t.assert_error(function() lfl.tokenizer.load(wp) end, "model type 'WordPiece' is not supported")
    os.remove(wp)
    local mg = tmpfile('{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}')
    t.assert_error(function() lfl.tokenizer.load(mg) end, "merge 1 ('a' 'b'): the merged token is not in the vocabulary")
    os.remove(mg)
    local nt = tmpfile('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled"}}')
    t.assert_error(function() lfl.tokenizer.load(nt) end, "normalizer type 'Precompiled' is not supported")
    os.remove(nt)
  end,

  minimal_json = function()
    -- a hand-written tokenizer.json: char-level BPE with two merges and a Split
    local p = tmpfile([[{"added_tokens": [{"id": 5, "content": "<x>", "special": true}],
      "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed"},
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
                "merges": [["a", "b"], "ab c"]}}]])
    local tok = lfl.tokenizer.load(p)
    os.remove(p)
    eq_list(tok:encode("abc ab ba<x>c"), {4, 2, 1, 0, 5, 3})
    t.assert_eq(tok:decode({4, 2}), "abc ab", "no decoder joins with spaces")
    t.assert_eq(tok:vocab_size(), 6)
  end,

  lookups = function()
    local tok = load(T .. "llama3")
    t.assert_eq(tok:token_to_id("<|begin_of_text|>"), 128000)
    t.assert_eq(tok:token_to_id("Hello"), 9906)
    t.assert_eq(tok:id_to_token(9906), "Hello")
    t.assert_eq(tok:id_to_token(128001), "<|end_of_text|>")
    t.assert_eq(tok:token_to_id("no such token here"), nil)
    t.assert_eq(tok:id_to_token(10 ^ 7), nil)
    t.assert_eq(tok:vocab_size(), 128256)
    t.assert(tok:is_special(128000) and not tok:is_special(9906))
    local specials = tok:special_tokens()
    t.assert_eq(#specials, 256)
    t.assert_eq(specials[1].id, 128000)
    t.assert_eq(specials[1].content, "<|begin_of_text|>")
    eq_list(tok:convert_ids_to_tokens({9906, 1917}), {"Hello", "Ġworld"})
  end,

  special_ids = function()
    local l3 = load(T .. "llama3")
    t.assert_eq(l3.bos_id, 128000)
    t.assert_eq(l3.eos_id, 128001)
    local q = load(T .. "qwen3")
    t.assert_eq(q.bos_id, nil)
    t.assert_eq(q.eos_id, 151645)
    t.assert_eq(q.pad_id, 151643)
    local spm = load(V .. "ggml-vocab-llama-spm.gguf")
    t.assert_eq(spm.bos_id, 1)
    t.assert_eq(spm.eos_id, 2)
    t.assert_eq(spm.unk_id, 0)
    local l2 = load(T .. "llama2")
    t.assert_eq(l2.bos_id, 1)
    t.assert_eq(l2.unk_id, 0)
  end,

  encode_options = function()
    local tok = load(T .. "llama2")
    eq_list(tok:encode("Hello"), {1, 22557})
    eq_list(tok:encode("Hello", {add_special_tokens = false}), {22557})
    -- "<s>" in the text: parsed as the special token, or spelled out
    eq_list(tok:encode("<s>x", {add_special_tokens = false}), {1, 1318})
    local spelled = tok:encode("<s>x", {add_special_tokens = false, parse_special = false})
    t.assert(#spelled > 2 and spelled[1] ~= 1, "special token text spelled out")
    local ids, offs = tok:encode("Hello", {offsets = false})
    t.assert_eq(offs, nil)
    t.assert_error(function() tok:encode("x", "not a table") end, "table")
    t.assert_error(function() tok:encode(nil) end, "string")
  end,

  offsets = function()
    local tok = load(T .. "llama3")
    local text = "Hello wörld 🦙!"
    local ids, offs = tok:encode(text)
    t.assert_eq(#ids, #offs)
    local prev = 0
    for i, o in ipairs(offs) do
      t.assert(o[1] >= 0 and o[2] <= #text and o[1] <= o[2], "offset in range")
      t.assert(o[1] >= prev or o[1] == offs[i - 1][1], "offsets move forward")
      prev = o[1]
    end
    -- as HF: Hello | " w" | "ör" | "ld" | " " + first bytes of the llama | two more
    -- bytes of it (each covering the whole character) | "!"
    local spans = {}
    for i, o in ipairs(offs) do spans[i] = text:sub(o[1] + 1, o[2]) end
    eq_list(spans, {"Hello", " w", "ör", "ld", " 🦙", "🦙", "🦙", "!"}, "spans")
    -- the BOS added by a template has offsets (0, 0)
    local _, o2 = load(T .. "llama2"):encode("Hi")
    t.assert(o2[1][1] == 0 and o2[1][2] == 0)
  end,

  invalid_utf8 = function()
    for _, name in ipairs{"llama3", "gemma3"} do
      local tok = load(T .. name)
      local raw = "abc\x80def \xe2\x82 x"
      local fixed = "abc\u{FFFD}def \u{FFFD} x"
      local a, ao = tok:encode(raw)
      local b = tok:encode(fixed)
      eq_list(a, (b), name .. ": invalid bytes read as U+FFFD")
      for _, o in ipairs(ao) do t.assert(o[2] <= #raw, "offsets index the raw bytes") end
      t.assert_eq(tok:decode(a, {skip_special_tokens = true}), fixed)
    end
  end,

  batch_matches_single = function()
    local texts = {}
    for i = 1, 40 do texts[i] = random_text(5 + (i * 7) % 60) end
    texts[#texts + 1] = ""
    texts[#texts + 1] = "<|im_start|>user\nhi<|im_end|>"
    for _, name in ipairs{"qwen3", "llama2"} do
      local tok = load(T .. name)
      local ids, offs = tok:encode_batch(texts)
      t.assert_eq(#ids, #texts)
      for i, s in ipairs(texts) do
        local one, o1 = tok:encode(s)
        eq_list(ids[i], one, name .. " batch item " .. i)
        for k = 1, #o1 do
          t.assert(offs[i][k][1] == o1[k][1] and offs[i][k][2] == o1[k][2], "batch offsets")
        end
      end
      local plain = tok:encode_batch(texts, {add_special_tokens = false, offsets = false})
      eq_list(plain[#plain - 1], (tok:encode(texts[#texts - 1], {add_special_tokens = false})))
      t.assert_eq(#tok:encode_batch({}), 0)
      t.assert_error(function() tok:encode_batch({"a", 5}) end, "item 2 is not a string")
    end
  end,

  decode = function()
    local tok = load(T .. "qwen3")
    local ids = tok:encode("<|im_start|>user\nhello<|im_end|>")
    t.assert_eq(tok:decode(ids), "<|im_start|>user\nhello<|im_end|>")
    t.assert_eq(tok:decode(ids, {skip_special_tokens = true}), "user\nhello")
    t.assert_eq(tok:decode({}), "")
    t.assert_error(function() tok:decode({9707, 10 ^ 7}) end, "not in the vocabulary")
    t.assert_error(function() tok:decode({"x"}) end, "not a number")
  end,

  round_trip_random = function()
    -- tokenizers without a normalizer that changes text decode back exactly
    for _, p in ipairs{T .. "llama3", T .. "deepseek_v3", T .. "gemma3", T .. "llama2",
                       V .. "ggml-vocab-gpt-2.gguf", V .. "ggml-vocab-llama-spm.gguf"} do
      local tok = load(p)
      for i = 1, 30 do
        local s = random_text(1 + i * 3)
        local ids = tok:encode(s, {add_special_tokens = false})
        local back = tok:decode(ids)
        if back ~= s then error(fmt("%s: %q decodes to %q", p, s, back), 0) end
      end
    end
  end,

  long_inputs = function()
    -- longer than the word cache limit and the merge-scan limit
    local tok = load(T .. "llama3")
    local s = string.rep("abcdefghij", 100) .. " " .. string.rep(" ", 500) .. string.rep("٣", 200)
    local ids = tok:encode(s, {add_special_tokens = false})
    t.assert_eq(tok:decode(ids), s)
    local again = tok:encode(s, {add_special_tokens = false})
    eq_list(again, ids, "second call (cached words)")
  end,

  threads = function()
    local tok = load(T .. "deepseek_v3")
    local texts = {}
    for i = 1, 64 do texts[i] = random_text(200) end
    local before = lfl.sys.threads()
    lfl.sys.threads(2)
    local ids = tok:encode_batch(texts)
    lfl.sys.threads(before)
    for i = 1, #texts, 7 do eq_list(ids[i], (tok:encode(texts[i])), "threaded item " .. i) end
  end,

  gguf_read = function()
    local g = lfl.gguf.read(V .. "ggml-vocab-llama-spm.gguf")
    t.assert_eq(g.version, 3)
    t.assert_eq(g.alignment, 32)
    t.assert_eq(#g.tensors, 0)
    t.assert_eq(g.metadata["tokenizer.ggml.model"], "llama")
    t.assert_eq(#g.metadata["tokenizer.ggml.tokens"], 32000)
    t.assert_eq(g.metadata["tokenizer.ggml.tokens"][2], "<s>")
    t.assert_eq(g.metadata["tokenizer.ggml.add_bos_token"], true)
    t.assert_close(g.metadata["tokenizer.ggml.scores"][300], -40, 1e-6)
    t.assert_eq(g.metadata["llama.context_length"], 4096)
    t.assert_error(function() lfl.gguf.read(T .. "llama3/tokenizer.json") end, "not a GGUF file")
    t.assert_error(function() lfl.gguf.read("/nonexistent.gguf") end, "cannot open /nonexistent.gguf")
  end,
})

t.run()
