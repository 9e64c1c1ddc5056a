-- LoRA on an 8-bit base (quantization_bit 8: bitsandbytes LLM.int8, as
-- transformers' load_in_8bit) on the real small model (SmolLM2-135M-Instruct,
-- the Q4_1 GGUF in ~/.cache/lfl/models): the decoder's linear weights load as
-- int8 with a row scale, SFT steps on the bundled identity data lower the loss,
-- evaluation takes LLM.int8's eval-mode matmul, and the saved adapter is a plain PEFT adapter that loads onto the
-- unquantized base and merges into it (as for a 4-bit base, an adapter is
-- never merged into the quantized weights).
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_qlora_int8_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_qlora8"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function mean(xs, i, j) local s = 0; for k = i, j do s = s + xs[k] end return s / (j - i + 1) end

t.suite("qlora_int8_smollm2", {
  int8_lora_sft_loss_falls = function()
    local out = tmp .. "/sft"
    local tr = lfl.trainer({model_name_or_path = model, stage = "sft", dataset = "identity", template = "smollm",
      quantization_bit = 8, finetuning_type = "lora", lora_rank = 8, lora_target = "all", cutoff_len = 32,
      max_samples = 10, val_size = 2, per_device_train_batch_size = 2, max_steps = 16, logging_steps = 1, save_steps = 1000,
      learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 7, output_dir = out})
    local m = tr.model
    -- the layers' linears are int8 with an f32 absmax per row; embeddings, norms and the head are not
    local q = m.params["model.layers.3.mlp.down_proj.weight"]
    t.assert_eq(q:dtype(), "int8")
    local st = lfl.int8_state(q)
    t.assert_eq(st.SCB:numel(), q:size(1), "a scale per output row")
    t.assert_eq(st.nbytes, q:numel() + 4 * q:size(1))
    t.assert_eq(m.params["model.layers.3.input_layernorm.weight"]:dtype(), "f32")
    t.assert_eq(m.params["model.embed_tokens.weight"]:dtype(), "f32")
    -- the int8 weights are the quantization of what the unquantized load holds
    local f32 = lfl.model.load(model)
    local w = f32.params["model.layers.3.mlp.down_proj.weight"]
    t.assert_tensor_close(st.CB:to("f32"), lfl.int8_state(lfl.quantize_8bit(w)).CB:to("f32"), 0, 0, "CB of the base")
    tr:train()
    local losses = {}
    for _, h in ipairs(tr.log_history) do if h.loss then losses[#losses + 1] = h.loss end end
    t.assert_eq(#losses, 16, "a loss per step")
    local first, last = mean(losses, 1, 3), mean(losses, 14, 16)
    print(fmt("      int8 loss %.4f (steps 1-3) -> %.4f (steps 14-16)", first, last))
    t.assert(last < first * 0.8, fmt("loss %.4f -> %.4f", first, last))
    -- evaluation runs the 8-bit linears in eval mode (LLM.int8's matmul, threshold 6.0), as
    -- transformers' model.eval() does: close to the training-mode loss, not equal to it
    local ev8 = tr:evaluate().eval_loss
    t.assert(m.int8_eval == nil, "eval mode ends with the evaluation")
    local q8 = m.quantization
    m.quantization = nil -- (the training-mode linears, for the comparison only)
    local evf = tr:evaluate().eval_loss
    m.quantization = q8
    print(fmt("      eval loss: LLM.int8 eval mode %.5f, training-mode matmul %.5f", ev8, evf))
    t.assert(ev8 == ev8 and ev8 ~= evf and math.abs(ev8 - evf) < 0.15 * evf, fmt("eval loss %.5f vs %.5f", ev8, evf))
    -- a plain PEFT adapter of the base's shapes
    local cfg = lfl.json.decode(assert(io.open(out .. "/adapter_config.json")):read("*a"))
    t.assert_eq(cfg.peft_type, "LORA"); t.assert_eq(cfg.r, 8)
    local ts = lfl.safetensors.load(out .. "/adapter_model.safetensors")
    local B = ts["base_model.model.model.layers.29.mlp.down_proj.lora_B.weight"]
    t.assert(B, "PEFT key names")
    t.assert_eq(table.concat(B:size(), ","), "576,8")
    -- onto the unquantized base: it changes the outputs, and merging it gives the same outputs
    local x = lfl.tensor({{1, 504, 3060, 314, 2}}, "i64")
    local y0 = lfl.no_grad(function() return f32:forward(x) end)
    lfl.peft.load_adapter(f32, out)
    local y1 = lfl.no_grad(function() return f32:forward(x) end)
    t.assert((y1 - y0):abs():max():item() > 1e-3, "the trained adapter changes the unquantized model")
    require("lfl.train.peft").merge(f32)
    t.assert_eq(f32.params["model.layers.29.mlp.down_proj.weight"]:dtype(), "f32")
    local y2 = lfl.no_grad(function() return f32:forward(x) end)
    t.assert(t.max_abs_diff(y2, y1) <= 1e-3, fmt("merged vs adapter logits %.3g", t.max_abs_diff(y2, y1)))
    -- and never into the int8 weights
    t.assert_error(function() require("lfl.train.peft").merge(m) end, "adapters cannot be merged into a quantized model")
    collectgarbage(); collectgarbage()
  end,
})
t.run()
lfl.fs.remove(tmp)
