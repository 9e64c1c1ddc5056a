-- lfl eval: LlamaFactory's MMLU prompt format, the evaluator on the demo set
-- (tests/golden/eval/mmlu_demo) with the tiny llama + 64-token test tokenizer
-- (predictions checked against an independent full forward), results files,
-- and BLEU/ROUGE over a predictions file.
local t = lfl.test
local ev = require("lfl.infer.evaluate")
local root = lfl.home .. "/tests/golden/"

local function tiny()
  local dir = os.tmpname() .. "_tiny"
  os.execute(string.format("mkdir -p '%s' && cp '%smodels/llama/config.json' '%smodels/llama/model.safetensors' '%sserve/tokenizer.json' '%s/'",
    dir, root, root, root, dir))
  return dir
end

t.suite("eval", {
  prompt_format = function()
    local ex = {question = "Q?", A = "a", B = "b", C = "c", D = "d", answer = "B"}
    local msgs = ev.format_example(ex, {{question = "S?", A = "1", B = "2", C = "3", D = "4", answer = "C"}}, "math", "en")
    t.assert_eq(#msgs, 3)
    t.assert_eq(msgs[1].content, "The following are multiple choice questions (with answers) about math.\n\n"
      .. "S?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:")
    t.assert_eq(msgs[2].content, "C")
    t.assert_eq(msgs[3].content, "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:")
    -- fewshot template: user as is, assistant + "\n\n"
    local tpl = ev.fewshot_template()
    local pairs_ = tpl:encode_multiturn({{role = "user", content = "u"}, {role = "assistant", content = "C"},
      {role = "user", content = "v"}, {role = "assistant", content = "B"}})
    t.assert_eq(lfl.template.join(pairs_[1][2]), "C\n\n")
  end,
  mmlu_demo_tiny = function()
    local dir = tiny()
    local m = lfl.model.load(dir)
    local tok = lfl.tokenizer.load(dir)
    local save = os.tmpname() .. "_eval"
    local lines = {}
    local acc, res = ev.run{model = m, tokenizer = tok, template = ev.fewshot_template(), task = "mmlu_demo_test",
      task_dir = root .. "eval", n_shot = 2, seed = 1, save_dir = save, log = function(s) lines[#lines + 1] = s end}
    t.assert(acc.Average and acc.STEM and acc["Social Sciences"], "categories")
    t.assert(acc.Humanities == nil, "empty categories are not reported")
    local n = 0
    for _ in pairs(res.arithmetic) do n = n + 1 end
    t.assert_eq(n, 4)
    t.assert(table.concat(lines, "\n"):find("        Average: %d+%.%d%d"), table.concat(lines, "\n"))
    local f = assert(io.open(save .. "/results.json"))
    local saved = lfl.json.decode(f:read("*a"))
    f:close()
    t.assert_eq(saved.geography["0"], res.geography["0"])
    -- zero-shot: the choice is the argmax over the letters' logits at the last position
    local _, r0 = ev.run{model = m, tokenizer = tok, template = ev.fewshot_template(), task = "mmlu_demo_test",
      task_dir = root .. "eval", n_shot = 0, log = function() end}
    local ex = {question = "What is the capital of France?", A = "Berlin", B = "Madrid", C = "Paris", D = "Lisbon"}
    local ids = lfl.generate.prompt_ids(tok, ev.fewshot_template(), ev.format_example(ex, {}, "world geography", "en"))
    local logits = m:forward(lfl.tensor({ids}, "i64"))
    local best, bv = nil, -math.huge
    for _, ch in ipairs({"A", "B", "C", "D"}) do
      local id = tok:encode(ch, {add_special_tokens = false})
      local v = logits[{1, #ids, id[#id] + 1}]
      if v > bv then best, bv = ch, v end
    end
    t.assert_eq(r0.geography["0"], best)
    os.execute("rm -rf '" .. dir .. "' '" .. save .. "'")
  end,
  bad_inputs = function()
    t.assert_error(function() ev.run{task = "nosplit", tokenizer = {}, template = {}} end, "<name>_<split>")
    t.assert_error(function() ev.run{task = "x_test", task_dir = "/nonexistent", tokenizer = {}} end, "mapping.json")
  end,
  predictions_file = function()
    local p = os.tmpname()
    local f = io.open(p, "w")
    f:write('{"predict": "hello world", "label": "hello world"}\n{"predict": "x", "label": "y"}\n')
    f:close()
    local s, n = ev.similarity_file(p)
    t.assert_eq(n, 2)
    t.assert_close(s["bleu-4"], 50, 1e-9)
    f = io.open(p, "w"); f:write('{"predict": 1}\n'); f:close()
    t.assert_error(function() ev.similarity_file(p) end, ":1: expected")
    os.remove(p)
  end,
})

t.run()
