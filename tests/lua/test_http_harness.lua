-- The fuzz_http harness (tests/fuzz/http.lua: lfl serve's routing, API key,
-- request validation and answers, with generation and scoring stubbed) run
-- without libFuzzer, so every CI run holds its rule (never a 500 for bad
-- input, every answer JSON): its committed corpus, then a fixed number of
-- seeded byte mutations of it (insertions of JSON pieces, deletions, byte
-- changes), aimed also at /v1/score/evaluation. The libFuzzer target
-- (tests/fuzz/run.sh, -DLFL_FUZZ=ON) searches far wider.
local t = lfl.test
package.path = lfl.home .. "/tests/fuzz/?.lua;" .. package.path
local harness = dofile(lfl.home .. "/tests/fuzz/http.lua")

local dir = lfl.home .. "/tests/fuzz/corpus/http"

local function corpus()
  local inputs = {}
  local names = lfl.fs.list(dir)
  table.sort(names)
  for _, n in ipairs(names) do
    local f = assert(io.open(dir .. "/" .. n, "rb"))
    inputs[#inputs + 1] = f:read("*a")
    f:close()
  end
  return inputs
end

t.suite("http_harness", {
  corpus_and_mutations = function()
    local inputs = corpus()
    t.assert(#inputs >= 10, "the corpus has " .. #inputs .. " inputs")
    local scores = 0
    for _, s in ipairs(inputs) do
      harness(s)
      if s:find("/v1/score/evaluation", 1, true) then scores = scores + 1 end
    end
    t.assert(scores >= 3, "score requests in the corpus")
    -- the same mutations every run
    local seed = 7
    local function rand(n) -- a small LCG: math.random's sequence differs between builds
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local pieces = {'"', '[', ']', '{', '}', ',', ':', 'null', '1', '-1', '0.5', '"a"', '\0', '\255', 'e9', '""',
      'true', '"max_length":', '"messages":', '1e400', 'NaN', '\\u0000', '\\ud800'}
    for _ = 1, 3000 do
      local s = inputs[rand(#inputs)]
      for _ = 1, rand(4) do
        local p = rand(#s + 1)
        local r = rand(3)
        if r == 1 then s = s:sub(1, p - 1) .. pieces[rand(#pieces)] .. s:sub(p)
        elseif r == 2 then s = s:sub(1, p - 1) .. s:sub(p + rand(3))
        else s = s:sub(1, p - 1) .. string.char(rand(256) - 1) .. s:sub(p + 1) end
      end
      harness(s)
    end
  end,
})

t.run()
