-- BLEU-4 and ROUGE against nltk / jieba + rouge_chinese as LlamaFactory calls
-- them (tests/golden/eval/metrics.json from tests/ref/make_metric_goldens.py).
local t = lfl.test
local metrics = lfl.metrics
local f = assert(io.open(lfl.home .. "/tests/golden/eval/metrics.json", "rb"))
local G = lfl.json.decode(f:read("*a"))
f:close()

local function round4(x) return math.floor(x * 1e4 + 0.5) / 1e4 end

t.suite("metrics", {
  goldens = function()
    for i, c in ipairs(G.cases) do
      local what = string.format("case %d (%q vs %q)", i, c.pred, c.label)
      t.assert_close(round4(metrics.bleu4(c.pred, c.label) * 100), c["bleu-4"], 1e-9, what .. " bleu-4")
      if c["rouge-1"] then
        local toks = {}
        for _, w in ipairs(metrics.tokens(c.pred)) do if w:match("%S") then toks[#toks + 1] = w end end
        t.assert_eq(table.concat(toks, "|"), table.concat(c.tokens_pred, "|"))
        local r = metrics.rouge(c.pred, c.label)
        for _, k in ipairs({"rouge-1", "rouge-2", "rouge-l"}) do
          t.assert_close(round4(r[k] * 100), c[k], 1e-9, what .. " " .. k)
        end
      end
    end
  end,
  similarity_means = function()
    local s = metrics.similarity({"hello world", "x"}, {"hello world", "y"})
    t.assert_close(s["bleu-4"], 50, 1e-9)
    t.assert_close(s["rouge-1"], 50, 1e-9)
  end,
})

t.run()
