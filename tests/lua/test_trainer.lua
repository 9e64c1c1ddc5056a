-- lfl.trainer in pieces (lfl.Trainer, lua/l_trainer.c over core/train/trainer.c)
-- on the tiny golden llama: t:step() N times equals lfl.trainer.run with
-- max_steps N (same losses, same adapter, bit for bit); t.state and tostring;
-- save mid-way and a new trainer that loads the checkpoint continues with the
-- same losses; evaluate; the C clipping against optim.clip_grad_norm; a loss
-- that turns NaN is logged as NaN, makes no update and stops the run with a
-- checkpoint; bad arguments and an unwritable output_dir are refused early.
local t = lfl.test
local fmt = string.format
local home = lfl.home
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_trainer"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp .. "/model")
for _, f in ipairs({"tests/golden/models/llama/config.json", "tests/golden/models/llama/model.safetensors",
                    "tests/golden/serve/tokenizer.json"}) do
  lfl.fs.symlink(home .. "/" .. f, tmp .. "/model/" .. f:match("[^/]+$"))
end
-- the tokenized-data cache goes to the scratch folder
local real_getenv = os.getenv
os.getenv = function(k)
  if k == "LFL_CACHE" then return tmp .. "/cache" end
  if k == "TENSORBOARD_LOGGING_DIR" then return nil end -- report_to tensorboard writes under output_dir/runs
  return real_getenv(k)
end

local function recipe(over)
  local r = {model_name_or_path = tmp .. "/model", stage = "sft", dataset = "alpaca_demo", template = "chatml",
    cutoff_len = 24, max_samples = 20, per_device_train_batch_size = 2, gradient_accumulation_steps = 2,
    max_steps = 6, logging_steps = 1, save_steps = 1000, learning_rate = 1e-2, lr_scheduler_type = "cosine",
    warmup_steps = 1, max_grad_norm = 0.1, overwrite_output_dir = true, disable_tqdm = true, seed = 5,
    finetuning_type = "lora", output_dir = tmp .. "/run"}
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function logged(dir)
  local out = {}
  for line in io.lines(dir .. "/trainer_log.jsonl") do
    local r = lfl.json.decode(line)
    if r.loss then out[r.current_steps] = r end
  end
  return out
end

local function same_tensors(a, b, what)
  local n = 0
  for k, v in pairs(a) do
    t.assert(b[k], what .. ": " .. k .. " missing")
    t.assert_eq(t.max_abs_diff(v, b[k]), 0, what .. ": " .. k .. " differs")
    n = n + 1
  end
  for k in pairs(b) do t.assert(a[k], what .. ": extra " .. k) end
  t.assert(n > 0, what .. ": no tensors")
end

-- the trainable tensors as plain copies, by name
local function snapshot(tr)
  local out = {}
  for i, n in ipairs(tr.names) do out[n] = tr.params[i]:detach():clone() end
  return out
end

t.suite("trainer", {
  step_by_step_equals_run = function()
    local a = lfl.args.resolve(recipe({output_dir = tmp .. "/whole"}), {}, "test")
    -- the exact numbers (the log's JSON keeps 15 digits)
    local ref = {}
    local res = lfl.trainer.run(a, {on_step = function(st, info)
      ref[st.global_step] = {loss = info.loss, grad_norm = info.grad_norm, lr = info.lr, epoch = st.epoch_float}
    end})
    t.assert_eq(#logged(a.output_dir), 6, "six log lines")
    local tr = lfl.trainer(recipe({output_dir = tmp .. "/steps"}))
    t.assert(tostring(tr):find("step 0/6", 1, true), "tostring before the first step: " .. tostring(tr))
    t.assert_eq(tr.state.global_step, 0)
    t.assert(tr.state.loss == nil, "no loss before the first step")
    for s = 1, 6 do
      local info = tr:step()
      t.assert_eq(info.loss, ref[s].loss, fmt("step %d loss %.17g vs %.17g", s, info.loss, ref[s].loss))
      t.assert_eq(info.grad_norm, ref[s].grad_norm, "step " .. s .. " grad_norm")
      t.assert_eq(info.lr, ref[s].lr, "step " .. s .. " lr")
      local st = tr.state
      t.assert_eq(st.global_step, s)
      t.assert_eq(st.total_steps, 6)
      t.assert_eq(st.loss, info.loss, "state.loss is the last step's")
      t.assert_eq(st.lr, info.lr)
      t.assert_eq(st.grad_norm, info.grad_norm)
      t.assert_eq(st.epoch, ref[s].epoch, "state.epoch is HF's float epoch")
      t.assert_eq(st.gradient_accumulation_steps, 2)
      t.assert_eq(st.accum_pos, 0, "no micro-batch pending between steps")
      t.assert(st.tokens > 0 and st.tokens_per_second > 0, "tokens counted")
      t.assert_eq(st.micro_batches, 2 * s, "two micro-batches a step")
      t.assert(tostring(tr):find(fmt("step %d/6", s), 1, true), tostring(tr))
    end
    t.assert(tr:done() and tr.state.done, "done after max_steps")
    t.assert(tr:step() == nil, "a step after the end does nothing")
    t.assert_eq(tr.global_step, 6)
    -- the Lua-side parts are reachable for inspection
    t.assert(tr.model and tr.optimizer and tr.tokenizer and tr.template and tr.approach and tr.args, "parts")
    t.assert_eq(#tr.params, #tr.names)
    t.assert_error(function() tr.loss = 1 end, "read-only")
    local fin = tr:finish()
    t.assert_eq(fin.metrics.train_loss, res.metrics.train_loss, "train_loss")
    t.assert_eq(fin.metrics.epoch, res.metrics.epoch, "epoch")
    -- HF's speed_metrics: max_steps x the total batch (6 x 2 x 2) over the runtime
    t.assert_close(fin.metrics.train_samples_per_second, 24 / fin.metrics.train_runtime, 1e-9, "samples/s")
    same_tensors(lfl.safetensors.load(tmp .. "/whole/adapter_model.safetensors"),
      lfl.safetensors.load(tmp .. "/steps/adapter_model.safetensors"), "adapter")
    -- the final trainer_state.json reads back
    local state = lfl.json.decode(io.open(tmp .. "/steps/trainer_state.json"):read("*a"))
    t.assert_eq(state.global_step, 6)
    t.assert_eq(#state.log_history, 6)
  end,

  logging_window = function()
    -- logging_steps 3: a log line carries the mean of its three step losses (HF's Trainer)
    local steps = {}
    local dir = tmp .. "/win"
    local tr = lfl.trainer(recipe({output_dir = dir, logging_steps = 3, max_steps = 5}))
    for s = 1, 5 do steps[s] = tr:step().loss end
    local mean3 = ((steps[1] + steps[2]) + steps[3]) / 3
    local log = logged(dir)
    t.assert(log[1] == nil and log[2] == nil, "no log line before step 3")
    t.assert_close(log[3].loss, mean3, 1e-13, "step 3 logs the window's mean")
    t.assert_close(log[5].loss, (steps[4] + steps[5]) / 2, 1e-13, "the last step closes a window of two")
    t.assert_eq(tr.state.loss, (steps[4] + steps[5]) / 2, "state.loss is the last logged loss")
    t.assert_eq(tr.state.step_loss, steps[5], "state.step_loss is the last step's")
  end,

  report_to_tensorboard = function()
    -- the event file holds what trainer_log.jsonl logs, under the tags TensorBoardCallback gives them
    local dir = tmp .. "/tb"
    local tr = lfl.trainer(recipe({output_dir = dir, max_steps = 3, val_size = 4, eval_steps = 2,
      report_to = "tensorboard"}))
    tr:train()
    local runs = lfl.fs.list(dir .. "/runs")
    t.assert_eq(#runs, 1)
    t.assert(runs[1]:match("^%a%a%a%d%d_%d%d%-%d%d%-%d%d_.+$"), "runs/<date>_<host>: " .. runs[1])
    local files = lfl.tensorboard.files(dir .. "/runs/" .. runs[1])
    t.assert_eq(#files, 1)
    local evs = lfl.tensorboard.read(files[1])
    t.assert_eq(evs[1].file_version, "brain.Event:2")
    local at = {}
    for i = 2, #evs do
      local e = evs[i]
      at[e.step] = at[e.step] or {}
      -- Trainer.evaluate logs the epoch too: train/epoch twice at an eval step
      t.assert(at[e.step][e.tag] == nil or e.step == 3 or e.tag == "train/epoch", "one " .. e.tag .. " at " .. e.step)
      at[e.step][e.tag] = at[e.step][e.tag] or e.value
    end
    local function same(v, x, what)
      t.assert(v ~= nil, what .. " missing")
      t.assert(math.abs(v - x) <= math.abs(x) * 6e-8, fmt("%s: %.9g in the event file, %.9g logged", what, v, x))
    end
    local train_logs, eval_logs = 0, 0
    for line in io.lines(dir .. "/trainer_log.jsonl") do
      local r = lfl.json.decode(line)
      local ev = at[r.current_steps]
      if r.loss then
        train_logs = train_logs + 1
        same(ev["train/loss"], r.loss, "train/loss")
        same(ev["train/learning_rate"], r.lr, "train/learning_rate")
        same(ev["train/grad_norm"], r.grad_norm, "train/grad_norm")
        same(ev["train/epoch"], r.epoch, "train/epoch")
      elseif r.eval_loss then
        eval_logs = eval_logs + 1
        same(ev["eval/loss"], r.eval_loss, "eval/loss")
        same(ev["eval/perplexity"], math.exp(r.eval_loss), "eval/perplexity")
      end
    end
    t.assert_eq(train_logs, 3); t.assert_eq(eval_logs, 1)
    local n1 = 0
    for _ in pairs(at[1]) do n1 = n1 + 1 end
    t.assert_eq(n1, 4, "step 1 logs loss, learning_rate, grad_norm, epoch")
    -- the closing logs: Trainer.train's summary and the final evaluation, at the last step
    local res = lfl.json.decode(io.open(dir .. "/train_results.json"):read("*a"))
    same(at[3]["train/train_loss"], res.train_loss, "train/train_loss")
    same(at[3]["train/train_runtime"], res.train_runtime, "train/train_runtime")
    same(at[3]["eval/loss"], res.eval_loss, "final eval/loss")
    t.assert_eq(at[3]["train/total_flos"], nil, "no made-up FLOP count")
    t.assert_eq(at[2]["eval/loss"] ~= nil and at[3]["eval/loss"] ~= at[2]["eval/loss"], true, "two evaluations")
  end,

  save_and_load_continue = function()
    -- one trainer goes 6 steps with a checkpoint after 3 (partial epochs: 20 rows, batch 3, accumulation 2)
    local over = {output_dir = tmp .. "/a", per_device_train_batch_size = 3, max_steps = 7, num_train_epochs = 3}
    local ta = lfl.trainer(recipe(over))
    for _ = 1, 3 do ta:step() end
    local epoch3 = ta.state.epoch
    local ck = ta:save()
    t.assert_eq(ck, tmp .. "/a/checkpoint-3")
    t.assert(io.open(ck .. "/trainer_state.json"), "checkpoint written")
    t.assert(not io.open(ck .. ".tmp/trainer_state.json"), "no temporary folder left")
    local after = {}
    for s = 4, 7 do after[s] = ta:step() end
    local wa = snapshot(ta)
    -- a new trainer (other output_dir, fresh set-up) loads the checkpoint and continues
    over.output_dir = tmp .. "/b"
    local tb = lfl.trainer(recipe(over))
    tb:load(ck)
    t.assert_eq(tb.global_step, 3, "position restored")
    t.assert_close(tb.state.epoch, epoch3, 1e-13, "epoch restored (through JSON, 15 digits)")
    for s = 4, 7 do
      local info = tb:step()
      t.assert_eq(info.loss, after[s].loss, "resumed step " .. s .. " loss")
      t.assert_eq(info.grad_norm, after[s].grad_norm, "resumed step " .. s .. " grad_norm")
    end
    t.assert(tb:done(), "done at 7")
    same_tensors(wa, snapshot(tb), "weights after the resumed steps")
    -- t:save(parent) writes the checkpoint into another folder
    local other = tb:save(tmp .. "/elsewhere")
    t.assert_eq(other, tmp .. "/elsewhere/checkpoint-7")
    t.assert(io.open(other .. "/adapter_model.safetensors"), "adapter in the other folder")
  end,

  evaluate = function()
    local tr = lfl.trainer(recipe({output_dir = tmp .. "/ev", val_size = 4, max_steps = 2}))
    local e0 = tr:evaluate()
    t.assert(e0.eval_loss > 0 and e0.eval_loss < 10, "eval loss " .. tostring(e0.eval_loss))
    t.assert_eq(e0.perplexity, math.exp(e0.eval_loss))
    t.assert_eq(tr:evaluate().eval_loss, e0.eval_loss, "evaluating twice gives the same loss")
    t.assert_eq(tr.global_step, 0, "evaluating makes no step")
    tr:step(); tr:step()
    t.assert(tr:evaluate().eval_loss ~= e0.eval_loss, "the loss moves with training")
    local res = tr:finish()
    t.assert_eq(res.metrics.eval_loss, tr:evaluate().eval_loss, "the final metrics evaluate the same way")
    local plain = lfl.trainer(recipe({output_dir = tmp .. "/noev", max_steps = 1}))
    t.assert_error(function() plain:evaluate() end, "no eval set")
  end,

  -- compute_accuracy (LlamaFactory's ComputeAccuracy): per eval sample the
  -- share of labelled next tokens predicted right by the argmax, averaged over
  -- samples; checked against the full logits computed here
  compute_accuracy = function()
    local tr = lfl.trainer(recipe({output_dir = tmp .. "/acc", val_size = 4, max_steps = 3, learning_rate = 5e-2,
      compute_accuracy = true}))
    local ev0 = tr:evaluate()
    for _ = 1, 3 do tr:step() end
    local ev = tr:evaluate()
    local sum, n = 0, 0
    lfl.no_grad(function()
      for k = 1, #tr.eval_set do
        local ex = tr.eval_set[k]
        local pred = tr.model:forward(lfl.tensor({ex.input_ids}, "i64")):argmax(3):view(-1):double()
        local right, cnt = 0, 0
        for j = 1, #ex.input_ids - 1 do
          local l = ex.labels[j + 1]
          if l ~= -100 then
            cnt = cnt + 1
            if pred[j] == l then right = right + 1 end
          end
        end
        if cnt > 0 then sum, n = sum + right / cnt, n + 1 end
      end
    end)
    t.assert_eq(n, 4, "four eval samples with labels")
    t.assert_close(ev.eval_accuracy, sum / n, 1e-12, "eval_accuracy")
    t.assert(ev.eval_accuracy ~= ev0.eval_accuracy, fmt("the accuracy moves with training (%.4f)", ev.eval_accuracy))
    t.assert_eq(tr:finish().metrics.eval_accuracy, tr:evaluate().eval_accuracy, "in the final metrics")
    local plain = lfl.trainer(recipe({output_dir = tmp .. "/noacc", val_size = 4, max_steps = 1}))
    t.assert(plain:evaluate().eval_accuracy == nil, "no eval_accuracy without compute_accuracy")
  end,

  clip_matches_optim = function()
    -- the C clipping and optim.clip_grad_norm, bit for bit, with and without clipping
    for _, max_norm in ipairs({0.05, 100, 0}) do
      lfl.manual_seed(3)
      local ps, qs = {}, {}
      for i, shape in ipairs({{4, 6}, {7}, {3, 5}, {2, 2}}) do
        local p = lfl.randn(shape):requires_grad()
        local q = p:detach():clone():requires_grad()
        if i ~= 4 then
          local g = lfl.randn(shape) * 0.3
          if i == 3 then g = lfl.randn({5, 3}):transpose(1, 2) end -- non-contiguous
          p.grad, q.grad = g, g:clone()
        end
        ps[i], qs[i] = p, q
      end
      local n1 = require("lfl.train.optim").clip_grad_norm(ps, max_norm)
      local n2 = lfl._trainer.clip_grad_norm(qs, max_norm)
      t.assert_eq(n2, n1, "norm, max_norm " .. max_norm)
      for i = 1, 4 do
        if ps[i].grad then t.assert_eq(t.max_abs_diff(ps[i].grad, qs[i].grad), 0, "gradient " .. i)
        else t.assert(qs[i].grad == nil, "no gradient made") end
      end
    end
  end,

  nan_loss_logged_and_stops = function()
    local dir = tmp .. "/nan"
    local tr = lfl.trainer(recipe({output_dir = dir, max_steps = 10, save_steps = 1000}))
    local orig = tr.approach
    local poison = 2 -- micro-batches from the second step on give NaN
    local calls = 0
    tr.approach = setmetatable({loss = function(model, batch, st)
      calls = calls + 1
      local l = orig.loss(model, batch, st)
      if calls > poison then return l * (0 / 0) end
      return l
    end}, {__index = orig})
    tr:step()
    local w1 = snapshot(tr)
    local err = t.assert_error(function() tr:train() end, "not finite for 3 consecutive steps")
    t.assert(err:find("checkpoint-4", 1, true), "the message names the checkpoint: " .. err)
    t.assert_eq(tr.global_step, 4)
    -- no update from a NaN step: the weights are those after step 1, also in the checkpoint
    same_tensors(w1, snapshot(tr), "weights kept")
    local ck = lfl.safetensors.load(dir .. "/checkpoint-4/adapter_model.safetensors")
    same_tensors(w1, ck, "checkpoint weights")
    -- every log line is valid JSON; the NaN steps are logged as NaN (Python's json token)
    local n, nans = 0, 0
    for line in io.lines(dir .. "/trainer_log.jsonl") do
      local r = lfl.json.decode(line)
      n = n + 1
      if r.loss ~= r.loss then nans = nans + 1; t.assert(line:find("NaN", 1, true), "NaN token") end
    end
    t.assert_eq(n, 4)
    t.assert_eq(nans, 3)
    local state = lfl.json.decode(io.open(dir .. "/checkpoint-4/trainer_state.json"):read("*a"))
    t.assert(state.log_history[4].loss ~= state.log_history[4].loss, "NaN in trainer_state.json")
    -- and the run resumes from that checkpoint (a fresh trainer, the real loss)
    local again = lfl.trainer(recipe({output_dir = dir, max_steps = 6, overwrite_output_dir = false}))
    t.assert_eq(again.global_step, 4, "resumed at the checkpoint")
    local info = again:step()
    t.assert(info.loss == info.loss, "finite again")
  end,

  one_nan_step_is_survived = function()
    local dir = tmp .. "/nan1"
    local tr = lfl.trainer(recipe({output_dir = dir, max_steps = 4, gradient_accumulation_steps = 1, plot_loss = true}))
    local orig, calls = tr.approach, 0
    tr.approach = setmetatable({loss = function(model, batch, st)
      calls = calls + 1
      local l = orig.loss(model, batch, st)
      return calls == 2 and l * (1 / 0) or l
    end}, {__index = orig})
    local res = tr:train()
    t.assert_eq(tr.state.nonfinite_total, 1)
    local m = lfl.json.decode(io.open(dir .. "/train_results.json"):read("*a"))
    t.assert(m.train_loss == m.train_loss and m.train_loss == res.metrics.train_loss, "train_loss over finite steps")
    t.assert(io.open(dir .. "/trainer_log.jsonl"):read("*a"):find("Infinity", 1, true), "Infinity logged")
    t.assert(io.open(dir .. "/training_loss.png", "rb"), "the loss plot is drawn")
    local state = lfl.json.decode(io.open(dir .. "/trainer_state.json"):read("*a"))
    t.assert_eq(state.log_history[2].loss, math.huge, "the final trainer_state.json keeps the Inf")
  end,

  nonfinite_limit = function()
    local function poisoned(over)
      local tr = lfl.trainer(recipe(over))
      local orig = tr.approach
      tr.approach = setmetatable({loss = function(model, batch, st) return orig.loss(model, batch, st) * (0 / 0) end},
        {__index = orig})
      return tr
    end
    -- 1: the first NaN step stops the run
    local tr = poisoned({output_dir = tmp .. "/lim1", max_steps = 3, max_nonfinite_steps = 1})
    t.assert_error(function() tr:train() end, "not finite for 1 consecutive steps")
    t.assert(io.open(tmp .. "/lim1/checkpoint-1/trainer_state.json"), "checkpoint-1")
    -- 0: never stops; every file of the run stays valid JSON, train_loss is NaN
    tr = poisoned({output_dir = tmp .. "/lim0", max_steps = 3, max_nonfinite_steps = 0})
    local res = tr:train()
    t.assert_eq(tr.global_step, 3)
    t.assert(res.metrics.train_loss ~= res.metrics.train_loss, "no finite step: train_loss NaN")
    for _, f in ipairs({"train_results.json", "all_results.json", "trainer_state.json"}) do
      local v = lfl.json.decode(io.open(tmp .. "/lim0/" .. f):read("*a"), f)
      t.assert(type(v) == "table", f)
    end
    t.assert_error(function() lfl.trainer(recipe({max_nonfinite_steps = -1})) end, "max_nonfinite_steps")
  end,

  bad_arguments = function()
    local function refused(over, pattern)
      t.assert_error(function() lfl.trainer(recipe(over)) end, pattern, pattern)
    end
    refused({output_dir = ""}, "output_dir is empty")
    refused({gradient_accumulation_steps = 0}, "gradient_accumulation_steps: expected an integer >= 1, got 0")
    refused({gradient_accumulation_steps = 1.5}, "gradient_accumulation_steps: expected an integer >= 1, got 1.5")
    refused({num_train_epochs = 0, max_steps = -1}, "num_train_epochs: expected a number > 0 when max_steps is not set")
    refused({cutoff_len = 1}, "cutoff_len: expected an integer >= 2, got 1")
    refused({per_device_train_batch_size = 0}, "per_device_train_batch_size")
    t.assert_error(function() lfl.args.resolve(recipe({export_dir = ""}), {}, "t") end, "export_dir is empty")
    t.assert_error(function() require("lfl.cmd.export").export({export_dir = ""}) end, "export_dir is empty")
    -- num_train_epochs 0 is fine when max_steps is set (HF: max_steps wins)
    local ok = lfl.trainer(recipe({num_train_epochs = 0, max_steps = 1, output_dir = tmp .. "/e0"}))
    t.assert_eq(ok.total_steps, 1)
  end,

  unwritable_output_dir_before_loading = function()
    -- a file where the folder should be: found before the (missing) model is looked at
    local f = io.open(tmp .. "/afile", "wb"); f:write("x"); f:close()
    t.assert_error(function()
      lfl.trainer(recipe({output_dir = tmp .. "/afile/run", model_name_or_path = tmp .. "/no-such-model"}))
    end, "output_dir '" .. tmp .. "/afile/run'")
  end,

  -- NEFTune (neftune_noise_alpha): noise on the embeddings in training
  -- forwards only; the same seed's first step differs with it, an eval
  -- forward (no grad) does not
  neftune = function()
    local steps, tr = {}, nil
    for _, alpha in ipairs({0, 5}) do
      tr = lfl.trainer(recipe({output_dir = tmp .. "/neft" .. alpha, neftune_noise_alpha = alpha > 0 and alpha or nil,
        max_steps = 1, gradient_accumulation_steps = 1}))
      t.assert_eq(tr.model.neftune_alpha, alpha > 0 and alpha or nil)
      steps[alpha] = tr:step().loss
      if alpha == 0 then tr:finish() end
    end
    t.assert(math.abs(steps[5] - steps[0]) > 1e-4, fmt("the noise changes the step loss: %.6f vs %.6f", steps[5], steps[0]))
    local m = tr.model
    local ids = lfl.tensor({{5, 9, 13, 2, 7, 11, 3, 8}}, "i32")
    local labels = lfl.tensor({{-100, 9, 13, 2, 7, 11, 3, 8}}, "i32")
    local function eval_loss() return lfl.no_grad(function() return m:loss(ids, labels):item() end) end
    local quiet = eval_loss()
    m.neftune_alpha = nil
    t.assert_eq(eval_loss(), quiet, "no noise without gradients")
    local clean = m:loss(ids, labels):item()
    m.neftune_alpha = 5
    local noisy1, noisy2 = m:loss(ids, labels):item(), m:loss(ids, labels):item()
    t.assert(noisy1 ~= clean and noisy1 ~= noisy2, "fresh noise in each training forward")
    -- the noise is bounded by alpha / sqrt(T * hidden): a tiny alpha moves the loss a little
    m.neftune_alpha = 1e-3
    t.assert(math.abs(m:loss(ids, labels):item() - clean) < 1e-3, "a tiny alpha, a tiny change")
    m.neftune_alpha = nil
    tr:finish()
  end,

  -- a MoE model trains with the router's load-balancing loss (LlamaFactory
  -- turns output_router_logits on for training), moe_aux_loss_coef its weight:
  -- the step's loss is the LM loss plus coef x the load-balancing loss
  moe_router_aux_loss = function()
    lfl.fs.mkdir(tmp .. "/mixtral")
    for _, f in ipairs({"tests/golden/models/mixtral/config.json", "tests/golden/models/mixtral/model.safetensors",
                        "tests/golden/serve/tokenizer.json"}) do
      lfl.fs.symlink(home .. "/" .. f, tmp .. "/mixtral/" .. f:match("[^/]+$"))
    end
    local losses = {}
    for _, coef in ipairs({0, 0.5}) do
      local tr = lfl.trainer(recipe({model_name_or_path = tmp .. "/mixtral", output_dir = tmp .. "/moe" .. coef,
        moe_aux_loss_coef = coef, max_steps = 1, gradient_accumulation_steps = 1}))
      t.assert(tr.model.arch.router_aux, "the auxiliary loss is on for training")
      t.assert_eq(tr.model.arch.router_aux_coef, coef)
      losses[coef] = tr:step().loss
      tr:finish()
    end
    -- the load-balancing loss is E * sum f_e P_e >= 1 (1 when perfectly balanced)
    local aux = (losses[0.5] - losses[0]) / 0.5
    t.assert(aux >= 1 - 1e-6 and aux < 4, fmt("load-balancing loss %.6f from the step losses %.6f, %.6f", aux,
      losses[0], losses[0.5]))
  end,
})

local res = t.run()
lfl.fs.remove(tmp)
return res
