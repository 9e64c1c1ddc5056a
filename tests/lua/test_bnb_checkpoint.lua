-- Saved bitsandbytes models (tests/ref/make_bnb_checkpoint_goldens.py: a tiny
-- llama loaded by transformers with load_in_4bit NF4 + double quantization,
-- 4-bit FP4, and load_in_8bit, then save_pretrained): lfl reads each linear's
-- saved state into its own NF4/FP4/int8 tensor byte for byte, keeps it
-- quantized, and gives transformers' logits and loss; LoRA trains on it as on
-- a quantization_bit base and the export merges into the dequantized weights;
-- LlamaFactory's rules for a quantized base apply; broken checkpoints are
-- errors naming the tensor.
local t = lfl.test
local G = lfl.home .. "/tests/golden/quant/"
local gold = lfl.safetensors.load(G .. "bnb_checkpoint.safetensors")
local KINDS = {bnb_nf4dq_llama = {"nf4", true}, bnb_fp4_llama = {"fp4", false}, bnb_int8_llama = {"int8"}}

local tmp = os.tmpname()
os.remove(tmp)
tmp = tmp .. "_bnbck"
lfl.fs.mkdir(tmp)
-- a copy of a golden checkpoint with a tokenizer; edit(tensors) / cfg_edit(config) break it
local function checkpoint(kind, name, edit, cfg_edit)
  local d = tmp .. "/" .. (name or kind)
  lfl.fs.mkdir(d)
  lfl.fs.symlink(lfl.home .. "/tests/golden/serve/tokenizer.json", d .. "/tokenizer.json")
  if edit then
    local ts = {}
    for k, v in pairs(lfl.safetensors.load(G .. kind .. "/model.safetensors")) do ts[k] = v end
    edit(ts)
    lfl.safetensors.save(d .. "/model.safetensors", ts)
  else
    lfl.fs.symlink(G .. kind .. "/model.safetensors", d .. "/model.safetensors")
  end
  local cfg = lfl.json.decode(lfl.fs.read(G .. kind .. "/config.json"))
  if cfg_edit then cfg_edit(cfg) end
  lfl.fs.write(d .. "/config.json", lfl.json.encode(cfg))
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

local function u8_of(s)
  local v = {}
  for i = 1, #s do v[i] = s:byte(i) end
  return lfl.tensor(v, "u8")
end

local Q = "model.layers.0.self_attn.q_proj"

t.suite("bnb_checkpoint", {
  loads_kept_quantized_and_matches_transformers = function()
    for kind, want in pairs(KINDS) do
      local m = lfl.model.load(G .. kind)
      local raw = lfl.safetensors.load(G .. kind .. "/model.safetensors")
      t.assert_eq(m.prequantized.method, "bitsandbytes")
      t.assert_eq(m.prequantized.linears, 14, kind .. ": 2 layers x 7 linears")
      t.assert_eq(m.quantization.type, want[1])
      t.assert_eq(m.quantization.double_quant, want[2])
      t.assert(m.config.quantization_config == nil, "the loaded model's config is the model's own")
      local qbytes, qparams = 0, 0
      for _, n in ipairs(m.names) do
        local p = m.params[n]
        if n:match("^model%.layers%.") and p:dim() == 2 then
          t.assert_eq(p:dtype(), want[1], kind .. " " .. n .. " stays quantized")
          local mod = n:gsub("%.weight$", "")
          if want[1] == "int8" then
            local st = lfl.int8_state(p)
            t.assert_tensor_close(st.SCB, raw[mod .. ".SCB"], 0, 0, n .. " SCB")
            qbytes = qbytes + st.nbytes
          else
            local st = lfl.q4_state(p)
            t.assert_tensor_close(st.packed:to("f32"), raw[n]:reshape({raw[n]:numel()}):to("f32"), 0, 0, n .. " codes")
            if want[2] then
              t.assert_tensor_close(st.qabsmax:to("f32"), raw[n .. ".absmax"]:to("f32"), 0, 0, n .. " 8-bit absmax")
              t.assert_tensor_close(st.absmax2, raw[n .. ".nested_absmax"], 0, 0, n .. " nested absmax")
              t.assert_tensor_close(st.code2, raw[n .. ".nested_quant_map"], 0, 0, n .. " nested map")
            else
              t.assert_tensor_close(st.absmax, raw[n .. ".absmax"], 0, 0, n .. " absmax")
            end
            qbytes = qbytes + st.nbytes
          end
          qparams = qparams + p:numel()
        end
      end
      local per = qbytes / qparams
      t.assert(per < (want[1] == "int8" and 1.1 or 0.6), ("%s: %.3f bytes per quantized parameter"):format(kind, per))
      local ids = gold.ids
      local logits = m:forward(ids)
      t.assert_tensor_close(logits, gold[kind .. ".logits"], 5e-5, 1e-5, kind .. " logits")
      local loss = lfl.cross_entropy(logits:narrow(2, 1, ids:size()[2] - 1):reshape({-1, logits:size()[3]}),
        ids:narrow(2, 2, ids:size()[2] - 1):reshape({-1}))
      t.assert_close(loss:item(), gold[kind .. ".loss"]:item(), 1e-5, kind .. " loss")
    end
  end,

  lora_trains_and_exports = function()
    local d = checkpoint("bnb_nf4dq_llama", "nf4dq")
    -- quantization_bit equal to the checkpoint's own is accepted (LlamaFactory ignores it on a quantized model)
    local res = lfl.trainer.run(lfl.args.resolve(recipe(d, {quantization_bit = 4}), {}, "test"))
    local h = res.state.log_history
    t.assert(h[#h].loss < h[1].loss * 0.95, ("loss falls: %.4f -> %.4f"):format(h[1].loss, h[#h].loss))
    t.assert_eq(res.state.model.params[Q .. ".weight"]:dtype(), "nf4", "the base stays 4-bit while training")
    -- the adapter merges into the dequantized base; the export is a plain float model
    local out = require("lfl.cmd.export").export({model_name_or_path = d, adapter_name_or_path = tmp .. "/run",
      export_dir = tmp .. "/merged"})
    local cfg = lfl.json.decode(lfl.fs.read(out.dir .. "/config.json"))
    t.assert(cfg.quantization_config == nil, "no quantization_config in the export")
    local m2 = lfl.model.load(out.dir)
    t.assert(m2.prequantized == nil and m2.quantization == nil, "the export loads as a float model")
    t.assert_eq(m2.params[Q .. ".weight"]:dtype(), "f32")
    -- the merged weight is the dequantized base plus the adapter's delta: it moved, by a LoRA-sized step
    local base = lfl.model.load(d, {dequantize = true})
    local moved = (m2.params[Q .. ".weight"] - base.params[Q .. ".weight"]):abs():max():item()
    t.assert(moved > 0 and moved < 1, ("merged - dequantized base: %.4g"):format(moved))
  end,

  refused = function()
    local d = checkpoint("bnb_fp4_llama", "fp4")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {finetuning_type = "full"}), {}, "test")) end,
      "finetuning_type: " .. d .. " is a saved bitsandbytes model (4-bit fp4)")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {resize_vocab = true}), {}, "test")) end,
      "resize_vocab: " .. d .. " is a saved bitsandbytes")
    -- the recipe's defaults (nf4, double quantization) differ from this fp4 checkpoint: said, not ignored
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d, {quantization_bit = 4}), {}, "test")) end,
      "is already a bitsandbytes 4-bit fp4 checkpoint; the quantization asked for (4-bit nf4 with double "
        .. "quantization) differs")
    local d8 = checkpoint("bnb_int8_llama", "int8")
    t.assert_error(function() lfl.trainer.run(lfl.args.resolve(recipe(d8, {quantization_bit = 4}), {}, "test")) end,
      "is already a bitsandbytes 8-bit LLM.int8 checkpoint")
  end,

  broken_checkpoints = function()
    local function refuses(kind, name, want, edit, cfg_edit)
      local d = checkpoint(kind, "broken_" .. name, edit, cfg_edit)
      t.assert_error(function() lfl.model.load(d) end, want)
    end
    local W = Q .. ".weight"
    refuses("bnb_nf4dq_llama", "no_quant_map", W .. ": the checkpoint has no " .. W .. ".quant_map",
      function(ts) ts[W .. ".quant_map"] = nil end)
    refuses("bnb_nf4dq_llama", "blocksize", W .. ": blocksize 128: lfl's 4-bit kernels use bitsandbytes' blocks of 64",
      function(ts)
        local s = {}
        local st = ts[W .. ".quant_state.bitsandbytes__nf4"]
        for i = 1, st:numel() do s[i] = string.char(st:_at(i)) end
        ts[W .. ".quant_state.bitsandbytes__nf4"] = u8_of((table.concat(s):gsub('"blocksize": 64', '"blocksize": 128')))
      end)
    refuses("bnb_nf4dq_llama", "not_json", W .. ": its quant_state is not a JSON object",
      function(ts) ts[W .. ".quant_state.bitsandbytes__nf4"] = u8_of("{not json") end)
    refuses("bnb_fp4_llama", "custom_map", "quant_map[3] is", function(ts)
      local m = ts[W .. ".quant_map"]:clone()
      m:narrow(1, 4, 1):fill_(0.125)
      ts[W .. ".quant_map"] = m
    end)
    refuses("bnb_fp4_llama", "short_absmax", "absmax must be a f32 CPU tensor of 64 elements", function(ts)
      ts[W .. ".absmax"] = ts[W .. ".absmax"]:narrow(1, 1, 3):clone()
    end)
    refuses("bnb_nf4dq_llama", "stray_state", W .. ".absmax is a bitsandbytes state tensor without the rest",
      function(ts) ts[W .. ".quant_state.bitsandbytes__nf4"] = nil end)
    refuses("bnb_nf4dq_llama", "dq_mismatch", "has double quantization but quantization_config says "
      .. "bnb_4bit_use_double_quant: false", nil, function(c) c.quantization_config.bnb_4bit_use_double_quant = false end)
    refuses("bnb_nf4dq_llama", "type_mismatch", "is nf4 but quantization_config says fp4", nil,
      function(c) c.quantization_config.bnb_4bit_quant_type = "fp4" end)
    refuses("bnb_int8_llama", "says_4bit", "quantization_config says bitsandbytes 4-bit but no tensor holds", nil,
      function(c) c.quantization_config.load_in_4bit, c.quantization_config._load_in_4bit = true, true
        c.quantization_config.load_in_8bit, c.quantization_config._load_in_8bit = false, false end)
    refuses("bnb_int8_llama", "no_config", "is int8 without bitsandbytes row scales (SCB)", nil,
      function(c) c.quantization_config = nil end)
    refuses("bnb_int8_llama", "both", "load_in_4bit or load_in_8bit (exactly one)", nil,
      function(c) c.quantization_config.load_in_4bit = true end)
  end,
})

local passed, failed = t.run()
lfl.fs.remove(tmp)
return passed, failed
