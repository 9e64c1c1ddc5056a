-- GPTQ and AWQ 4-bit checkpoints (tests/ref/make_ptq_goldens.py: the tiny
-- llama's linears in GPTQ v1 desc_act and AutoAWQ GEMM layouts): lfl's
-- dequantization equals the reference libraries' (GPTQModel's formula,
-- AutoAWQ's dequantize_gemm) exactly and the logits equal transformers' on those
-- weights; LoRA trains on them with a falling loss; full fine-tuning and
-- quantization_bit are refused as LlamaFactory refuses / ignores them; an
-- adapter merges into the dequantized base and the export is a plain model;
-- broken checkpoints are errors naming the tensor.
local t = lfl.test
local gold = lfl.safetensors.load(lfl.home .. "/tests/golden/quant/ptq.safetensors")
local orig = lfl.model.load(lfl.home .. "/tests/golden/models/llama")

local tmp = os.tmpname()
os.remove(tmp)
tmp = tmp .. "_ptq"
lfl.fs.mkdir(tmp)
local function checkpoint(kind)
  local d = tmp .. "/" .. kind
  lfl.fs.mkdir(d)
  for _, f in ipairs({"tests/golden/quant/" .. kind .. "_llama/config.json",
                      "tests/golden/quant/" .. kind .. "_llama/model.safetensors", "tests/golden/serve/tokenizer.json"}) do
    lfl.fs.symlink(lfl.home .. "/" .. f, d .. "/" .. f:match("[^/]+$"))
  end
  return d
end
local real_getenv = os.getenv
os.getenv = function(k)
  if k == "LFL_CACHE" then return tmp .. "/cache" end
  return real_getenv(k)
end

local function recipe(dir, extra)
  local r = {model_name_or_path = dir, stage = "sft", finetuning_type = "lora", dataset = "identity",
    template = "chatml", cutoff_len = 64, max_samples = 8, per_device_train_batch_size = 4, max_steps = 8,
    learning_rate = 2e-2, lr_scheduler_type = "constant", logging_steps = 1, save_steps = 0,
    output_dir = tmp .. "/run", overwrite_output_dir = true, disable_tqdm = true}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

t.suite("ptq", {
  dequantize_matches_the_references = function()
    -- the dequantize-at-load path (dequantize); test_ptq_kept checks the kept one against it
    for _, kind in ipairs({"gptq", "awq"}) do
      local m = lfl.model.load(lfl.home .. "/tests/golden/quant/" .. kind .. "_llama", {dequantize = true})
      t.assert_eq(m.ptq.method, kind)
      t.assert_eq(m.ptq.linears, 14, kind .. ": 2 layers x 7 linears")
      t.assert(m.config.quantization_config == nil, "the loaded model's config is a float model's")
      for _, n in ipairs(m.names) do
        local want = gold[kind .. "." .. n]
        if want then
          t.assert_tensor_close(m.params[n], want, 0, 0, kind .. " " .. n)
          -- within half a quantization step of the original (max |W| / 15 per group, generously)
          local err = (m.params[n] - orig.params[n]):abs():max():item()
          t.assert(err < orig.params[n]:abs():max():item() / 10, ("%s %s: quantization error %.4f"):format(kind, n, err))
        end
      end
      t.assert_tensor_close(m:forward(gold.ids), gold[kind .. ".logits"], 1e-5, 1e-5, kind .. " logits")
    end
  end,

  lora_trains = function()
    local d = checkpoint("gptq")
    local res = lfl.trainer.run(lfl.args.resolve(recipe(d), {}, "test"))
    local h = res.state.log_history
    t.assert(h[#h].loss < h[1].loss * 0.95, ("loss falls: %.4f -> %.4f"):format(h[1].loss, h[#h].loss))
    -- the adapter merges into the dequantized base; the export is a plain float model
    local out = require("lfl.cmd.export").export({model_name_or_path = d, adapter_name_or_path = tmp .. "/run",
      export_dir = tmp .. "/merged"})
    local cfg = lfl.json.decode(lfl.fs.read(out.dir .. "/config.json"))
    t.assert(cfg.quantization_config == nil, "no quantization_config in the export")
    local m2 = lfl.model.load(out.dir)
    t.assert(m2.ptq == nil, "the export loads as a float model")
  end,

  refused = function()
    local d = checkpoint("awq")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {finetuning_type = "full"}), {}, "test")) end,
      "finetuning_type full: " .. d .. " is a AWQ-quantized checkpoint")
    t.assert_error(function()
      lfl.trainer.run(lfl.args.resolve(recipe(d, {quantization_bit = 4}), {}, "test"))
    end, "is already a AWQ 4-bit checkpoint; remove quantization_bit")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {use_dora = true}), {}, "test")) end,
      "use_dora: " .. d .. " is a AWQ-quantized checkpoint (LlamaFactory: 'DoRA is not compatible")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {pissa_init = true}), {}, "test")) end,
      "pissa_init: " .. d .. " is a AWQ-quantized checkpoint")
  end,

  broken_checkpoints = function()
    local src = lfl.safetensors.load(lfl.home .. "/tests/golden/quant/gptq_llama/model.safetensors")
    local cfg = lfl.json.decode(lfl.fs.read(lfl.home .. "/tests/golden/quant/gptq_llama/config.json"))
    local function broken(name, edit, want, cfg_edit)
      local d = tmp .. "/broken_" .. name
      lfl.fs.mkdir(d)
      local ts = {}
      for k, v in pairs(src) do ts[k] = v end
      edit(ts)
      lfl.safetensors.save(d .. "/model.safetensors", ts)
      local c = lfl.json.decode(lfl.json.encode(cfg))
      if cfg_edit then cfg_edit(c.quantization_config) end
      lfl.fs.write(d .. "/config.json", lfl.json.encode(c))
      t.assert_error(function() lfl.model.load(d) end, want)
    end
    local q = "model.layers.0.self_attn.q_proj"
    broken("no_zeros", function(ts) ts[q .. ".qzeros"] = nil end, q .. " has a qweight but no qzeros")
    broken("bad_gidx", function(ts)
      local g = {}
      for i = 1, 32 do g[i] = i == 5 and 99 or 0 end
      ts[q .. ".g_idx"] = lfl.tensor(g, "i32")
    end, "g_idx[4] = 99 is not a group (0..1)")
    broken("short_gidx", function(ts) ts[q .. ".g_idx"] = lfl.tensor({0, 1}, "i32") end,
      "g_idx has 2 rows, qweight unpacks to 32 inputs")
    broken("bits", function() end, "gptq with 3 bits is not supported", function(qc) qc.bits = 3 end)
    -- 8 bits load (lfl's own GPTQ exports, test_gptq_export); 4-bit words read as 8-bit do not fit
    broken("bits8", function() end, "down_proj: gptq: qzeros [3, 4] packs 16 outputs at 8 bits, qweight has 32",
      function(qc) qc.bits = 8 end)
    broken("format", function() end, "checkpoint_format 'marlin' is not supported", function(qc) qc.checkpoint_format = "marlin" end)
    broken("method", function() end, "quant_method 'hqq' is not supported", function(qc) qc.quant_method = "hqq" end)
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
