-- Dataset descriptions, loading and aligning: LlamaFactory's own dataset_info.json
-- and demo files load unchanged; mappers, CSV/JSONL/text, validation, merging;
-- non-string text fields refused with file:row, key and what was expected.
local t = lfl.test
local lf = lfl.home .. "/../shared/data/llamafactory-data"
local tmpdir = os.tmpname() .. "_data"
os.execute("mkdir -p " .. tmpdir)

local function write(name, s) local f = assert(io.open(tmpdir .. "/" .. name, "wb")); f:write(s); f:close() end

write("dataset_info.json", [[{"bad": {"file_name": "bad.json", "formatting": "sharegpt"},
  "csvset": {"file_name": "rows.csv"}, "lines": {"file_name": "lines.jsonl", "columns": {"prompt": "q", "response": "a"}},
  "txt": {"file_name": "t.txt", "columns": {"prompt": "text"}},
  "alp": {"file_name": "alp.json", "columns": {"system": "system", "history": "history"}},
  "alpl": {"file_name": "alp.jsonl"},
  "alpref": {"file_name": "alpref.json", "ranking": true, "columns": {"chosen": "chosen", "rejected": "rejected"}},
  "sg": {"file_name": "sg.json", "formatting": "sharegpt", "columns": {"system": "system", "tools": "tools"}},
  "sgpref": {"file_name": "sgpref.json", "formatting": "sharegpt", "ranking": true,
    "columns": {"chosen": "chosen", "rejected": "rejected"}},
  "oai": {"file_name": "oai.json", "formatting": "openai", "columns": {"messages": "messages"}}}]])

t.suite("data", {
  llamafactory_dataset_info = function()
    local d = lfl.data.load({dataset = "identity,alpaca_en_demo", dataset_dir = lf})
    t.assert_eq(#d.train, 91 + 999)
    local id = d.train[1]
    t.assert_eq(id.prompt[1].role, "user"); t.assert_eq(id.response[1].role, "assistant")
    t.assert(id.response[1].content:find("{{name}}", 1, true), "identity placeholders kept")
    local tool = lfl.data.load({dataset = "glaive_toolcall_en_demo", dataset_dir = lf, max_samples = 50})
    t.assert_eq(#tool.train, 50)
    t.assert(tool.train[1].tools:find("name", 1, true))
    local roles = {}
    for _, ex in ipairs(tool.train) do for _, m in ipairs(ex.prompt) do roles[m.role] = true end end
    t.assert(roles["function"] and roles.observation, "function/observation roles aligned")
    local pref = lfl.data.load({dataset = "dpo_en_demo", dataset_dir = lf, stage = "dpo"})
    t.assert_eq(#pref.train, 300); t.assert_eq(#pref.train[1].response, 2)
    local kto = lfl.data.load({dataset = "kto_en_demo", dataset_dir = lf, stage = "kto"})
    local pos = 0
    for _, ex in ipairs(kto.train) do if ex.kto_tag then pos = pos + 1; t.assert(ex.response[2].content == "") end end
    t.assert_eq(pos, 150)
    local pt = lfl.data.load({dataset = "wiki_demo", dataset_dir = lf, stage = "pt"})
    t.assert_eq(#pt.train, 30)
    t.assert_error(function() lfl.data.load({dataset = "dpo_en_demo", dataset_dir = lf, stage = "sft"}) end,
      "not applicable")
    t.assert_error(function() lfl.data.load({dataset = "nope", dataset_dir = lf}) end, "no dataset named 'nope'")
  end,

  validation_and_strict = function()
    write("bad.json", [[
[{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
 {"conversations": [{"from": "gpt", "value": "wrong order"}, {"from": "human", "value": "x"}]},
 {"conversations": [{"from": "human", "value": "odd"}]}]
]])
    local d = lfl.data.load({dataset = "bad", dataset_dir = tmpdir})
    t.assert_eq(#d.train, 1)
    t.assert_eq(d.stats.total, 3)
    local s = lfl.data.summary(d.stats)
    t.assert(s:find("1 skipped: message 1 has role 'gpt'", 1, true), s)
    t.assert(s:find("even number", 1, true), s)
    local e = t.assert_error(function() lfl.data.load({dataset = "bad", dataset_dir = tmpdir, strict = true}) end, "bad.json:2")
    t.assert(e:find("role 'gpt'", 1, true), e)
  end,

  formats = function()
    write("rows.csv", 'instruction,input,output\n"say ""hi""",,hello\n"multi\nline",x,y\n')
    local d = lfl.data.load({dataset = "csvset", dataset_dir = tmpdir})
    t.assert_eq(#d.train, 2)
    t.assert_eq(d.train[1].prompt[1].content, 'say "hi"')
    t.assert_eq(d.train[2].prompt[1].content, "multi\nline\nx")
    write("lines.jsonl", '{"q": "a?", "a": "b"}\n\n{"q": "c?", "a": "d"}\n')
    t.assert_eq(#lfl.data.load({dataset = "lines", dataset_dir = tmpdir}).train, 2)
    write("t.txt", "first line\n\nsecond line\n")
    local p = lfl.data.load({dataset = "txt", dataset_dir = tmpdir, stage = "pt"})
    t.assert_eq(#p.train, 2); t.assert_eq(p.train[2].prompt[1].content, "second line")
    write("broken.jsonl", '{"q": "a?", "a": "b"}\n{"q": \n')
    t.assert_error(function() lfl.data.read_records(tmpdir .. "/broken.jsonl") end, "broken.jsonl: line 2")
  end,

  mapper_in_recipe = function()
    local d = lfl.data.load({dataset = "mine", datasets = {mine = {
      records = {{question = "2+2?", answer = "4"}, {question = "3+3?", answer = "6"}, {question = "bad"}},
      mapper = function(r)
        assert(r.answer, "no answer")
        return {prompt = {{role = "user", content = r.question}}, response = {{role = "assistant", content = r.answer}}}
      end}}})
    t.assert_eq(#d.train, 2); t.assert_eq(d.train[2].response[1].content, "6")
    t.assert(lfl.data.summary(d.stats):find("mapper error", 1, true))
  end,

  merge_and_split = function()
    local a = {}; for i = 1, 100 do a[i] = {instruction = "a" .. i, output = "x"} end
    local b = {}; for i = 1, 10 do b[i] = {instruction = "b" .. i, output = "y"} end
    local ds = {A = {records = a}, B = {records = b}}
    local c = lfl.data.load({dataset = "A,B", datasets = ds})
    t.assert_eq(#c.train, 110)
    local under = lfl.data.load({dataset = "A,B", datasets = ds, mix_strategy = "interleave_under", interleave_probs = "0.5,0.5", seed = 1})
    local nb = 0
    for _, e in ipairs(under.train) do if e.prompt[1].content:sub(1, 1) == "b" then nb = nb + 1 end end
    t.assert(nb <= 10 and #under.train < 40, "interleave_under stops when B runs out: " .. #under.train)
    local over = lfl.data.load({dataset = "A,B", datasets = ds, mix_strategy = "interleave_over", seed = 1})
    t.assert(#over.train >= 190, "interleave_over runs until A is exhausted: " .. #over.train)
    local s1 = lfl.data.load({dataset = "A", datasets = ds, val_size = 0.2, seed = 3})
    local s2 = lfl.data.load({dataset = "A", datasets = ds, val_size = 0.2, seed = 3})
    t.assert_eq(#s1.eval, 20); t.assert_eq(#s1.train, 80)
    t.assert_eq(s1.eval[1].prompt[1].content, s2.eval[1].prompt[1].content, "seeded split is reproducible")
    local smp = lfl.data.load({dataset = "B", datasets = {B = {records = b, num_samples = 25}}})
    t.assert_eq(#smp.train, 25)
  end,

  -- LlamaFactory's converters pass a non-string text field on to "\n".join
  -- or the template formatters, which raise; lfl refuses it too (in strict
  -- mode or not), naming the file, the row, the key and what was expected,
  -- instead of training on "table: 0x..." or a stringified number
  non_string_fields_refused = function()
    local function refused(name, text, file, row, what, got, args)
      local ext = file:match("%.(%w+)$")
      write(file, text)
      local a = {dataset = name, dataset_dir = tmpdir}
      for k, v in pairs(args or {}) do a[k] = v end
      local e = t.assert_error(function() lfl.data.load(a) end, nil)
      local where = tmpdir .. "/" .. file .. ":" .. row .. ": "
      t.assert(e:sub(1, #where) == where, "names file:row: " .. e)
      t.assert(e:find(what, 1, true), "names the key (" .. what .. "): " .. e)
      t.assert(e:find(got .. " where a string is expected", 1, true), "says what it got and expected: " .. e)
      t.assert(e:find("(dataset '" .. name .. "')", 1, true), e)
      t.assert(ext)
    end
    local ok1 = '{"instruction": "q", "output": "a"}'
    refused("alp", '[' .. ok1 .. ', {"instruction": "q", "output": ["a", "b"]}]', "alp.json", 2,
      "column 'output'", "a list (JSON array)")
    refused("alp", '[{"instruction": {"x": 1}, "output": "a"}]', "alp.json", 1, "column 'instruction'",
      "an object (JSON object)")
    refused("alp", '[' .. ok1 .. ', ' .. ok1 .. ', {"instruction": "q", "input": 42, "output": "a"}]', "alp.json", 3,
      "column 'input'", "a number (42)")
    refused("alp", '[{"instruction": "q", "output": 1.5}]', "alp.json", 1, "column 'output'", "a number (1.5)")
    refused("alp", '[{"instruction": "q", "output": true}]', "alp.json", 1, "column 'output'", "a boolean (true)")
    refused("alp", '[{"instruction": "q", "output": "a", "system": 7}]', "alp.json", 1, "column 'system'", "a number (7)")
    refused("alp", '[{"instruction": "q", "output": "a", "history": [["h", 3]]}]', "alp.json", 1,
      "column 'history' entry 1 (answer)", "a number (3)")
    -- strict or not, and from JSONL (the row is the record's number)
    refused("alpl", ok1 .. '\n' .. '{"instruction": "q", "output": {"a": 1}}\n', "alp.jsonl", 2,
      "column 'output'", "an object (JSON object)", {strict = true})
    refused("alpref", '[{"instruction": "q", "chosen": "y", "rejected": 0}]', "alpref.json", 1, "column 'rejected'",
      "a number (0)", {stage = "dpo"})
    local conv = '{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}'
    refused("sg", '[{"conversations": [' .. conv .. ']}, {"conversations": [{"from": "human", "value": "hi"}, '
      .. '{"from": "gpt", "value": {"answer": 1}}]}]', "sg.json", 2,
      "message 2 of column 'conversations': 'value'", "an object (JSON object)")
    refused("sg", '[{"conversations": [{"from": "system", "value": ["s"]}, ' .. conv .. ']}]', "sg.json", 1,
      "message 1 of column 'conversations': 'value'", "a list (JSON array)")
    refused("sg", '[{"system": false, "conversations": [' .. conv .. ']}]', "sg.json", 1, "column 'system'",
      "a boolean (false)")
    refused("sgpref", '[{"conversations": [{"from": "human", "value": "hi"}], "chosen": {"from": "gpt", "value": "a"}, '
      .. '"rejected": {"from": "gpt", "value": 5}}]', "sgpref.json", 1, "column 'rejected': 'value'", "a number (5)",
      {stage = "dpo"})
    refused("oai", '[{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, '
      .. '{"role": "tool", "content": 12}, {"role": "assistant", "content": "z"}]}]', "oai.json", 1,
      "message 3 of column 'messages': 'content'", "a number (12)")
    -- null and missing optional fields keep working; tools keep their own types
    write("alp.json", '[{"instruction": "q", "input": null, "output": "a", "system": null, "history": null}, '
      .. '{"instruction": "q2", "output": "b"}]')
    local d = lfl.data.load({dataset = "alp", dataset_dir = tmpdir})
    t.assert_eq(#d.train, 2); t.assert_eq(d.train[1].prompt[1].content, "q"); t.assert_eq(d.train[1].system, "")
    write("sg.json", '[{"system": null, "tools": [{"name": "f", "parameters": {}}], "conversations": ['
      .. '{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{\\"name\\": \\"f\\"}"}, '
      .. '{"from": "observation", "value": "ok"}, {"from": "gpt", "value": null}]}]')
    local g = lfl.data.load({dataset = "sg", dataset_dir = tmpdir})
    t.assert_eq(#g.train, 1); t.assert(g.train[1].tools:find('"name"', 1, true), g.train[1].tools)
    t.assert_eq(g.train[1].response[1].content, "")
    -- a mapper's non-string content is a skipped row (the mapper's output is checked)
    local m = lfl.data.load({dataset = "mm", datasets = {mm = {records = {{q = "a"}, {q = "b"}}, mapper = function(r)
      return {prompt = {{role = "user", content = r.q}}, response = {{role = "assistant", content = r.q == "a" and 5 or "x"}}}
    end}}})
    t.assert_eq(#m.train, 1)
    t.assert(lfl.data.summary(m.stats):find("response message 1 has no string content", 1, true))
  end,
})

t.run()
os.execute("rm -rf " .. tmpdir)
