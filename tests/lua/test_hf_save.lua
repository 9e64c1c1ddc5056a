-- Complete Hugging Face folders out of lfl (issue 15): a tokenizer written back
-- as tokenizer.json (tok:to_json) tokenizes as the original on the goldens; the
-- tokenizer files lfl writes for a GGUF vocabulary tokenize, in lfl, as
-- transformers' AutoTokenizer does with them (goldens of
-- tests/ref/make_hf_export_goldens.py) and render its chat template the same;
-- full / freeze fine-tuning of the real SmolLM2 GGUF leaves an output_dir that
-- lfl.model.load (lfl chat --model) takes with the trained logits and the GGUF's
-- tokenization; lfl export of a GGUF base writes the tokenizer too.
local t = lfl.test
local tg = dofile(lfl.home .. "/tests/lua/lib/tokgolden.lua")
local hf_files = require("lfl.model.hf_files")
local fmt = string.format
local S = lfl.home .. "/../shared/data/"
local V = S .. "tokenizer-vectors/"
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local SMOL = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(SMOL, "rb") then
  print("FAIL test_hf_save: " .. SMOL .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local tmp = os.tmpname() .. "_hfsave"
lfl.fs.mkdir(tmp)

local GGUF_VOCABS = {"llama-spm", "phi-3", "gpt-2", "mpt", "falcon", "deepseek-llm", "deepseek-coder", "starcoder",
                     "refact", "baichuan", "gpt-neox"}
local function vocab_path(name) return name == "smollm2" and SMOL or V .. "ggml-vocab-" .. name .. ".gguf" end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- the 46 test strings of every llama.cpp vector file plus the tokenizer corpus
local function sample_texts()
  local out = {}
  for _, name in ipairs(GGUF_VOCABS) do
    local f = io.open(V .. "ggml-vocab-" .. name .. ".gguf.inp", "rb")
    if f then
      local s = f:read("*a") .. "\n__ggml_vocab_test__\n"
      f:close()
      local i = 1
      while true do
        local a, b = s:find("\n__ggml_vocab_test__\n", i, true)
        if not a then break end
        out[#out + 1] = s:sub(i, a - 1)
        i = b + 1
      end
    end
  end
  for _, s in ipairs(tg.texts()) do out[#out + 1] = s end
  return out
end

-- {equal, compared}: a and b give the same ids (with and without special
-- tokens, specials unparsed) and decode them alike on every sample text
local function same_tokenization(a, b, label)
  local eq, n, first = 0, 0, nil
  for _, s in ipairs(sample_texts()) do
    for _, o in ipairs({{offsets = false}, {add_special_tokens = false, offsets = false},
                        {add_special_tokens = false, parse_special = false, offsets = false}}) do
      local x, y = a:encode(s, o), b:encode(s, o)
      n = n + 1
      if table.concat(x, " ") == table.concat(y, " ") and a:decode(x) == b:decode(x) then eq = eq + 1
      else first = first or s end
    end
  end
  if os.getenv("LFL_VERBOSE") then print(fmt("%s: %d/%d encodings equal", label, eq, n)) end
  t.assert(eq == n, fmt("%s: %d of %d encodings differ, first on %s", label, n - eq, n, tg.show(first or "")))
  return eq, n
end

local function files_of(dir)
  local set = {}
  for _, f in ipairs(lfl.fs.list(dir)) do set[f] = true end
  return set
end

local function assert_complete(dir, label)
  local have = files_of(dir)
  for _, f in ipairs({"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                      "special_tokens_map.json", "generation_config.json"}) do
    t.assert(have[f], fmt("%s: %s/%s is missing", label, dir, f))
  end
end

local function json_file(p) return lfl.json.decode(read(p), p) end

-- deep equality through the (key-sorted) JSON text
local function same(a, b, msg)
  local x, y = lfl.json.encode(a), lfl.json.encode(b)
  t.assert(x == y, fmt("%s: expected %s, got %s", msg or "values", y, x))
end

local function train(over)
  local a = {model_name_or_path = SMOL, stage = "sft", dataset = "alpaca_demo", template = "smollm", cutoff_len = 16,
    max_samples = 2, per_device_train_batch_size = 1, max_steps = 2, logging_steps = 1, save_steps = 1000,
    learning_rate = 1e-5, overwrite_output_dir = true, disable_tqdm = true, seed = 3}
  for k, v in pairs(over) do a[k] = v end
  return lfl.trainer.run(lfl.args.resolve(a, {}, "test"))
end

local IDS = lfl.tensor({{1, 504, 3458, 314, 253, 1165, 28, 2, 4190}}, "i64")

t.suite("hf_save", {
  -- every tokenizer of the golden suites, written as tokenizer.json and loaded
  -- back, still matches the Hugging Face goldens
  tokenizer_json_roundtrip = function()
    local srcs = {}
    for _, n in ipairs(GGUF_VOCABS) do srcs[#srcs + 1] = {vocab_path(n), "gguf-" .. n} end
    for _, n in ipairs({"llama2", "llama3", "qwen3", "deepseek_v3", "gemma3"}) do
      srcs[#srcs + 1] = {S .. "tokenizers/" .. n, n}
    end
    for _, n in ipairs({"synth-metaspace", "synth-bytelevel", "synth-suffix", "synth-splits"}) do
      srcs[#srcs + 1] = {tg.DIR .. n .. ".tokenizer.json", n}
    end
    local total = 0
    for _, s in ipairs(srcs) do
      local p = tmp .. "/rt-" .. s[2] .. ".json"
      lfl.fs.write(p, lfl.tokenizer.load(s[1]):to_json())
      total = total + tg.check(lfl.tokenizer.load(p), s[2])
    end
    if os.getenv("LFL_VERBOSE") then print(fmt("round trip: %d tokenizers, %d checks", #srcs, total)) end
  end,

  -- (c) transformers loads the files lfl writes for a GGUF; lfl's encoding of
  -- them, its special tokens and its rendering of their chat template match
  hf_export_goldens = function()
    local total = 0
    for _, name in ipairs({"smollm2", unpack(GGUF_VOCABS)}) do
      local dir = tmp .. "/tok-" .. name
      local written = hf_files.write_tokenizer(vocab_path(name), dir)
      t.assert_eq(table.concat(written, ","), "tokenizer.json,tokenizer_config.json,special_tokens_map.json", name)
      local g = tg.read("hf-export-" .. name)
      local tok = lfl.tokenizer.load(dir)
      local bad, n = tg.compare(tok, g)
      t.assert(#bad == 0, fmt("%s: %d mismatches with transformers\n  %s", name, #bad,
        table.concat(bad, "\n  ", 1, math.min(#bad, 5))))
      total = total + n
      local info = g.tokenizer
      for _, k in ipairs({"bos", "eos", "pad", "unk"}) do
        local id = tok[k .. "_id"]
        local want = info[k .. "_token"]
        if type(want) ~= "string" then want = nil end -- the golden's null
        t.assert_eq(id and tok:id_to_token(id) or nil, want, name .. " " .. k .. "_token")
      end
      local cfg = json_file(dir .. "/tokenizer_config.json")
      t.assert_eq(cfg.model_max_length, info.model_max_length, name .. " model_max_length")
      if info.chat then
        local got = lfl.jinja.apply_chat_template(cfg.chat_template, g.conversation, {add_generation_prompt = true,
          bos_token = cfg.bos_token, eos_token = cfg.eos_token, unk_token = cfg.unk_token, pad_token = cfg.pad_token})
        t.assert_eq(got, info.chat, name .. ": chat template rendering")
      else
        t.assert_eq(cfg.chat_template, nil, name .. ": no chat template in the GGUF")
      end
    end
    if os.getenv("LFL_VERBOSE") then print(fmt("transformers goldens: %d checks", total)) end
  end,

  gguf_tokenizer_files = function()
    local dir = tmp .. "/smol-tok"
    hf_files.write_tokenizer(SMOL, dir)
    local meta = lfl.gguf.read(SMOL).metadata
    local cfg = json_file(dir .. "/tokenizer_config.json")
    t.assert_eq(cfg.chat_template, meta["tokenizer.chat_template"])
    t.assert_eq(cfg.bos_token, "<|im_start|>")
    t.assert_eq(cfg.eos_token, "<|im_end|>")
    t.assert_eq(cfg.pad_token, "<|im_end|>")
    t.assert_eq(cfg.unk_token, "<|endoftext|>")
    t.assert_eq(cfg.add_bos_token, false)
    t.assert_eq(cfg.model_max_length, 8192)
    t.assert_eq(cfg.added_tokens_decoder["2"].content, "<|im_end|>")
    t.assert_eq(cfg.added_tokens_decoder["2"].special, true)
    local map = json_file(dir .. "/special_tokens_map.json")
    t.assert_eq(map.eos_token.content, "<|im_end|>")
    local a, b = lfl.tokenizer.load(SMOL), lfl.tokenizer.load(dir)
    same({b.bos_id, b.eos_id, b.pad_id, b.unk_id}, {a.bos_id, a.eos_id, a.pad_id, a.unk_id}, "special ids")
    same_tokenization(a, b, "SmolLM2 GGUF vs its tokenizer.json")
    -- a SentencePiece-style GGUF adds BOS (tokenizer.ggml.add_bos_token defaults to true there)
    local spm = tmp .. "/spm-tok"
    hf_files.write_tokenizer(vocab_path("llama-spm"), spm)
    t.assert_eq(json_file(spm .. "/tokenizer_config.json").add_bos_token, true)
    t.assert_eq((lfl.tokenizer.load(spm):encode("Hi", {offsets = false}))[1], 1, "BOS first")
    same_tokenization(lfl.tokenizer.load(vocab_path("llama-spm")), lfl.tokenizer.load(spm), "llama-spm")
    local g = hf_files.gguf_generation_config(meta)
    same({g.bos_token_id, g.eos_token_id, g.pad_token_id}, {1, 2, 2})
    -- end-of-turn ids join eos as a list, as HF's generation_config lists them
    local g2 = hf_files.gguf_generation_config({["tokenizer.ggml.eos_token_id"] = 128001,
      ["tokenizer.ggml.eot_token_id"] = 128009, ["tokenizer.ggml.bos_token_id"] = 128000})
    same(g2.eos_token_id, {128001, 128009})
  end,

  refuses_other_tokenizer_models = function()
    t.assert_error(function() hf_files.write_tokenizer(V .. "ggml-vocab-bert-bge.gguf", tmp .. "/bert") end,
      "tokenizer.ggml.model 'bert' is not supported")
    t.assert(not lfl.fs.exists(tmp .. "/bert/tokenizer.json"), "nothing written for a refused tokenizer")
    t.assert_error(function() hf_files.gguf_tokenizer_files("bare.gguf", {["general.architecture"] = "llama"}) end,
      "bare.gguf: cannot write Hugging Face tokenizer files: the GGUF has no tokenizer")
  end,

  -- (a) full fine-tuning of a GGUF base leaves a folder lfl chat --model loads
  full_finetune_gguf = function()
    local out = tmp .. "/full"
    local res = train({finetuning_type = "full", output_dir = out})
    assert_complete(out, "full")
    local cfg = json_file(out .. "/config.json")
    t.assert_eq(cfg.model_type, "llama")
    same(cfg.architectures, {"LlamaForCausalLM"})
    t.assert_eq(cfg.torch_dtype, "float32")
    t.assert_eq(cfg.tie_word_embeddings, true)
    t.assert_eq(cfg.hidden_act, "silu")
    t.assert_eq(cfg.rms_norm_eps, 1e-5, "the f32 epsilon as config.json had it")
    t.assert_eq(cfg.rope_theta, 100000)
    local gen = json_file(out .. "/generation_config.json")
    same({gen.bos_token_id, gen.eos_token_id}, {1, 2})
    -- what lfl chat --model <out> does: lfl.model.load + the folder's tokenizer and chat_template
    local m = lfl.model.load(out)
    local want = lfl.no_grad(function() return res.model:forward(IDS) end)
    local got = lfl.no_grad(function() return m:forward(IDS) end)
    t.assert_tensor_close(got, want, 0, 0)
    local gm, gt = lfl.model.load(SMOL), lfl.tokenizer.load(SMOL)
    local base = lfl.no_grad(function() return gm:forward(IDS) end)
    t.assert((got - base):abs():max():item() > 0, "the saved weights are the trained ones")
    local tok = lfl.chat.tokenizer(m)
    same_tokenization(gt, tok, "full output_dir vs GGUF")
    t.assert_eq(json_file(out .. "/tokenizer_config.json").chat_template,
      lfl.gguf.read(SMOL).metadata["tokenizer.chat_template"])
    -- the chat template (from tokenizer_config.json) encodes a conversation as the GGUF's does
    local msgs = {{role = "user", content = "Hi there"}, {role = "assistant", content = "Hello!"}}
    same(lfl.chat.template(m, tok):encode_ids(tok, msgs), lfl.chat.template(gm, gt):encode_ids(gt, msgs), "chat")
  end,

  -- freeze in bf16 with a new special token: a mixed-dtype folder (f32 trained
  -- layers, bf16 frozen rest, as LlamaFactory saves it) with the grown tokenizer
  freeze_bf16_add_tokens_gguf = function()
    local out = tmp .. "/freeze"
    local res = train({finetuning_type = "freeze", freeze_trainable_layers = 1, freeze_extra_modules = "embed_tokens",
      max_steps = 1,
      bf16 = true, add_special_tokens = "<lfl_tool>", output_dir = out})
    assert_complete(out, "freeze")
    local cfg = json_file(out .. "/config.json")
    t.assert_eq(cfg.torch_dtype, "bfloat16")
    t.assert_eq(cfg.vocab_size, 49216, "49153 tokens rounded up to a multiple of 64")
    local tok = lfl.tokenizer.load(out)
    t.assert_eq(tok:token_to_id("<lfl_tool>"), 49152)
    t.assert(tok:is_special(49152), "added as a special token")
    local saved = lfl.safetensors.load(out .. "/model.safetensors")
    local m = res.model
    for _, n in ipairs(m.names) do
      t.assert(saved[n], "saved " .. n)
      t.assert_eq(saved[n]:dtype(), m.params[n]:dtype(), n)
      t.assert_tensor_close(saved[n]:to("f32"), m.params[n]:detach():to("f32"), 0, 0)
    end
    t.assert_eq(saved["model.layers.29.mlp.up_proj.weight"]:dtype(), "f32", "the trained layer's f32 master")
    t.assert_eq(saved["model.layers.0.mlp.up_proj.weight"]:dtype(), "bf16", "a frozen layer stays bf16")
    local m2 = lfl.model.load(out)
    local want = lfl.no_grad(function() return m:forward(IDS) end)
    -- f32 GEMMs over the widened weights vs the bf16 tiles of training: sums in another order
    t.assert_tensor_close(lfl.no_grad(function() return m2:forward(IDS) end), want, 1e-4, 1e-5)
  end,

  -- (b) lfl export of a GGUF base writes the tokenizer and reloads alike
  export_gguf_base = function()
    local out = tmp .. "/export"
    local code = require("lfl.cmd.export").run({"model_name_or_path=" .. SMOL, "export_dir=" .. out})
    t.assert_eq(code, 0)
    assert_complete(out, "export")
    same_tokenization(lfl.tokenizer.load(SMOL), lfl.tokenizer.load(out), "export vs GGUF")
    local m = lfl.model.load(out)
    local want = lfl.no_grad(function() return lfl.model.load(SMOL):forward(IDS) end)
    t.assert_tensor_close(lfl.no_grad(function() return m:forward(IDS) end), want, 0, 0)
  end,

  -- an HF base's tokenizer files are copied; a folder without a
  -- generation_config.json gets one from config.json's ids
  hf_base_save = function()
    local src = tmp .. "/hfbase"
    lfl.fs.mkdir(src)
    for _, f in ipairs({"config.json", "model.safetensors"}) do
      lfl.fs.copy(lfl.home .. "/tests/golden/models/llama/" .. f, src .. "/" .. f)
    end
    for _, f in ipairs({"tokenizer.json", "tokenizer_config.json"}) do
      lfl.fs.copy(S .. "tokenizers/llama2/" .. f, src .. "/" .. f)
    end
    local m = lfl.model.load(src)
    local dir, files = m:save(tmp .. "/hfsaved")
    t.assert_eq(table.concat(files, ","), "tokenizer.json,tokenizer_config.json,generation_config.json")
    t.assert_eq(read(dir .. "/tokenizer.json"), read(src .. "/tokenizer.json"))
    local c = json_file(src .. "/config.json")
    local g = json_file(dir .. "/generation_config.json")
    same({g.bos_token_id, g.eos_token_id}, {c.bos_token_id, c.eos_token_id})
    t.assert_eq(json_file(dir .. "/config.json").torch_dtype, "float32")
    local _, none = m:save(tmp .. "/hfsaved2", {tokenizer = false, generation_config = false})
    t.assert_eq(#none, 0)
    t.assert(not lfl.fs.exists(tmp .. "/hfsaved2/tokenizer.json"), "tokenizer = false writes none")
  end,

  -- GGUF metadata -> config.json: f32 floats as the decimals config.json had,
  -- rope scaling, unknown scaling refused
  gguf_config = function()
    local gguf = require("lfl.model.gguf")
    local f32 = function(x) return lfl.tensor({x}):_at(1) end
    t.assert_eq(gguf.f32_decimal(f32(1e-5)), 1e-5)
    t.assert_eq(gguf.f32_decimal(f32(1e-6)), 1e-6)
    t.assert_eq(gguf.f32_decimal(f32(0.1)), 0.1)
    t.assert_eq(gguf.f32_decimal(1 / 3), 1 / 3, "a value that is not an f32 stays")
    t.assert_eq(gguf.f32_decimal(4096), 4096)
    local meta = {["general.architecture"] = "qwen2", ["qwen2.embedding_length"] = 64, ["qwen2.block_count"] = 2,
      ["qwen2.feed_forward_length"] = 128, ["qwen2.attention.head_count"] = 4, ["qwen2.context_length"] = 32768,
      ["qwen2.attention.layer_norm_rms_epsilon"] = f32(1e-6), ["qwen2.rope.freq_base"] = 1e6,
      ["qwen2.rope.scaling.type"] = "yarn", ["qwen2.rope.scaling.factor"] = 4,
      ["qwen2.rope.scaling.original_context_length"] = 32768}
    local cfg = gguf.config(meta, "x.gguf")
    t.assert_eq(cfg.rms_norm_eps, 1e-6)
    same(cfg.rope_scaling, {rope_type = "yarn", type = "yarn", factor = 4,
      original_max_position_embeddings = 32768})
    meta["qwen2.rope.scaling.type"] = "linear"
    same(gguf.config(meta, "x.gguf").rope_scaling, {rope_type = "linear", type = "linear", factor = 4})
    meta["qwen2.rope.scaling.type"] = "none"
    t.assert_eq(gguf.config(meta, "x.gguf").rope_scaling, nil)
    meta["qwen2.rope.scaling.type"] = "longrope"
    t.assert_error(function() gguf.config(meta, "x.gguf") end, "rope scaling type 'longrope'")
  end,
})

t.run()
lfl.fs.remove(tmp)
