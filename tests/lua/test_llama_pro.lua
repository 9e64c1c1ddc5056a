-- LLaMA Pro: `lfl llama_pro` block expansion of the tiny llama (2 -> 4 layers)
-- computes the same logits as the original, with the inserted blocks copies
-- whose o_proj/down_proj are zero; `use_llama_pro: true` trains exactly the
-- inserted blocks (freeze) or puts LoRA only on them (lora; the adapter config
-- names those modules in full, as PEFT writes LlamaFactory's explicit list),
-- and the loss falls; LlamaFactory's checks are kept (divisibility; not with
-- full fine-tuning, which lfl's applies-rule words as for every setting).
local t = lfl.test
local llama_pro, peft = require("lfl.train.llama_pro"), require("lfl.train.peft")

local tmp, model_dir = t.tiny_llama_dir("llama_pro")
local pro_dir = tmp .. "/pro"

local function run_cli(args)
  local ok, rc = pcall(require("lfl.cmd.llama_pro").run, args)
  return ok, rc
end

local function train(extra)
  local r = {model_name_or_path = pro_dir, stage = "sft", dataset = "identity", template = "chatml", cutoff_len = 64,
    max_samples = 8, per_device_train_batch_size = 4, max_steps = 6, learning_rate = 5e-3, logging_steps = 1,
    lr_scheduler_type = "constant", save_steps = 0, output_dir = tmp .. "/run", overwrite_output_dir = true,
    disable_tqdm = true, use_llama_pro = true, freeze_trainable_layers = 2}
  for k, v in pairs(extra) do r[k] = v end
  return lfl.trainer.new(lfl.args.resolve(r, {}, "test"))
end

t.suite("llama_pro", {
  expand_keeps_the_function = function()
    local ok, err = run_cli({"--model_name_or_path", tmp .. "/model", "--output_dir", pro_dir, "--num_expand", "2"})
    t.assert(ok, tostring(err))
    local a, b = lfl.model.load(tmp .. "/model"), lfl.model.load(pro_dir)
    t.assert_eq(b.arch.layers, 4, "2 + 2 layers")
    t.assert_eq(b.config.num_hidden_layers, 4, "config")
    local ids = lfl.tensor({{1, 5, 9, 2, 7, 3}}, "i64")
    t.assert_tensor_close(b:forward(ids), a:forward(ids), 0, 0, "same logits")
    -- layer 0 -> 0 and inserted 1; layer 1 -> 2 and inserted 3
    for _, pair in ipairs({{0, 0}, {0, 1}, {1, 2}, {1, 3}}) do
      local src, dst = pair[1], pair[2]
      for _, rest in ipairs({"self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight",
                             "self_attn.o_proj.weight", "mlp.down_proj.weight"}) do
        local w = b.params[("model.layers.%d.%s"):format(dst, rest)]
        local inserted, zero = dst % 2 == 1, rest:find("o_proj") or rest:find("down_proj")
        if inserted and zero then
          t.assert_eq(w:abs():max():item(), 0, ("layer %d %s zero"):format(dst, rest))
        else
          t.assert_tensor_close(w, a.params[("model.layers.%d.%s"):format(src, rest)], 0, 0,
            ("layer %d %s from %d"):format(dst, rest, src))
        end
      end
    end
    t.assert_error(function() llama_pro.expand(a, 3) end, "should be divisible by `num_expand` 3")
    local ok2, err2 = run_cli({"--model_name_or_path", tmp .. "/model", "--output_dir", tmp .. "/x"})
    t.assert(not ok2 and tostring(err2):find("--num_expand is required", 1, true), tostring(err2))
  end,

  layers = function()
    local function ids(set)
      local o = {}
      for l in pairs(set) do o[#o + 1] = l end
      table.sort(o)
      return table.concat(o, ",")
    end
    t.assert_eq(ids(peft.llama_pro_layers(36, 6)), "5,11,17,23,29,35")
    t.assert_eq(ids(peft.llama_pro_layers(4, 2)), "1,3")
    t.assert_error(function() peft.llama_pro_layers(30, 4) end, "`num_layers` 30 should be divisible")
  end,

  freeze_trains_the_inserted_blocks = function()
    local tr = train({finetuning_type = "freeze"})
    local seen = {}
    for _, n in ipairs(tr.names) do seen[#seen + 1] = n:match("^model%.layers%.(%d+)%.") end
    t.assert(#tr.names > 0, "some parameters train")
    for _, l in ipairs(seen) do t.assert(l == "1" or l == "3", "only layers 1 and 3 train, got " .. tostring(l)) end
    local first, last
    for _ = 1, 6 do
      local info = tr:step()
      first = first or info.loss
      last = info.loss
    end
    tr:finish()
    t.assert(last < first, ("loss falls: %.4f -> %.4f"):format(first, last))
  end,

  lora_on_the_inserted_blocks = function()
    local tr = train({finetuning_type = "lora", lora_target = "q_proj,v_proj"})
    for _ = 1, 2 do tr:step() end
    local res = tr:finish()
    local mods = {}
    for _, m in ipairs(res.model.lora.modules) do mods[#mods + 1] = m end
    table.sort(mods)
    t.assert_eq(table.concat(mods, " "), "model.layers.1.self_attn.q_proj model.layers.1.self_attn.v_proj "
      .. "model.layers.3.self_attn.q_proj model.layers.3.self_attn.v_proj")
    local cfg = lfl.json.decode(lfl.fs.read(tmp .. "/run/adapter_config.json"))
    table.sort(cfg.target_modules)
    t.assert_eq(table.concat(cfg.target_modules, " "), table.concat(mods, " "), "full module names")
  end,

  refused = function()
    t.assert_error(function() train({finetuning_type = "full"}) end,
      "use_llama_pro: true has no effect: it applies to finetuning_type freeze or lora (this run's is full)")
    t.assert_error(function() train({finetuning_type = "freeze", freeze_trainable_layers = 3}) end,
      "`num_layers` 4 should be divisible by `num_layer_trainable` 3")
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
