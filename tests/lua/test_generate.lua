-- Generation with the KV cache against transformers' greedy generate
-- (tests/golden/generate, written by tests/ref/make_generate_goldens.py): the
-- tiny random checkpoints of every architecture, one PEFT LoRA adapter
-- (unmerged on/off and merged), batched prompts of different lengths, and
-- SmolLM2-135M-Instruct from its GGUF. Plus the cache against a full forward,
-- the sampler's filters and the streaming detokenizer. Batched generation
-- (left-padded, one forward per step): each row equal to the row generated
-- alone (greedy and seeded sampling), mixed stop conditions, per-row adapters.
local t = lfl.test
local gen = lfl.generate
local root = lfl.home .. "/tests/golden/"
local f = assert(io.open(root .. "generate/generate.json", "rb"))
local G = lfl.json.decode(f:read("*a"))
f:close()
local STOP = {[G.eos] = true}

local function same(got, want, what)
  t.assert(#got == #want, string.format("%s: %d tokens, expected %d (got %s, want %s)", what, #got, #want,
    table.concat(got, ","), table.concat(want, ",")))
  for i = 1, #want do
    t.assert(got[i] == want[i], string.format("%s: token %d is %d, expected %d (got %s)", what, i, got[i], want[i],
      table.concat(got, ",")))
  end
end

local cases = {}
for name, wants in pairs(G.models) do
  cases[name] = function()
    local m = lfl.model.load(root .. "models/" .. name)
    -- one at a time
    for i, p in ipairs(G.prompts) do
      local out = gen.generate(m, p, {max_new_tokens = G.new_tokens, stop_ids = STOP})
      same(out, wants[i], name .. " prompt " .. i)
    end
    -- all together (one left-padded batch, different lengths)
    local res = gen.generate(m, G.prompts, {max_new_tokens = G.new_tokens, stop_ids = STOP})
    for i = 1, #G.prompts do same(res[i][1], wants[i], name .. " batched prompt " .. i) end
    -- reversed order and a duplicate: a row's tokens do not depend on its neighbours
    local rev = {G.prompts[3], G.prompts[2], G.prompts[1], G.prompts[3]}
    res = gen.generate_batch(m, rev, {max_new_tokens = G.new_tokens, stop_ids = STOP})
    for i, w in ipairs({3, 2, 1, 3}) do same(res[i][1], wants[w], name .. " reordered batch row " .. i) end
  end
end
t.suite("generate_golden", cases)

t.suite("generate_lora", {
  unmerged_switchable = function()
    local m = lfl.model.load(root .. "models/llama")
    lfl.peft.load_adapter(m, root .. "generate/lora_llama")
    for i, p in ipairs(G.prompts) do
      same(gen.generate(m, p, {max_new_tokens = G.new_tokens, stop_ids = STOP}), G.lora_llama[i], "lora " .. i)
      same(gen.generate(m, p, {max_new_tokens = G.new_tokens, stop_ids = STOP, adapter = false}),
        G.lora_llama_disabled[i], "lora disabled " .. i)
    end
    t.assert(m.lora.enabled, "adapter switch is per request")
    same(G.lora_llama_disabled[1], G.models.llama[1], "disabled adapter = base model")
  end,
  merged = function()
    local m = lfl.model.load(root .. "models/llama")
    lfl.peft.load_adapter(m, root .. "generate/lora_llama")
    lfl.peft.merge(m)
    for i, p in ipairs(G.prompts) do
      same(gen.generate(m, p, {max_new_tokens = G.new_tokens, stop_ids = STOP}), G.lora_llama[i], "merged " .. i)
    end
  end,
})

local smol = os.getenv("HOME") .. "/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf"
local function have_smol() local h = io.open(smol, "rb"); if h then h:close() end; return h ~= nil end
local smol_model, smol_tok
local function load_smol()
  smol_model = smol_model or lfl.model.load(smol)
  smol_tok = smol_tok or lfl.tokenizer.load(smol)
  return smol_model, smol_tok
end

t.suite("generate_smollm2", {
  gguf_greedy = function()
    if not have_smol() then print("  (skipped: " .. smol .. " missing; run tests/fixtures.sh)"); return end
    local m, tok = load_smol()
    local stops = {[tok:token_to_id("<|im_end|>")] = true}
    for i, c in ipairs(G.smollm2) do
      same(tok:encode(c.text, {add_special_tokens = false}), c.ids, "smollm2 prompt ids " .. i)
      local out = gen.generate(m, c.ids, {max_new_tokens = G.new_tokens, stop_ids = stops})
      same(out, c.new, "smollm2 prompt " .. i)
      t.assert_eq(tok:decode(out, {skip_special_tokens = true}), c.decoded)
    end
  end,
})

local function ids_str(x) return table.concat(x, ",") end

t.suite("generate_batch", {
  smollm2_greedy_four_lengths = function()
    if not have_smol() then print("  (skipped: " .. smol .. " missing; run tests/fixtures.sh)"); return end
    local m, tok = load_smol()
    local tpl = lfl.template.get("chatml")
    local stops = gen.stop_ids(tok, tpl)
    local qs = {"Hi", "What is the capital of France?", "Write a haiku about the sea at dawn.",
                "Name two colors."}
    local prompts = {}
    for i, q in ipairs(qs) do prompts[i] = gen.prompt_ids(tok, tpl, {{role = "user", content = q}}) end
    -- mixed stop conditions: row 2 stops on EOS early, row 4 after 3 tokens, row 3 on a stop id of its own
    local single = {}
    for i, p in ipairs(prompts) do single[i] = gen.generate(m, p, {max_new_tokens = 10, stop_ids = stops}) end
    local own = single[3][5]
    local rows = {{}, {}, {stop_ids = {[own] = true}}, {max_new_tokens = 3}}
    local tm = {}
    local res = gen.generate_batch(m, prompts, {max_new_tokens = 10, stop_ids = stops, rows = rows, timings = tm})
    -- timings: real prompt tokens and the later tokens counted; wall and CPU seconds of both spans
    local np, nd = 0, 0
    for i, p in ipairs(prompts) do np, nd = np + #p, nd + #res[i][1] - 1 end
    t.assert_eq(tm.prefill_tokens, np, "timings.prefill_tokens")
    -- (a row that ends on a stop id drew it too)
    t.assert(tm.decode_tokens >= nd and tm.decode_tokens <= nd + #prompts,
      string.format("timings.decode_tokens %d for %d kept", tm.decode_tokens, nd))
    for _, k in ipairs({"prefill_s", "decode_s", "prefill_cpu_s", "decode_cpu_s"}) do
      t.assert(tm[k] > 0 and tm[k] < 600, "timings." .. k .. " " .. tostring(tm[k]))
    end
    same(res[1][1], single[1], "smollm2 batch row 1")
    same(res[2][1], single[2], "smollm2 batch row 2")
    t.assert_eq(tok:decode(res[2][1], {skip_special_tokens = true}):find("Paris", 1, true) ~= nil, true)
    t.assert_eq(res[2][2], "stop")
    local want3 = {}
    for i = 1, 4 do want3[i] = single[3][i] end
    -- the stop id may occur before index 5: the row stops at its first occurrence
    local cut = {}
    for _, id in ipairs(single[3]) do if id == own then break end; cut[#cut + 1] = id end
    same(res[3][1], cut, "smollm2 batch row 3 (own stop id)")
    t.assert_eq(res[3][2], "stop")
    same(res[4][1], {single[4][1], single[4][2], single[4][3]}, "smollm2 batch row 4 (3 tokens)")
    t.assert_eq(res[4][2], "length")
  end,
  seeded_sampling_independent_of_batch = function()
    local m = lfl.model.load(root .. "models/qwen2")
    local o = gen.with_defaults({max_new_tokens = 10, temperature = 1.5, top_p = 0.95})
    local prompts = {{1, 5, 9}, {7, 3, 2, 8, 11, 4}, {6}}
    local alone = {}
    for i, p in ipairs(prompts) do
      local oi = {}
      for k, v in pairs(o) do oi[k] = v end
      oi.seed = 100 + i
      alone[i] = gen.generate(m, p, oi)
    end
    local rows = {{seed = 101}, {seed = 102}, {seed = 103}}
    local ob = {}
    for k, v in pairs(o) do ob[k] = v end
    ob.rows = rows
    local res = gen.generate_batch(m, prompts, ob)
    for i = 1, 3 do same(res[i][1], alone[i], "seeded row " .. i) end
    -- the same rows in another company
    ob.rows = {{seed = 103}, {seed = 555}, {seed = 101}}
    res = gen.generate_batch(m, {prompts[3], {4, 4, 4, 4, 4, 4, 4, 4, 4}, prompts[1]}, ob)
    same(res[1][1], alone[3], "seeded row 3 elsewhere")
    same(res[3][1], alone[1], "seeded row 1 elsewhere")
    t.assert(ids_str(alone[1]) ~= ids_str(alone[2]), "different seeds differ")
  end,
  per_row_adapter = function()
    local m = lfl.model.load(root .. "models/llama")
    lfl.peft.load_adapter(m, root .. "generate/lora_llama")
    local rows = {{adapter = false}, {}, {adapter = false}}
    local res = gen.generate_batch(m, G.prompts, {max_new_tokens = G.new_tokens, stop_ids = STOP, rows = rows})
    same(res[1][1], G.lora_llama_disabled[1], "row 1 without the adapter")
    same(res[2][1], G.lora_llama[2], "row 2 with the adapter")
    same(res[3][1], G.lora_llama_disabled[3], "row 3 without the adapter")
    t.assert(m.lora.enabled, "adapter switch restored")
  end,
  cancel_one_row = function()
    local m = lfl.model.load(root .. "models/llama")
    local seen = {}
    local res = gen.generate_batch(m, G.prompts, {max_new_tokens = G.new_tokens, on_token = function(_, b)
      seen[b] = (seen[b] or 0) + 1
      return not (b == 2 and seen[b] == 2)
    end})
    t.assert_eq(res[2][2], "cancelled")
    t.assert_eq(#res[2][1], 2)
    same(res[1][1], gen.generate(m, G.prompts[1], {max_new_tokens = G.new_tokens}), "row 1 after row 2 left")
    same(res[3][1], gen.generate(m, G.prompts[3], {max_new_tokens = G.new_tokens}), "row 3 after row 2 left")
    t.assert_eq(#gen.generate_batch(m, {{1, 2}, {3}}, {max_new_tokens = 0})[1][1], 0)
    t.assert_error(function() gen.generate_batch(m, {{1, 2}, {}}) end, "prompt 2 is empty")
  end,
  cache_keep_matches_full_forward = function()
    -- a padded batch cache, a row dropped, then more tokens: logits as the rows alone
    local m = lfl.model.load(root .. "models/gemma2") -- window 4 + softcaps
    lfl.no_grad(function()
      local a, b = {3, 4, 5, 6, 7, 8, 9, 10, 11}, {12, 13, 14}
      local c = lfl.decoder.new_cache({0, 6})
      m:forward(lfl.tensor({a, {0, 0, 0, 0, 0, 0, 12, 13, 14}}, "i64"), {cache = c})
      lfl.decoder.cache_keep(c, {2})
      t.assert_eq(c.len, 3)
      local got = m:forward(lfl.tensor({{15}}, "i64"), {cache = c})
      local full = m:forward(lfl.tensor({{12, 13, 14, 15}}, "i64"))
      t.assert(t.max_abs_diff(got, full:narrow(2, 4, 1)) < 1e-5, "row 2 after cache_keep")
      local _ = b
    end)
  end,
})

-- continuous batching: rows join a running batch and leave it between steps
t.suite("batcher", {
  cache_join_matches_full_forward = function()
    -- a running padded batch joined by a longer and a shorter newcomer: next logits as each row alone
    local m = lfl.model.load(root .. "models/gemma2") -- window 4 + softcaps
    lfl.no_grad(function()
      local a, b, c, d = {3, 4, 5}, {6, 7, 8, 9, 10}, {11, 12, 13, 14, 15, 16, 17, 18, 19}, {20, 21}
      local run = lfl.decoder.new_cache({2, 0})
      m:forward(lfl.tensor({{0, 0, 3, 4, 5}, b}, "i64"), {cache = run})
      local long = lfl.decoder.new_cache()
      m:forward(lfl.tensor({c}, "i64"), {cache = long})
      local j = lfl.decoder.cache_join(run, long)
      t.assert_eq(j.len, 9)
      t.assert_eq(table.concat(j.pad, ","), "6,4,0")
      local short = lfl.decoder.new_cache()
      m:forward(lfl.tensor({d}, "i64"), {cache = short})
      j = lfl.decoder.cache_join(j, short)
      t.assert_eq(table.concat(j.pad, ","), "6,4,0,7")
      local got = m:forward(lfl.tensor({{30}, {31}, {32}, {33}}, "i64"), {cache = j})
      for i, row in ipairs({{a, 30}, {b, 31}, {c, 32}, {d, 33}}) do
        local ids = {}
        for k, v in ipairs(row[1]) do ids[k] = v end
        ids[#ids + 1] = row[2]
        local full = m:forward(lfl.tensor({ids}, "i64"))
        t.assert(t.max_abs_diff(got:narrow(1, i, 1), full:narrow(2, #ids, 1)) < 1e-5, "joined row " .. i)
      end
      t.assert(lfl.decoder.cache_join(nil, short) == short, "nothing to join")
    end)
  end,
  rows_joining_midway_match_alone = function()
    for _, name in ipairs({"llama", "mistral_window"}) do
      local m = lfl.model.load(root .. "models/" .. name)
      local alone = {}
      for i, p in ipairs(G.prompts) do alone[i] = gen.generate(m, p, {max_new_tokens = G.new_tokens}) end
      -- prompt 1 starts alone; 2 joins after 2 steps, 3 after 4 (prefilled 3 tokens a step)
      local bt = gen.batcher(m, {prefill_chunk = 3})
      local rows, ended = {}, {}
      rows[1] = bt:add(G.prompts[1], {max_new_tokens = G.new_tokens})
      local steps = 0
      while bt:size() > 0 do
        steps = steps + 1
        if steps == 3 then rows[2] = bt:add(G.prompts[2], {max_new_tokens = G.new_tokens}) end
        if steps == 5 then rows[3] = bt:add(G.prompts[3], {max_new_tokens = G.new_tokens - 2}) end
        for _, st in ipairs(bt:step()) do ended[#ended + 1] = st end
        t.assert(steps < 100, "the batch never empties")
      end
      for i = 1, 3 do
        t.assert(rows[i].done, "row " .. i .. " done")
        t.assert_eq(rows[i].reason, "length")
      end
      same(rows[1].out, alone[1], name .. " row 1")
      same(rows[2].out, alone[2], name .. " row 2 (joined)")
      local want3 = {}
      for k = 1, G.new_tokens - 2 do want3[k] = alone[3][k] end
      same(rows[3].out, want3, name .. " row 3 (joined, chunked prefill)")
      t.assert_eq(#ended, 3)
    end
  end,
  cancel_waiting_and_running = function()
    local m = lfl.model.load(root .. "models/llama")
    local bt = gen.batcher(m, {prefill_chunk = 16})
    local run = bt:add(G.prompts[1], {max_new_tokens = 1000})
    local other = bt:add(G.prompts[2], {max_new_tokens = 4})
    bt:step()
    bt:step()
    t.assert(#run.out > 0, "row 1 decodes")
    local long = {}
    for i = 1, 40 do long[i] = 3 + i % 20 end
    local wait = bt:add(long, {max_new_tokens = 5})
    bt:step() -- a first chunk of the long prompt
    t.assert(not wait.done and wait.filled > 0 and wait.filled < #long, "prefilled in part: " .. wait.filled)
    local n = #run.out
    bt:cancel(run)
    bt:cancel(wait)
    local ended = bt:step()
    t.assert(run.done and run.reason == "cancelled", "running row cancelled")
    t.assert(wait.done and wait.reason == "cancelled", "waiting row cancelled")
    t.assert_eq(#run.out, n) -- no token after the cancel
    t.assert_eq(#ended >= 2, true)
    while bt:size() > 0 do bt:step() end
    same(other.out, gen.generate(m, G.prompts[2], {max_new_tokens = 4}), "the other row")
    t.assert_error(function() bt:add({}, {}) end, "empty")
    t.assert_error(function() gen.batcher(m, {prefill_chunk = 0}) end, "prefill_chunk")
  end,
})

-- a request stand-in recording what the server answers (as test_serve.lua's)
local function fake(method, path, body, gone_after)
  local r = {sent = {}}
  function r:info() return {method = method, path = path, body = body or ""} end
  function r:respond(status, ct, b) self.status, self.ct, self.body = status, ct, b end
  function r:start(status, ct) self.status, self.ct = status, ct end
  function r:send(x) self.sent[#self.sent + 1] = x; return not (gone_after and #self.sent > gone_after) end
  function r:finish() self.finished = true end
  function r:gone() return false end
  return r
end

t.suite("serve_batch", {
  batched_requests_match_one_at_a_time = function()
    local dir = root .. "models/llama"
    local m = lfl.model.load(dir)
    local tok = lfl.tokenizer.load(root .. "serve/tokenizer.json")
    local s = lfl.serve.new{model = m, tokenizer = tok, template = lfl.template.get("chatml"), port = false,
      max_new_tokens = 16}
    local bodies = {
      '{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":9,"temperature":0}',
      '{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Hi"}],"max_tokens":6,"temperature":0}',
      '{"messages":[{"role":"user","content":"a b c d e f"}],"max_tokens":7,"temperature":0.9,"seed":5}',
      '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"stream":true}',
    }
    local alone = {}
    for i, b in ipairs(bodies) do
      alone[i] = fake("POST", "/v1/chat/completions", b)
      s:handle(alone[i])
    end
    local reqs = {}
    for i, b in ipairs(bodies) do reqs[i] = fake("POST", "/v1/chat/completions", b) end
    reqs[#reqs + 1] = fake("GET", "/v1/models")
    reqs[#reqs + 1] = fake("POST", "/v1/chat/completions", "{")
    s:handle_batch(reqs)
    local function content(r) return lfl.json.decode(r.body).choices[1].message.content end
    for i = 1, 3 do
      t.assert_eq(reqs[i].status, 200)
      t.assert_eq(content(reqs[i]), content(alone[i]))
      t.assert_eq(lfl.json.decode(reqs[i].body).usage.completion_tokens, lfl.json.decode(alone[i].body).usage.completion_tokens)
    end
    local function strip(r) return (table.concat(r.sent):gsub("chatcmpl%-%x+", ""):gsub('"created":%d+', "")) end
    t.assert_eq(strip(reqs[4]), strip(alone[4]))
    t.assert(reqs[4].finished, "stream finished")
    t.assert_eq(reqs[5].status, 200)
    t.assert_eq(reqs[6].status, 400)
    -- a streaming client that leaves cancels its row only
    local left = fake("POST", "/v1/chat/completions", bodies[4]:gsub('"max_tokens":5', '"max_tokens":12'), 2)
    local stay = fake("POST", "/v1/chat/completions", bodies[1])
    s:handle_batch({left, stay})
    t.assert(not table.concat(left.sent):find("[DONE]", 1, true), "the cancelled stream gets no [DONE]")
    t.assert_eq(content(stay), content(alone[1]))
  end,
})

t.suite("generate_unit", {
  rope_rows_kept = function()
    -- the cos/sin rows the decoder keeps per rope (looked up by position, grown past 256 rows) give the logits
    -- of rows computed for the positions given (position_ids: the computing path), for every rope type
    for _, name in ipairs({"llama", "llama_linear_rope", "llama_llama31rope", "llama_yarn_rope", "gemma3"}) do
      local m = lfl.model.load(root .. "models/" .. name)
      lfl.no_grad(function()
        for _, T in ipairs({10, 300}) do
          local r = {}
          for i = 1, T do r[i] = 3 + (i * 7) % 40 end
          local ids = lfl.tensor({r}, "i64")
          local kept = m:forward(ids)
          local given = m:forward(ids, {position_ids = lfl.arange(T, "i64"):view(1, T)})
          t.assert_eq(t.max_abs_diff(kept, given), 0, name .. " T " .. T)
        end
      end)
    end
  end,
  cache_matches_full_forward = function()
    local m = lfl.model.load(root .. "models/gemma2") -- window + softcaps
    local ids = lfl.tensor({{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}, "i64")
    lfl.no_grad(function()
      local full = m:forward(ids)
      local c = lfl.decoder.new_cache()
      local outs = {m:forward(ids:narrow(2, 1, 6), {cache = c})}
      for i = 7, 10 do outs[#outs + 1] = m:forward(ids:narrow(2, i, 1), {cache = c}) end
      t.assert(t.max_abs_diff(full, lfl.cat(outs, 2)) < 1e-5, "cached logits differ")
      t.assert_eq(c.len, 10)
    end)
  end,
  sampler_filters = function()
    local l = lfl.tensor({1.0, 3.0, 2.0, 0.5, 2.9})
    t.assert_eq(lfl.sample(l, {temperature = 0}), 1)
    -- repetition penalty divides positive logits: 3/2 = 1.5 < 2.9
    t.assert_eq(lfl.sample(l, {temperature = 0, repetition_penalty = 2}, {1}), 4)
    -- greedy reads the logits in place: ties go to the first index, a penalized
    -- negative logit is multiplied (-0.5 * 3 < -1), one below 1 lifts, repeats count once
    t.assert_eq(lfl.sample(lfl.tensor({2.0, 5.0, 5.0}), {temperature = 0}), 1)
    t.assert_eq(lfl.sample(lfl.tensor({-0.5, -1.0, -2.0}), {temperature = 0, repetition_penalty = 3}, {0, 0}), 1)
    t.assert_eq(lfl.sample(lfl.tensor({1.0, 3.0, 2.0}), {temperature = 0, repetition_penalty = 0.5}, {2, 2}), 2)
    t.assert_eq(lfl.sample(lfl.tensor({4.0, 3.0, 2.0}), {temperature = 0, repetition_penalty = 1.5}, {0, 7}), 1)
    lfl.manual_seed(3)
    local seen = {}
    for _ = 1, 200 do seen[lfl.sample(l, {temperature = 1, top_k = 2})] = true end
    t.assert(seen[1] and seen[4] and not seen[0] and not seen[2] and not seen[3], "top_k = 2 keeps ids 1 and 4 only")
    seen = {}
    for _ = 1, 200 do seen[lfl.sample(l, {temperature = 1, top_p = 0.01})] = true end
    t.assert(seen[1] and not seen[4], "tiny top_p keeps the top token")
    seen = {}
    -- min_p 0.5: p(2.0)/p(3.0) = e^-1 < 0.5 dropped, p(2.9)/p(3.0) = e^-0.1 kept
    for _ = 1, 200 do seen[lfl.sample(l, {temperature = 1, min_p = 0.5})] = true end
    t.assert(seen[1] and seen[4] and not seen[2] and not seen[0], "min_p")
    -- seeds reproduce
    local function draw(seed)
      lfl.manual_seed(seed)
      local r = {}
      for i = 1, 20 do r[i] = lfl.sample(l, {temperature = 2}) end
      return table.concat(r, ",")
    end
    t.assert_eq(draw(5), draw(5))
    t.assert(draw(5) ~= draw(6), "different seeds differ")
    t.assert_error(function() lfl.sample(l, {temperature = 1, top_p = 0}) end, "top_p")
  end,
  seeded_sampling_reproducible = function()
    local m = lfl.model.load(root .. "models/qwen2")
    local o = gen.with_defaults({max_new_tokens = 12, seed = 11})
    local a = gen.generate(m, {1, 5, 9}, o)
    local b = gen.generate(m, {1, 5, 9}, o)
    same(a, b, "same seed")
    t.assert_eq(#a, 12)
  end,
  detokenizer_utf8 = function()
    if not have_smol() then return end
    local _, tok = load_smol()
    local text = "héllo 🙂 wörld 日本語 ok"
    local ids = tok:encode(text, {add_special_tokens = false})
    local d = gen.detokenizer(tok)
    local parts = {}
    for _, id in ipairs(ids) do
      local s = d.push(id)
      t.assert(lfl.utf8_valid == nil or lfl.utf8_valid(s), "broken UTF-8 emitted")
      t.assert(not s:find("\239\191\189", 1, true), "U+FFFD emitted mid-character")
      parts[#parts + 1] = s
    end
    parts[#parts + 1] = d.flush()
    t.assert_eq(table.concat(parts), text)
  end,
  stop_strings_and_streaming = function()
    if not have_smol() then return end
    local m, tok = load_smol()
    local tpl = lfl.template.get("chatml")
    local msgs = {{role = "user", content = "List three colors."}}
    local full = gen.reply(m, tok, tpl, msgs, {max_new_tokens = 20})
    t.assert(full:find("Blue", 1, true), "reference reply: " .. full)
    local chunks = {}
    local txt, reason = gen.reply(m, tok, tpl, msgs, {max_new_tokens = 20, stop = "Blue",
      on_text = function(s) chunks[#chunks + 1] = s end})
    t.assert_eq(txt, full:sub(1, full:find("Blue", 1, true) - 1))
    t.assert_eq(table.concat(chunks), txt)
    t.assert_eq(reason, "stop")
    -- a callback returning false stops early
    local n = 0
    local _, r2 = gen.reply(m, tok, tpl, msgs, {max_new_tokens = 20, on_text = function() n = n + 1; return n < 2 end})
    t.assert_eq(r2, "cancelled")
  end,
  lfl_chat_text_and_stream = function()
    if not have_smol() then return end
    local m, tok = load_smol()
    local msgs = {{role = "user", content = "What is the capital of France?"}}
    local o = {tokenizer = tok, template = "chatml", temperature = 0, max_new_tokens = 10}
    local text, reason, usage = lfl.chat(m, msgs, o)
    t.assert(text:find("Paris", 1, true), text)
    t.assert_eq(usage.completion_tokens, #tok:encode(text, {add_special_tokens = false}))
    t.assert_eq(reason, "stop")
    o.stream = true
    local parts = {}
    for d in lfl.chat(m, msgs, o) do parts[#parts + 1] = d end
    t.assert(#parts > 1, "streamed in pieces")
    t.assert_eq(table.concat(parts), text)
    t.assert(lfl.is_grad_enabled(), "grad mode restored")
  end,
})

t.run()
