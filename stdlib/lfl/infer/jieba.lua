-- jieba.cut (accurate mode, HMM on) in Lua, for ROUGE as LlamaFactory computes it:
-- the prefix-dictionary DAG with the max-log-frequency route, and runs of
-- single characters not in the dictionary re-cut by the BMES HMM (Viterbi).
-- The dictionary and HMM tables are jieba 0.42.1's own (dict.txt, finalseg/
-- prob_*.py), fetched from PyPI by tests/fixtures.sh into ~/.cache/lfl/jieba
-- (or $LFL_JIEBA_DIR): they are data, not ours to ship. Ties break as Python's
-- max over tuples does (the larger second element wins).
local log = math.log
local byte, sub, concat = string.byte, string.sub, table.concat

local M = {}
local MIN_FLOAT = -3.14e100
local PREV = {B = {"E", "S"}, M = {"M", "B"}, S = {"S", "E"}, E = {"B", "M"}}
local STATES = {"B", "M", "E", "S"}
local dict -- {freq = {word = n (0 for a prefix)}, logtotal, start, trans, emit}

function M.dir()
  local home = os.getenv("HOME") or "."
  return os.getenv("LFL_JIEBA_DIR") or ((os.getenv("LFL_CACHE") or (home .. "/.cache/lfl")) .. "/jieba")
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a"); f:close()
  return s
end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- a prob_*.py table: P={'B': {'\u4e00': -3.65, ...}, ...} or P={'B': -0.26, ...}
local function parse_prob(text, path)
  if not text then error(path .. ": missing (run tests/fixtures.sh to fetch jieba's tables)", 0) end
  local body = text:match("P%s*=%s*(%b{})")
  if not body then error(path .. ": no 'P={...}' table", 0) end
  local out = {}
  local inner = body:sub(2, -2)
  if not inner:find("{", 1, true) then
    for k, v in inner:gmatch("'(%u)'%s*:%s*([%-%d%.e%+]+)") do out[k] = tonumber(v) end
    return out
  end
  for k, tbl in inner:gmatch("'(%u)'%s*:%s*(%b{})") do
    local t = {}
    for key, v in tbl:gmatch("'([^']*)'%s*:%s*([%-%d%.e%+]+)") do
      key = key:gsub("\\u(%x%x%x%x)", function(h) return utf8_char(tonumber(h, 16)) end)
      t[key] = tonumber(v)
    end
    out[k] = t
  end
  return out
end

function M.available(dir)
  dir = dir or M.dir()
  local f = io.open(dir .. "/dict.txt", "rb")
  if f then f:close(); return true end
  return false
end

function M.load(dir)
  if dict then return dict end
  dir = dir or M.dir()
  local text = read(dir .. "/dict.txt")
  if not text then error(dir .. "/dict.txt: missing (run tests/fixtures.sh to fetch jieba's dictionary)", 0) end
  local freq, total, line_no = {}, 0, 0
  for line in text:gmatch("[^\n]+") do
    line_no = line_no + 1
    local word, n = line:match("^(%S+)%s+(%d+)")
    if not word then error(string.format("%s/dict.txt:%d: expected 'word freq [tag]'", dir, line_no), 0) end
    n = tonumber(n)
    freq[word] = n
    total = total + n
    -- every prefix is in the dictionary (0 unless a word itself) so the DAG scan knows when to stop
    local i = 1
    while true do
      local c = byte(word, i)
      if not c then break end
      local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
      i = i + len
      if i > #word then break end
      local pre = sub(word, 1, i - 1)
      if freq[pre] == nil then freq[pre] = 0 end
    end
  end
  local fs = dir .. "/"
  dict = {freq = freq, logtotal = log(total), start = parse_prob(read(fs .. "prob_start.py"), fs .. "prob_start.py"),
          trans = parse_prob(read(fs .. "prob_trans.py"), fs .. "prob_trans.py"),
          emit = parse_prob(read(fs .. "prob_emit.py"), fs .. "prob_emit.py")}
  return dict
end

-- UTF-8 string -> array of characters and their code points
local function chars(s)
  local out, cps, i, n = {}, {}, 1, #s
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or c < 0xC0 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    local cp = c
    if len == 2 then cp = (c % 32) * 64 + (byte(s, i + 1) or 0) % 64
    elseif len == 3 then cp = ((c % 16) * 64 + (byte(s, i + 1) or 0) % 64) * 64 + (byte(s, i + 2) or 0) % 64
    elseif len == 4 then
      cp = (((c % 8) * 64 + (byte(s, i + 1) or 0) % 64) * 64 + (byte(s, i + 2) or 0) % 64) * 64 + (byte(s, i + 3) or 0) % 64
    end
    out[#out + 1] = sub(s, i, i + len - 1)
    cps[#cps + 1] = cp
    i = i + len
  end
  return out, cps
end

local function is_han(cp) return cp >= 0x4E00 and cp <= 0x9FD5 end
local function is_alnum(cp)
  return (cp >= 48 and cp <= 57) or (cp >= 65 and cp <= 90) or (cp >= 97 and cp <= 122)
end
-- re_han_default: [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]
local HAN_EXTRA = {[43] = true, [35] = true, [38] = true, [46] = true, [95] = true, [37] = true, [45] = true}
local function in_block(cp) return is_han(cp) or is_alnum(cp) or HAN_EXTRA[cp] == true end
-- Python's \s with re.U
local function is_space(cp)
  return (cp >= 9 and cp <= 13) or (cp >= 28 and cp <= 32) or cp == 0x85 or cp == 0xA0 or cp == 0x1680 or
    (cp >= 0x2000 and cp <= 0x200A) or cp == 0x2028 or cp == 0x2029 or cp == 0x202F or cp == 0x205F or cp == 0x3000
end

local function viterbi(obs, d)
  local V, path = {{}}, {}
  for _, y in ipairs(STATES) do
    V[1][y] = d.start[y] + (d.emit[y][obs[1]] or MIN_FLOAT)
    path[y] = {y}
  end
  for t = 2, #obs do
    local row, newpath = {}, {}
    for _, y in ipairs(STATES) do
      local em = d.emit[y][obs[t]] or MIN_FLOAT
      local best, state
      for _, y0 in ipairs(PREV[y]) do
        local p = V[t - 1][y0] + ((d.trans[y0] or {})[y] or MIN_FLOAT) + em
        if best == nil or p > best or (p == best and y0 > state) then best, state = p, y0 end
      end
      row[y] = best
      local np = {}
      for i, s in ipairs(path[state]) do np[i] = s end
      np[#np + 1] = y
      newpath[y] = np
    end
    V[#V + 1], path = row, newpath
  end
  local last = V[#obs]
  local state = (last.S > last.E or last.S == last.E) and "S" or "E"
  return path[state]
end

-- finalseg.__cut on a run of Han characters
local function hmm_han(cs, out, d)
  local pos = viterbi(cs, d)
  local begin, nexti = 1, 1
  for i = 1, #cs do
    local p = pos[i]
    if p == "B" then begin = i
    elseif p == "E" then out[#out + 1] = concat(cs, "", begin, i); nexti = i + 1
    elseif p == "S" then out[#out + 1] = cs[i]; nexti = i + 1 end
  end
  if nexti <= #cs then out[#out + 1] = concat(cs, "", nexti, #cs) end
end

-- finalseg.cut: Han runs by the HMM; the rest split by ([a-zA-Z0-9]+(?:\.\d+)?%?)
local function finalseg(cs, cps, out, d)
  local i, n = 1, #cs
  while i <= n do
    local j = i
    if is_han(cps[i]) then
      while j <= n and is_han(cps[j]) do j = j + 1 end
      local run = {}
      for k = i, j - 1 do run[#run + 1] = cs[k] end
      hmm_han(run, out, d)
      i = j
    else
      while j <= n and not is_han(cps[j]) do j = j + 1 end
      -- the non-Han stretch [i, j): alternate unmatched text and re_skip matches
      local k, pend = i, i
      while k < j do
        if is_alnum(cps[k]) then
          local e = k
          while e < j and is_alnum(cps[e]) do e = e + 1 end
          if e + 1 < j and cps[e] == 46 and cps[e + 1] >= 48 and cps[e + 1] <= 57 then
            e = e + 1
            while e < j and cps[e] >= 48 and cps[e] <= 57 do e = e + 1 end
          end
          if e < j and cps[e] == 37 then e = e + 1 end
          if pend < k then out[#out + 1] = concat(cs, "", pend, k - 1) end
          out[#out + 1] = concat(cs, "", k, e - 1)
          k, pend = e, e
        else
          k = k + 1
        end
      end
      if pend < j then out[#out + 1] = concat(cs, "", pend, j - 1) end
      i = j
    end
  end
end

-- __cut_DAG on one block (characters cs[a..b])
local function cut_dag(cs, cps, a, b, out, d)
  local freq, N = d.freq, b - a + 1
  local dag = {}
  for k = 1, N do
    local list, i, frag = {}, k, cs[a + k - 1]
    while i <= N and freq[frag] ~= nil do
      if freq[frag] > 0 then list[#list + 1] = i end
      i = i + 1
      if i <= N then frag = frag .. cs[a + i - 1] end
    end
    if #list == 0 then list[1] = k end
    dag[k] = list
  end
  local rp, rx = {[N + 1] = 0}, {[N + 1] = 0}
  for idx = N, 1, -1 do
    local best, bx
    for _, x in ipairs(dag[idx]) do
      local w = concat(cs, "", a + idx - 1, a + x - 1)
      local f = freq[w]
      if not f or f == 0 then f = 1 end
      local p = log(f) - d.logtotal + rp[x + 1]
      if best == nil or p > best or (p == best and x > bx) then best, bx = p, x end
    end
    rp[idx], rx[idx] = best, bx
  end
  local buf_a, buf_n = nil, 0
  local function flush()
    if buf_n == 0 then return end
    if buf_n == 1 then out[#out + 1] = cs[buf_a]
    else
      local w = concat(cs, "", buf_a, buf_a + buf_n - 1)
      local f = freq[w]
      if not f or f == 0 then
        local sc, sp = {}, {}
        for k = buf_a, buf_a + buf_n - 1 do sc[#sc + 1] = cs[k]; sp[#sp + 1] = cps[k] end
        finalseg(sc, sp, out, d)
      else
        for k = buf_a, buf_a + buf_n - 1 do out[#out + 1] = cs[k] end
      end
    end
    buf_a, buf_n = nil, 0
  end
  local x = 1
  while x <= N do
    local y = rx[x] + 1
    if y - x == 1 then
      if buf_n == 0 then buf_a = a + x - 1 end
      buf_n = buf_n + 1
    else
      flush()
      out[#out + 1] = concat(cs, "", a + x - 1, a + y - 2)
    end
    x = y
  end
  flush()
end

-- jieba.cut(s) (cut_all=False, HMM=True) -> array of tokens
function M.cut(s, d)
  d = d or M.load()
  local cs, cps = chars(s)
  local out, i, n = {}, 1, #cs
  while i <= n do
    local j = i
    if in_block(cps[i]) then
      while j <= n and in_block(cps[j]) do j = j + 1 end
      cut_dag(cs, cps, i, j - 1, out, d)
    else
      while j <= n and not in_block(cps[j]) do j = j + 1 end
      -- re_skip (\r\n|\s) pieces are whitespace tokens; other characters one by one
      local k = i
      while k < j do
        if cps[k] == 13 and k + 1 < j and cps[k + 1] == 10 then out[#out + 1] = "\r\n"; k = k + 2
        else out[#out + 1] = cs[k]; k = k + 1 end
      end
    end
    i = j
  end
  return out
end

return M
