-- lfl export: adapters merged into the base and written as an HF folder that
-- reloads with the adapted model's logits; shards split by export_size.
local t = lfl.test
local base = lfl.home .. "/tests/golden/models/llama"
local tmp = os.tmpname() .. "_export"

t.suite("export", {
  merge_and_write = function()
    lfl.manual_seed(3)
    local m = lfl.model.load(base)
    local peft = require("lfl.train.peft")
    peft.add_lora(m, {rank = 4})
    for _, e in pairs(m.adapters) do e.B:normal_(0, 0.1) end -- a non-trivial adapter
    local ids = lfl.tensor({{3, 5, 7, 11, 13}}, "i64")
    local want = lfl.no_grad(function() return m:forward(ids) end)
    peft.save_adapter(m, tmp .. "/adapter", base)
    local export = require("lfl.cmd.export")
    local a = lfl.args.resolve({model_name_or_path = base, adapter_name_or_path = tmp .. "/adapter",
      export_dir = tmp .. "/merged", export_size = 4e-5, do_train = false}, {}, "test")
    local r = export.export(a)
    t.assert_eq(#r.merged, 1)
    local idx = io.open(tmp .. "/merged/model.safetensors.index.json")
    t.assert(idx, "40 kB shards make an index"); idx:close()
    local m2 = lfl.model.load(tmp .. "/merged")
    local got = lfl.no_grad(function() return m2:forward(ids) end)
    t.assert_tensor_close(got, want, 1e-5, 1e-4)
    t.assert_error(function() export.export(lfl.args.resolve({model_name_or_path = base, do_train = false}, {}, "t")) end,
      "export_dir is required")
  end,

  -- training on top of adapters (LlamaFactory's rule): all but the last merged
  -- into the base and the last trained on; create_new_adapter merges them all
  -- and trains a fresh one; refused where nothing can be merged into
  train_on_adapters = function()
    local peft = require("lfl.train.peft")
    local trainer = require("lfl.train.trainer")
    local ids = lfl.tensor({{3, 5, 7, 11, 13}}, "i64")
    local m = lfl.model.load(base)
    lfl.manual_seed(5)
    for i = 1, 2 do
      peft.add_lora(m, {rank = 4})
      for _, e in pairs(m.adapters) do e.B:normal_(0, 0.1) end
      peft.save_adapter(m, tmp .. "/ad" .. i, base)
      peft.merge(m)
    end
    local want = lfl.no_grad(function() return m:forward(ids) end) -- base + ad1 + ad2
    local two = tmp .. "/ad1," .. tmp .. "/ad2"
    local function run(extra)
      local mm = lfl.model.load(base)
      local a = {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0, lora_target = "all",
                 learning_rate = 1e-3, adapter_name_or_path = two}
      for k, v in pairs(extra) do a[k] = v end
      local names = trainer.setup_method(mm, a)
      return mm, names
    end
    local m1, n1 = run({})
    t.assert_tensor_close(lfl.no_grad(function() return m1:forward(ids) end), want, 1e-5, 1e-4, "ad1 merged, ad2 live")
    local ad2 = lfl.safetensors.load(tmp .. "/ad2/adapter_model.safetensors")
    local A, B = m1.lora:get("model.layers.0.self_attn.q_proj")
    t.assert(t.max_abs_diff(B, ad2["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]) == 0,
      "the last adapter is the one trained")
    t.assert(#n1 > 0 and A:get_requires_grad(), "its factors train")
    local m2, n2 = run({create_new_adapter = true})
    t.assert_tensor_close(lfl.no_grad(function() return m2:forward(ids) end), want, 1e-5, 1e-4,
      "both merged, the new adapter starts at zero")
    local _, B2 = m2.lora:get("model.layers.0.self_attn.q_proj")
    t.assert(#n2 == #n1 and (B2 * B2):sum():item() == 0, "a fresh adapter")
    local ok, err = pcall(lfl.args.resolve, {model_name_or_path = base, stage = "sft", do_train = true,
      finetuning_type = "lora", quantization_bit = 4, adapter_name_or_path = tmp .. "/ad1", create_new_adapter = true,
      dataset = "alpaca_en_demo", output_dir = tmp .. "/o"}, {}, "t")
    t.assert(not ok and tostring(err):find("create_new_adapter: true merges adapter_name_or_path into the base, which a " ..
      "quantized base", 1, true), tostring(err))
    ok, err = pcall(lfl.args.resolve, {model_name_or_path = base, stage = "sft", do_train = true, finetuning_type = "lora",
      create_new_adapter = true, dataset = "alpaca_en_demo", output_dir = tmp .. "/o"}, {}, "t")
    t.assert(not ok and tostring(err):find("it applies with adapter_name_or_path", 1, true), tostring(err))
  end,
})

t.run()
os.execute("rm -rf " .. tmp)
