-- A reward model on the real small model (SmolLM2-135M-Instruct, the Q4_1
-- GGUF in ~/.cache/lfl/models) from training to scores: stage rm with
-- do_predict writes LlamaFactory's generated_predictions.jsonl (one
-- {"chosen", "rejected"} line per eval pair, 2 decimals) and the predict
-- metrics, which agree with the trainer's eval of the same pairs; predicting
-- again from the saved adapter + value_head.safetensors gives the same
-- scores; `lfl serve --stage rm` answers POST /v1/score/evaluation with the
-- scores the rm stage computed for the same texts, and the refusals
-- (no value head, chat on a reward model, a predict run without a head).
local t = lfl.test
local fmt = string.format
local J = require("lfl.text.pyjson")
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_rm_score_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_rmscore"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function recipe(over)
  local r = {model_name_or_path = model, stage = "rm", dataset = "preference_demo", eval_dataset = "preference_demo",
    template = "smollm", cutoff_len = 40, max_samples = 6, per_device_train_batch_size = 2,
    per_device_eval_batch_size = 4, max_steps = 3, logging_steps = 1, save_steps = 1000, learning_rate = 2e-3,
    overwrite_output_dir = true, disable_tqdm = true, seed = 7, do_predict = true, output_dir = tmp .. "/rm"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function read(p)
  local f = assert(io.open(p, "rb"), p)
  local s = f:read("*a")
  f:close()
  return s
end

local r2 = function(x) return require("lfl.infer.predict").round(x, 2) end
local function collect() collectgarbage(); collectgarbage() end

local trained -- the first run's scores, for the later cases

-- a request stand-in recording the answer (as tests/lua/test_serve.lua)
local function fake(method, path, body)
  local r = {}
  function r:info() return {method = method, path = path, body = body or ""} end
  function r:respond(status, ct, b) self.status, self.ct, self.body = status, ct, b end
  function r:finish() self.finished = true end
  function r:gone() return false end
  return r
end

-- cases run in this order: the later ones use the first run's reward model
local cases, order = {}, {}
setmetatable(cases, {__newindex = function(tb, k, v) rawset(tb, k, v); order[#order + 1] = k end})

cases.train_then_predict = function()
  local r = require("lfl.cmd.train").run_table(recipe(), {}, "test")
  local p = r.predict
  local n = #p.rows
  t.assert_eq(n, 6)
  t.assert_eq(#p.scores.chosen, n)
  -- LlamaFactory's file: "\n".join(json.dumps({"chosen": round(c, 2), "rejected": round(r, 2)}))
  local text = read(tmp .. "/rm/generated_predictions.jsonl")
  t.assert(text:sub(-1) ~= "\n", "no newline after the last line, as LlamaFactory writes it")
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  t.assert_eq(#lines, n)
  local right, loss = 0, 0
  for i, line in ipairs(lines) do
    t.assert(line:match('^{"chosen": %-?%d+%.%d%d?, "rejected": %-?%d+%.%d%d?}$'), "line " .. i .. ": " .. line)
    local d = lfl.json.decode(line)
    local c, rj = p.scores.chosen[i], p.scores.rejected[i]
    t.assert_eq(d.chosen, r2(c), "line " .. i)
    t.assert_eq(d.rejected, r2(rj), "line " .. i)
    if c > rj then right = right + 1 end
    loss = loss + math.log(1 + math.exp(-(c - rj)))
  end
  local m = r.metrics
  t.assert_close(m.predict_accuracy, right / n, 1e-12)
  t.assert_close(m.predict_loss, loss / n, 1e-9)
  -- the trainer's final eval scored the same pairs in the same batches
  t.assert_close(m.predict_loss, m.eval_loss, 1e-5)
  t.assert_close(m.predict_accuracy, m.eval_accuracy, 1e-12)
  for _, k in ipairs({"predict_runtime", "predict_samples_per_second", "predict_steps_per_second"}) do
    t.assert(type(m[k]) == "number" and m[k] >= 0, k)
  end
  local saved = J.decode(read(tmp .. "/rm/predict_results.json"))
  t.assert_close(J.num(saved.predict_loss), m.predict_loss, 1e-12)
  t.assert(J.decode(read(tmp .. "/rm/all_results.json")).train_loss ~= nil, "all_results.json keeps the train metrics")
  print(fmt("      predict loss %.4f accuracy %.2f; pair 1: chosen %.4f rejected %.4f", m.predict_loss,
    m.predict_accuracy, p.scores.chosen[1], p.scores.rejected[1]))
  trained = p
  collect()
end

cases.predict_from_saved_reward_model = function()
  t.assert(trained, "needs train_then_predict")
  local rc = recipe({adapter_name_or_path = tmp .. "/rm", output_dir = tmp .. "/pred"})
  rc.dataset = nil
  local r = require("lfl.cmd.train").run_table(rc, {"do_train=false"}, "test")
  local p = r.predict
  t.assert_eq(#p.scores.chosen, #trained.scores.chosen)
  for i = 1, #p.scores.chosen do
    t.assert_close(p.scores.chosen[i], trained.scores.chosen[i], 1e-4, "chosen " .. i)
    t.assert_close(p.scores.rejected[i], trained.scores.rejected[i], 1e-4, "rejected " .. i)
  end
  t.assert_eq(read(tmp .. "/pred/generated_predictions.jsonl"):gsub("\n", "") ~= "", true)
  collect()
end

cases.predict_needs_a_value_head = function()
  t.assert_error(function()
    local rc = recipe({output_dir = tmp .. "/nohead"})
    rc.dataset = nil
    require("lfl.cmd.train").run_table(rc, {"do_train=false"}, "test")
  end, "needs a trained value head")
  t.assert_error(function()
    require("lfl.cmd.train").run_table(recipe({stage = "dpo", output_dir = tmp .. "/dpo"}), {}, "test")
  end, "implemented for stage sft")
  collect()
end

cases.serve_scores_equal_the_rm_stage = function()
  t.assert(trained, "needs train_then_predict")
  local S = require("lfl.cmd.serve")
  local o = S.parse({"--model", model, "--adapter", tmp .. "/rm", "--stage", "rm", "--port", "0"})
  local m = require("lfl.cmd.chat").load(o)
  local tok = lfl.chat.tokenizer(m)
  local srv = require("lfl.infer.serve").new{model = m, tokenizer = tok, template = lfl.template.get("smollm"),
    port = false, value_head = S.value_head(m, o), model_name = "rm"}
  -- the texts of the scored pairs (chat template and EOS included): they
  -- tokenize back to the ids the rm stage scored
  local texts, want = {}, {}
  for i, row in ipairs(trained.rows) do
    for _, side in ipairs({"chosen", "rejected"}) do
      local ids = row[side .. "_input_ids"]
      local s = tok:decode(ids, {skip_special_tokens = false})
      local back = tok:encode(s, {add_special_tokens = false})
      t.assert_eq(table.concat(back, ","), table.concat(ids, ","), "pair " .. i .. " " .. side .. " round trip")
      texts[#texts + 1] = s
      want[#want + 1] = trained.scores[side][i]
    end
  end
  local req = fake("POST", "/v1/score/evaluation", J.encode(J.odict("model", "my-rm", "messages", J.list(texts))))
  srv:handle(req)
  t.assert_eq(req.status, 200, tostring(req.body))
  local d = J.decode(req.body)
  t.assert_eq(d.object, "score.evaluation")
  t.assert_eq(d.model, "my-rm")
  t.assert(d.id:match("^scoreval%-%x+$"), d.id)
  t.assert_eq(#d.scores, #want)
  local worst = 0
  for i, v in ipairs(d.scores) do
    v = J.num(v)
    worst = math.max(worst, math.abs(v - want[i]))
    t.assert_close(v, want[i], 1e-4, "score " .. i)
  end
  print(fmt("      /v1/score/evaluation: %d texts, largest difference to the rm stage %.2e", #want, worst))
  -- max_length cuts each text on the right: the score of the first 5 tokens
  local ids5 = {}
  for k = 1, 5 do ids5[k] = trained.rows[1].chosen_input_ids[k] end
  local req2 = fake("POST", "/v1/score/evaluation", J.encode(J.odict("model", "m", "messages", J.list({texts[1]}),
    "max_length", 5)))
  srv:handle(req2)
  t.assert_eq(req2.status, 200, tostring(req2.body))
  local s5 = require("lfl.train.value_head").score_ids(m, srv.value_head, {ids5})[1]
  t.assert_close(J.num(J.decode(req2.body).scores[1]), s5, 1e-5)
  -- a reward model does not chat (LlamaFactory: 405 Not allowed)
  local req3 = fake("POST", "/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"hi"}]}')
  srv:handle(req3)
  t.assert_eq(req3.status, 405)
  t.assert(req3.body:find("Not allowed", 1, true), req3.body)
  collect()
end

cases.serve_refuses_scores_without_a_value_head = function()
  local S = require("lfl.cmd.serve")
  t.assert_error(function()
    local o = S.parse({"--model", model, "--stage", "rm"})
    S.value_head(lfl.model.load(model), o)
  end, "needs the reward model's value_head.safetensors")
  t.assert_error(function() S.parse({"--model", model, "--stage", "ppo"}) end, "stage must be sft")
  -- LlamaFactory's recipe form (llamafactory-cli api with stage: rm)
  local y = tmp .. "/serve_rm.yaml"
  local f = assert(io.open(y, "w"))
  f:write("model_name_or_path: " .. model .. "\nadapter_name_or_path: " .. tmp .. "/rm\ntemplate: smollm\n"
    .. "finetuning_type: lora\nstage: rm\n")
  f:close()
  local o = S.parse({y})
  t.assert_eq(o.stage, "rm")
  t.assert_eq(o.adapter, tmp .. "/rm")
  t.assert_eq(o.model, model)
  local m = lfl.model.load(model)
  local srv = require("lfl.infer.serve").new{model = m, tokenizer = lfl.chat.tokenizer(m),
    template = lfl.template.get("smollm"), port = false}
  local req = fake("POST", "/v1/score/evaluation", '{"model":"m","messages":["a"]}')
  srv:handle(req)
  t.assert_eq(req.status, 405)
  local e = J.decode(req.body).error
  t.assert(e.message:find("no value head", 1, true), e.message)
  collect()
end

for _, k in ipairs(order) do t.case("rm_score_smollm2." .. k, cases[k]) end
local ok = t.run()
lfl.fs.remove(tmp)
return ok
