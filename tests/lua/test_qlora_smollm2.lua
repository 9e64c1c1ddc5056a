-- QLoRA on the real small model (SmolLM2-135M-Instruct, the Q4_1 GGUF in
-- ~/.cache/lfl/models): quantization_bit 4 with LlamaFactory's defaults (nf4,
-- double quantization) loads the decoder's linear weights as 4-bit, 20 SFT
-- steps on the bundled identity data lower the loss, and the saved adapter is
-- a plain PEFT adapter that loads onto the unquantized base; LlamaFactory's own
-- train_qlora/qwen3_lora_sft_otfq.yaml runs with the model path changed.
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local model = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(model, "rb") then
  print("FAIL test_qlora_smollm2: " .. model .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local base = os.tmpname()
os.remove(base)
local tmp = base .. "_qlora"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
local function mean(xs, i, j) local s = 0; for k = i, j do s = s + xs[k] end return s / (j - i + 1) end

local cases = {}

cases.qlora_sft_loss_falls = function()
  local out = tmp .. "/sft"
  local tr = lfl.trainer({model_name_or_path = model, stage = "sft", dataset = "identity", template = "smollm",
    quantization_bit = 4, finetuning_type = "lora", lora_rank = 8, lora_target = "all", cutoff_len = 32,
    max_samples = 8, per_device_train_batch_size = 2, max_steps = 20, logging_steps = 1, save_steps = 1000,
    learning_rate = 2e-3, overwrite_output_dir = true, disable_tqdm = true, seed = 7, output_dir = out})
  local m = tr.model
  -- the layers' linears are 4-bit (double-quantized nf4); embeddings, norms and the head are not
  local q = m.params["model.layers.3.mlp.down_proj.weight"]
  t.assert_eq(q:dtype(), "nf4")
  t.assert(lfl.q4_state(q).qabsmax ~= nil, "double quantization (LlamaFactory's default)")
  t.assert_eq(m.params["model.layers.3.input_layernorm.weight"]:dtype(), "f32")
  t.assert_eq(m.params["model.embed_tokens.weight"]:dtype(), "f32")
  tr:train()
  local losses = {}
  for _, h in ipairs(tr.log_history) do if h.loss then losses[#losses + 1] = h.loss end end
  t.assert_eq(#losses, 20, "a loss per step")
  local first, last = mean(losses, 1, 3), mean(losses, 18, 20)
  print(fmt("      qlora nf4 loss %.4f (steps 1-3) -> %.4f (steps 18-20)", first, last))
  t.assert(last < first * 0.8, fmt("loss %.4f -> %.4f", first, last))
  -- a plain PEFT adapter: PEFT's keys and config, f32 factors of the base's shapes
  local cfg = lfl.json.decode(assert(io.open(out .. "/adapter_config.json")):read("*a"))
  t.assert_eq(cfg.peft_type, "LORA"); t.assert_eq(cfg.r, 8); t.assert_eq(cfg.lora_alpha, 16)
  local ts = lfl.safetensors.load(out .. "/adapter_model.safetensors")
  local A = ts["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
  local B = ts["base_model.model.model.layers.29.mlp.down_proj.lora_B.weight"]
  t.assert(A and B, "PEFT key names")
  t.assert_eq(A:dtype(), "f32"); t.assert_eq(table.concat(A:size(), ","), "8,576")
  t.assert_eq(table.concat(B:size(), ","), "576,8")
  local n = 0
  for _ in pairs(ts) do n = n + 1 end
  t.assert_eq(n, 30 * 7 * 2, "A and B for the 7 linears of 30 layers")
  -- it loads onto the unquantized base like any adapter, and changes its outputs
  local f32 = lfl.model.load(model)
  local x = lfl.tensor({{1, 504, 3060, 314, 2}}, "i64")
  local y0 = lfl.no_grad(function() return f32:forward(x) end)
  lfl.peft.load_adapter(f32, out)
  local y1 = lfl.no_grad(function() return f32:forward(x) end)
  t.assert((y1 - y0):abs():max():item() > 1e-3, "the trained adapter changes the unquantized model")
  collectgarbage(); collectgarbage()
end

local shared = lfl.home .. "/../shared"
local example = shared .. "/reference/llamafactory-examples/train_qlora/qwen3_lora_sft_otfq.yaml"
cases.llamafactory_example_recipe = function()
  if not exists(example) then
    print("      skipped: " .. example .. " is absent (the LlamaFactory examples live in ../shared)")
    return
  end
  local out = tmp .. "/lf"
  local y = lfl.args.read_yaml(example)
  t.assert_eq(y.quantization_bit, 4); t.assert_eq(y.quantization_method, "bnb")
  require("lfl.cmd.train").run({example, "model_name_or_path=" .. model, "template=smollm",
    "dataset_dir=" .. shared .. "/data/llamafactory-data", "output_dir=" .. out, "cutoff_len=32", "max_samples=2",
    "max_steps=1", "per_device_train_batch_size=2", "gradient_accumulation_steps=1", "logging_steps=1",
    "disable_tqdm=true", "bf16=false"})
  for _, f in ipairs({"adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl"}) do
    t.assert(exists(out .. "/" .. f), "qwen3_lora_sft_otfq.yaml wrote " .. f)
  end
  collectgarbage(); collectgarbage()
end

t.suite("qlora_smollm2", cases)
t.run()
lfl.fs.remove(tmp)
