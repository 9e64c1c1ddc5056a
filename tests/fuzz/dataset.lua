-- Harness of fuzz_dataset_record: reads the scratch file as lfl.data does,
-- streamed (lfl.data.stream.records) and in memory (lfl.data.read_records),
-- and aligns each record under the alignment the first input byte picks.
-- Reading may fail with a clean error naming the file; aligning never raises
-- (a bad record is skipped and counted).
local F = require("fuzzlib")
local data = require("lfl.data")
local stream = require("lfl.data.stream")

local FORMATS = {"alpaca", "sharegpt", "openai"}

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

local function align_all(a, recs, where)
  local stats = {total = 0, kept = 0, skipped = {}}
  for i, rec in ipairs(recs) do
    F.guard("align_record (" .. where .. " record " .. i .. ")", data.align_record, a, rec, "fuzz:" .. i,
      {strict = false}, stats)
  end
  if stats.total ~= #recs or stats.kept > stats.total then error("BUG: align_record counts are off", 0) end
end

return function(input, path)
  local sel = input:byte(1)
  local a = attr_of(sel)
  local ok, recs = F.guard("stream.records", function()
    local out = {}
    for rec in stream.records(path) do out[#out + 1] = rec end
    return out
  end)
  if ok then align_all(a, recs, "streamed")
  elseif not recs:find(path, 1, true) then error("BUG: an error that does not name the file: " .. recs, 0) end
  local ok2, recs2 = F.guard("read_records", data.read_records, path)
  if ok2 then align_all(a, recs2, "in-memory")
  elseif not recs2:find(path, 1, true) then error("BUG: an error that does not name the file: " .. recs2, 0) end
  collectgarbage("step", 200)
end
