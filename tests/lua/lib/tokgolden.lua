-- Compares a tokenizer with a golden written by tests/ref/make_tokenizer_goldens.py
-- or make_hf_export_goldens.py on the corpus of tests/golden/tokenizers/corpus.json:
-- ids with and without special tokens, with special tokens left unparsed, byte
-- offsets (when the golden has them), decoding with and without skipping specials.
--   local tg = dofile(lfl.home .. "/tests/lua/lib/tokgolden.lua")
--   local bad, checks = tg.compare(tok, golden_table)   -- bad: list of messages
local json = dofile(lfl.home .. "/tests/lua/lib/json.lua")
local fmt = string.format

local M = {}
M.DIR = lfl.home .. "/tests/golden/tokenizers/"

local texts
function M.texts()
  if not texts then
    texts = {}
    for i, c in ipairs(json.read(M.DIR .. "corpus.json").texts) do
      texts[i] = c.text or c.hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
    end
  end
  return texts
end

function M.read(name) return json.read(M.DIR .. name .. ".json") end

function M.show(s)
  s = fmt("%q", s):gsub("\\\n", "\\n")
  return #s > 60 and s:sub(1, 57) .. "..." or s
end

-- nil when equal, else a description of the first difference
function M.diff(got, exp)
  for i = 1, math.max(#got, #exp) do
    if got[i] ~= exp[i] then
      return fmt("first difference at %d: got %s, expected %s (lengths %d, %d)", i, tostring(got[i]),
                 tostring(exp[i]), #got, #exp)
    end
  end
end

-- mismatches (a list of messages) and the number of comparisons made
function M.compare(tok, g)
  local ts = M.texts()
  if #g.cases ~= #ts then return {fmt("golden has %d cases for %d texts", #g.cases, #ts)}, 0 end
  local bad, checks = {}, 0
  local function note(i, what, d) bad[#bad + 1] = fmt("text %d %s: %s: %s", i, M.show(ts[i]), what, d) end
  local function cmp(i, what, d) checks = checks + 1; if d then note(i, what, d) end end
  for i, c in ipairs(g.cases) do
    local s = ts[i]
    local ids, offs = tok:encode(s)
    cmp(i, "ids", M.diff(ids, c.ids))
    local plain = tok:encode(s, {add_special_tokens = false, offsets = false})
    cmp(i, "ids without special tokens", M.diff(plain, c.ids_no_special or c.ids))
    local split = tok:encode(s, {add_special_tokens = false, parse_special = false, offsets = false})
    cmp(i, "ids with specials unparsed", M.diff(split, c.ids_split_special or c.ids_no_special or c.ids))
    if c.offsets then
      local flat = {}
      for k, o in ipairs(offs) do flat[2 * k - 1], flat[2 * k] = o[1], o[2] end
      cmp(i, "offsets", M.diff(flat, c.offsets))
    end
    local dec = tok:decode(c.ids)
    cmp(i, "decode", dec ~= c.decoded and fmt("got %s, expected %s", M.show(dec), M.show(c.decoded)) or nil)
    local skip = tok:decode(c.ids, {skip_special_tokens = true})
    local want = c.decoded_skip or c.decoded
    cmp(i, "decode skipping specials", skip ~= want and fmt("got %s, expected %s", M.show(skip), M.show(want)) or nil)
  end
  return bad, checks
end

-- raises with the first mismatches when there are any; returns the number of checks
function M.check(tok, golden_name)
  local bad, checks = M.compare(tok, M.read(golden_name))
  if #bad > 0 then
    error(fmt("%s: %d mismatches\n  %s", golden_name, #bad, table.concat(bad, "\n  ", 1, math.min(#bad, 8))), 0)
  end
  return checks
end

return M
