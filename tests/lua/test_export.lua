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
})

t.run()
os.execute("rm -rf " .. tmp)
