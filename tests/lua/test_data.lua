-- Dataset descriptions, loading and aligning: LlamaFactory's own dataset_info.json
-- and demo files load unchanged; mappers, CSV/JSONL/text, validation, merging.
local t = lfl.test
local lf = lfl.home .. "/../shared/data/llamafactory-data"
local tmpdir = os.tmpname() .. "_data"
os.execute("mkdir -p " .. tmpdir)

local function write(name, s) local f = assert(io.open(tmpdir .. "/" .. name, "wb")); f:write(s); f:close() end

write("dataset_info.json", [[{"bad": {"file_name": "bad.json", "formatting": "sharegpt"},
  "csvset": {"file_name": "rows.csv"}, "lines": {"file_name": "lines.jsonl", "columns": {"prompt": "q", "response": "a"}},
  "txt": {"file_name": "t.txt", "columns": {"prompt": "text"}}}]])

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
})

t.run()
os.execute("rm -rf " .. tmpdir)
