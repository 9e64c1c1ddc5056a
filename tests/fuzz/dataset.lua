-- Harness of fuzz_dataset_record: reads the scratch file as lfl.data does,
-- streamed (lfl.data.stream.records) and in memory (lfl.data.read_records),
-- aligns each record under the alignment the first input byte picks, and
-- encodes the examples kept as training does (the sft approach, or the
-- pairwise / KTO preprocessing for ranking / KTO data) with a chat template
-- the first byte picks (qwen3, glm4, mistral, default) and the qwen3
-- tokenizer of ../shared/data (the synthetic byte-level one when absent).
-- Reading may fail with a clean error naming the file; aligning never raises
-- (a bad record is skipped and counted); encoding may refuse an example with
-- a clean error (as LlamaFactory, e.g. tools that are not a JSON list).
local F = require("fuzzlib")
local data = require("lfl.data")
local stream = require("lfl.data.stream")

local T = require("lfl.text.template")
local preprocess = require("lfl.data.preprocess")
local pairwise = require("lfl.data.pairwise")
local sft = require("recipes.approaches.sft")

local FORMATS = {"alpaca", "sharegpt", "openai"}
local TEMPLATES = {"qwen3", "glm4", "mistral", "default"}

local tok
do
  local ok, t = pcall(lfl.tokenizer.load, lfl.home .. "/../shared/data/tokenizers/qwen3")
  tok = ok and t or lfl.tokenizer.load(lfl.home .. "/tests/golden/tokenizers/synth-bytelevel.tokenizer.json")
end

-- at most this many examples of one input are encoded (the rest are only aligned)
local MAX_ENCODE = 8

local function encode_all(sel, a, examples, where)
  local tpl = T.get(TEMPLATES[math.floor(sel / 64) % 4 + 1])
  local args = {cutoff_len = 48, preprocessing_batch_size = 4, mask_history = sel % 2 == 1}
  local ok, eos = pcall(preprocess.eos_id, tok, tpl)
  if not ok then return end -- the synthetic tokenizer lacks qwen3's EOS: a clean refusal
  local ctx = {tokenizer = tok, template = tpl, args = args}
  for i = 1, math.min(#examples, MAX_ENCODE) do
    local ex = examples[i]
    local what = where .. " example " .. i .. " (" .. tpl.name .. ")"
    if a.kto then F.guard("prepare_kto " .. what, pairwise.prepare_kto, {ex}, ctx)
    elseif a.ranking then F.guard("prepare_pairwise " .. what, pairwise.prepare_pairwise, {ex}, ctx)
    else
      local okE, ids, labels = F.guard("sft.encode " .. what, sft.encode, ex, tok, tpl, args, eos, args.cutoff_len)
      if okE and ids and (#ids ~= #labels or #ids > args.cutoff_len) then
        error(("BUG: sft.encode gave %d ids, %d labels (cutoff %d)"):format(#ids, #labels, args.cutoff_len), 0)
      end
    end
  end
end

local function attr_of(sel)
  local formatting = FORMATS[(math.floor(sel / 4) % 3) + 1]
  local info = {file_name = "fuzz", formatting = formatting, ranking = math.floor(sel / 16) % 2 == 1,
    columns = {system = "system", tools = "tools", history = "history", chosen = "chosen", rejected = "rejected"}}
  if math.floor(sel / 32) % 2 == 1 then info.columns.kto_tag = "kto_tag" end
  if formatting == "openai" then info.columns.messages = "messages" end
  local a = data.attr("fuzz", info, "fuzz")
  a.kto = info.columns.kto_tag ~= nil
  return a
end

local function align_all(sel, a, recs, where)
  local stats = {total = 0, kept = 0, skipped = {}}
  local examples = {}
  for i, rec in ipairs(recs) do
    -- a refused record (a clean error: a field of the wrong type) is counted but neither kept nor skipped
    local ok, ex = F.guard("align_record (" .. where .. " record " .. i .. ")", data.align_record, a, rec, "fuzz:" .. i,
      {strict = false}, stats)
    if ok and ex then examples[#examples + 1] = ex end
  end
  if stats.total ~= #recs or stats.kept ~= #examples then error("BUG: align_record counts are off", 0) end
  encode_all(sel, a, examples, where)
end

return function(input, path)
  local sel = input:byte(1)
  local a = attr_of(sel)
  local ok, recs = F.guard("stream.records", function()
    local out = {}
    for rec in stream.records(path) do out[#out + 1] = rec end
    return out
  end)
  if ok then align_all(sel, a, recs, "streamed")
  elseif not recs:find(path, 1, true) then error("BUG: an error that does not name the file: " .. recs, 0) end
  local ok2, recs2 = F.guard("read_records", data.read_records, path)
  if ok2 then align_all(sel, a, recs2, "in-memory")
  elseif not recs2:find(path, 1, true) then error("BUG: an error that does not name the file: " .. recs2, 0) end
  collectgarbage("step", 200)
end
