-- Text similarity metrics of LlamaFactory's SFT predict (train/sft/metric.py):
-- BLEU-4 as nltk's sentence_bleu on characters with SmoothingFunction().method3,
-- ROUGE-1/2/L F-scores as rouge_chinese on jieba.cut tokens joined by spaces
-- (lfl.jieba, with jieba's dictionary from tests/fixtures.sh). Without the
-- dictionary, M.tokens stands in: equal to jieba on most non-Chinese text, but
-- Chinese is cut into single characters, and a note says so once.
local jieba = require("lfl.infer.jieba")
local M = {}
local have_jieba -- looked up once: M.words runs per sample
local floor, log, exp, max, min = math.floor, math.log, math.exp, math.max, math.min

-- UTF-8 characters (code points) of s, as Python's list(str)
function M.chars(s)
  local out = {}
  for c in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do out[#out + 1] = c end
  return out
end

local function ngram_counts(toks, n)
  local c, total = {}, 0
  for i = 1, #toks - n + 1 do
    local k = table.concat(toks, "\0", i, i + n - 1)
    c[k] = (c[k] or 0) + 1
    total = total + 1
  end
  return c, total
end

-- sentence_bleu([ref], hyp, smoothing_function=method3) on token lists, 4-gram uniform weights
function M.sentence_bleu(ref, hyp)
  local p_num, p_den = {}, {}
  for n = 1, 4 do
    local hc, total = ngram_counts(hyp, n)
    local rc = ngram_counts(ref, n)
    local clipped = 0
    for k, v in pairs(hc) do clipped = clipped + min(v, rc[k] or 0) end
    p_num[n], p_den[n] = clipped, max(1, total)
  end
  if p_num[1] == 0 then return 0 end
  local c, r = #hyp, #ref
  local bp
  if c > r then bp = 1 elseif c == 0 then bp = 0 else bp = exp(1 - r / c) end
  local inc, s = 1, 0
  for n = 1, 4 do
    local p
    if p_num[n] == 0 then p = 1 / (2 ^ inc * p_den[n]); inc = inc + 1 else p = p_num[n] / p_den[n] end
    if p > 0 then s = s + 0.25 * log(p) end
  end
  return bp * exp(s)
end

function M.bleu4(pred, label) return M.sentence_bleu(M.chars(label), M.chars(pred)) end

-- jieba.cut-like tokens of non-Chinese text (whitespace characters included)
function M.tokens(s)
  local out, word = {}, {}
  local function flush() if #word > 0 then out[#out + 1] = table.concat(word); word = {} end end
  local i = 1
  while i <= #s do
    local c = s:match("^[%z\1-\127\194-\244][\128-\191]*", i)
    if c:match("^[%w]$") then
      word[#word + 1] = c
    else
      flush()
      if c == "\r" and s:sub(i + 1, i + 1) == "\n" then c = "\r\n" end
      out[#out + 1] = c
    end
    i = i + #c
  end
  flush()
  return out
end

local function split_ws(s) local t = {}; for w in s:gmatch("%S+") do t[#t + 1] = w end; return t end

-- rouge_chinese's sentences (lines) -> words (str.split(" ") of each normalised line)
local function rouge_words(text)
  local words = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if #line > 0 then
      local norm = table.concat(split_ws(line), " ")
      if norm == "" then words[#words + 1] = ""
      else for w in (norm .. " "):gmatch("(.-) ") do words[#words + 1] = w end end
    end
  end
  return words
end

local function prf(overlap, ev, rf)
  local p = ev == 0 and 0 or overlap / ev
  local r = rf == 0 and 0 or overlap / rf
  return 2 * ((p * r) / (p + r + 1e-8))
end

local function rouge_n(hw, rw, n)
  local hs, rs = ngram_counts(hw, n), ngram_counts(rw, n)
  local hc, rc, ov = 0, 0, 0
  for k in pairs(hs) do hc = hc + 1; if rs[k] then ov = ov + 1 end end
  for _ in pairs(rs) do rc = rc + 1 end
  return prf(ov, hc, rc)
end

local function lcs(x, y)
  local prev, cur = {}, {}
  for j = 0, #y do prev[j] = 0 end
  for i = 1, #x do
    cur[0] = 0
    for j = 1, #y do
      if x[i] == y[j] then cur[j] = prev[j - 1] + 1 else cur[j] = max(prev[j], cur[j - 1]) end
    end
    prev, cur = cur, prev
  end
  return prev[#y]
end

-- {["rouge-1"] =, ["rouge-2"] =, ["rouge-l"] =} F-scores in [0, 1]
function M.words(s)
  if have_jieba == nil then
    have_jieba = jieba.available()
    if not have_jieba then io.stderr:write("[lfl] note: jieba's dictionary is not in " .. jieba.dir() ..
      " (tests/fixtures.sh fetches it): ROUGE cuts Chinese into characters, unlike LlamaFactory\n") end
  end
  if have_jieba then return jieba.cut(s) end
  return M.tokens(s)
end

function M.rouge(pred, label)
  local hj = table.concat(M.words(pred), " ")
  local rj = table.concat(M.words(label), " ")
  if #split_ws(hj) == 0 or #split_ws(rj) == 0 then return {["rouge-1"] = 0, ["rouge-2"] = 0, ["rouge-l"] = 0} end
  local hw, rw = rouge_words(hj), rouge_words(rj)
  local l = lcs(rw, hw)
  local p, r = l / #hw, l / #rw
  return {["rouge-1"] = rouge_n(hw, rw, 1), ["rouge-2"] = rouge_n(hw, rw, 2),
          ["rouge-l"] = 2 * ((p * r) / (p + r + 1e-8))}
end

local function round4(x) return floor(x * 1e4 + 0.5) / 1e4 end

-- LlamaFactory's ComputeSimilarity over lists: {["bleu-4"], ["rouge-1"], ["rouge-2"], ["rouge-l"]},
-- each the mean of per-sample scores x100 rounded to 4 decimals
function M.similarity(preds, labels)
  assert(#preds == #labels, "metrics.similarity: predictions and labels differ in number")
  local sums = {["bleu-4"] = 0, ["rouge-1"] = 0, ["rouge-2"] = 0, ["rouge-l"] = 0}
  for i = 1, #preds do
    local r = M.rouge(preds[i], labels[i])
    for k, v in pairs(r) do sums[k] = sums[k] + round4(v * 100) end
    sums["bleu-4"] = sums["bleu-4"] + round4(M.bleu4(preds[i], labels[i]) * 100)
  end
  for k, v in pairs(sums) do sums[k] = #preds > 0 and v / #preds or 0 end
  return sums
end

return M
