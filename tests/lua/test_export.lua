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

  -- an Ollama Modelfile next to the export (LlamaFactory's; the text itself is
  -- checked against LlamaFactory in test_templates), FROM the GGUF file for a GGUF
  -- export; none, with a note, without a tokenizer
  ollama_modelfile = function()
    local d, mdir = lfl.test.tiny_llama_dir("modelfile")
    local export = require("lfl.cmd.export")
    local r = export.export(lfl.args.resolve({model_name_or_path = mdir, template = "qwen", export_dir = d .. "/out",
      do_train = false}, {}, "test"))
    local f = assert(io.open(d .. "/out/Modelfile"))
    local text = f:read("*a"); f:close()
    local tok = lfl.tokenizer.load(mdir)
    t.assert_eq(text, lfl.template.get("qwen"):ollama_modelfile(tok), "the qwen template's Modelfile")
    t.assert(text:find("\nFROM .\n", 1, true) and r.modelfile == d .. "/out/Modelfile", "FROM the folder")
    -- (this tiny tokenizer is not byte-level BPE, which GGUF export needs: the Modelfile step alone)
    lfl.fs.mkdir(d .. "/gg")
    local path = export.write_modelfile(lfl.model.load(mdir), {template = "qwen"}, d .. "/gg", "./ggml-model-f32.gguf")
    f = assert(io.open(path))
    text = f:read("*a"); f:close()
    t.assert(text:find("\nFROM ./ggml-model-f32.gguf\n", 1, true), "FROM the GGUF: " .. text:sub(1, 80))
    local r3 = export.export(lfl.args.resolve({model_name_or_path = base, export_dir = d .. "/none", do_train = false},
      {}, "test"))
    t.assert_eq(r3.modelfile, nil, "no tokenizer, no Modelfile")
    lfl.fs.remove(d)
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

  -- LlamaFactory's additional_target = PEFT's modules_to_save, against PEFT on
  -- the tied tiny llama (tests/golden/models/llama_tied_llama3rope/mts.safetensors):
  -- the same trainable tensors (embedding and head as two copies, every norm),
  -- loss and gradients; the adapter holds them under PEFT's keys, loads back,
  -- merges into a model saved untied
  additional_target_as_peft = function()
    local peft = require("lfl.train.peft")
    local trainer = require("lfl.train.trainer")
    local dir = lfl.home .. "/tests/golden/models/llama_tied_llama3rope"
    local g = lfl.safetensors.load(dir .. "/mts.safetensors")
    local gold = lfl.safetensors.load(dir .. "/golden.safetensors")
    local m = lfl.model.load(dir)
    local names = trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
      lora_target = "q_proj,v_proj", learning_rate = 1e-3, weight_decay = 0.1,
      additional_target = "embed_tokens,lm_head,norm"})
    local want = {}
    for k in pairs(g) do if k:match("^init%.") then want[#want + 1] = k:sub(6) end end
    table.sort(want)
    local got = {}
    for i, n in ipairs(names) do got[i] = n end
    table.sort(got)
    t.assert_eq(table.concat(got, " "), table.concat(want, " "), "PEFT's trainable tensors")
    t.assert(not m.arch.tied and m.config.tie_word_embeddings == false, "untied")
    local _, params = peft.lora_parameters(m)
    lfl.no_grad(function()
      for i, n in ipairs(names) do params[i]:copy_(g["init." .. n]) end
    end)
    local loss = m:loss(gold.input_ids, gold.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, "loss")
    loss:backward()
    for i, n in ipairs(names) do
      local ref = g["grad." .. n]
      local d = params[i].grad:double() - ref:double()
      local e = math.sqrt((d * d):sum():item()) / math.sqrt((ref:double() * ref:double()):sum():item())
      t.assert(e <= 1e-3, n .. " gradient, relative error " .. e)
    end
    -- the head's copy and the embedding's differ in their gradients (two modules)
    t.assert(t.max_abs_diff(g["grad.base_model.model.lm_head.weight"],
      g["grad.base_model.model.model.embed_tokens.weight"]) > 1e-3, "two gradients")
    -- no decay on norms (HF's rule)
    local groups = peft.lora_groups(m, 1e-3, 0.1)
    local nd = 0
    for _, gr in ipairs(groups) do
      for _, n in ipairs(gr.names) do if n:find("norm") then t.assert_eq(gr.weight_decay, 0, n); nd = nd + 1 end end
    end
    t.assert_eq(nd, 5, "norm tensors")
    -- save: PEFT's keys and modules_to_save; load back; merge -> untied model
    lfl.no_grad(function() for i = 1, #params do params[i]:copy_(params[i] * 1.01 + 0.001) end end)
    local ids = gold.input_ids
    local before = lfl.no_grad(function() return m:forward(ids) end)
    peft.save_adapter(m, tmp .. "/mts")
    local saved = lfl.safetensors.load(tmp .. "/mts/adapter_model.safetensors")
    for _, n in ipairs(want) do t.assert(saved[n], "saved " .. n) end
    local cfg = lfl.model.read_json(tmp .. "/mts/adapter_config.json")
    t.assert_eq(table.concat(cfg.modules_to_save, ","), "embed_tokens,lm_head,norm", "modules_to_save in the config")
    t.assert_error(function() peft.load_adapter(lfl.model.load(dir), tmp .. "/mts", "ref") end,
      "an adapter with modules_to_save cannot be loaded as the 'ref' adapter")
    local m2 = lfl.model.load(dir)
    peft.load_adapter(m2, tmp .. "/mts")
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m2:forward(ids) end), before) <= 1e-5, "loaded back")
    peft.merge(m2)
    m2:save(tmp .. "/mts_merged", {tokenizer = false})
    local m3 = lfl.model.load(tmp .. "/mts_merged")
    t.assert(m3.arch.tied == false, "saved untied")
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m3:forward(ids) end), before) <= 1e-5, "merged")
    t.assert_error(function()
      local m4 = lfl.model.load(dir)
      trainer.setup_method(m4, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
        lora_target = "q_proj", learning_rate = 1e-3, additional_target = "q_proj"})
    end, "is also a LoRA target")
    t.assert_error(function()
      local m4 = lfl.model.load(dir)
      trainer.setup_method(m4, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
        lora_target = "q_proj", learning_rate = 1e-3, additional_target = "wte"})
    end, "additional_target: no module named 'wte'")
  end,
})

t.run()
os.execute("rm -rf " .. tmp)
