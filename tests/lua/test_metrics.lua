-- BLEU-4 and ROUGE against nltk / jieba + rouge_chinese as LlamaFactory calls
-- them (tests/golden/eval/metrics.json from tests/ref/make_metric_goldens.py).
local t = lfl.test
local metrics = lfl.metrics
local f = assert(io.open(lfl.home .. "/tests/golden/eval/metrics.json", "rb"))
local G = lfl.json.decode(f:read("*a"))
f:close()

local jieba = require("lfl.infer.jieba")
local have_jieba = jieba.available()
if not have_jieba then
  print("SKIP the Chinese ROUGE and jieba.cut goldens: no jieba dictionary in " .. jieba.dir() ..
    " (run tests/fixtures.sh)")
end
local function has_cjk(s) return s:find("[\228-\233]") ~= nil end

local function round4(x) return math.floor(x * 1e4 + 0.5) / 1e4 end

t.suite("metrics", {
  goldens = function()
    for i, c in ipairs(G.cases) do
      local what = string.format("case %d (%q vs %q)", i, c.pred, c.label)
      t.assert_close(round4(metrics.bleu4(c.pred, c.label) * 100), c["bleu-4"], 1e-9, what .. " bleu-4")
      if c["rouge-1"] and (have_jieba or not has_cjk(c.pred .. c.label)) then
        local toks = {}
        for _, w in ipairs(metrics.words(c.pred)) do if w:match("%S") then toks[#toks + 1] = w end end
        t.assert_eq(table.concat(toks, "|"), table.concat(c.tokens_pred, "|"))
        local r = metrics.rouge(c.pred, c.label)
        for _, k in ipairs({"rouge-1", "rouge-2", "rouge-l"}) do
          t.assert_close(round4(r[k] * 100), c[k], 1e-9, what .. " " .. k)
        end
      end
    end
  end,
  -- lfl.jieba.cut equals jieba.cut (dictionary DAG + HMM) token for token
  jieba_cut = function()
    if not have_jieba then return end
    local jf = assert(io.open(lfl.home .. "/tests/golden/eval/jieba.json", "rb"))
    local J = lfl.json.decode(jf:read("*a"))
    jf:close()
    for _, c in ipairs(J) do
      t.assert_eq(table.concat(jieba.cut(c.text), "|"), table.concat(c.cut, "|"), c.text)
    end
  end,
  similarity_means = function()
    local s = metrics.similarity({"hello world", "x"}, {"hello world", "y"})
    t.assert_close(s["bleu-4"], 50, 1e-9)
    t.assert_close(s["rouge-1"], 50, 1e-9)
  end,
})

t.run()
