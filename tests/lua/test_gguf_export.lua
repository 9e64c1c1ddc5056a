-- GGUF export (lfl export export_format=gguf): the ggml quantizers against
-- error bounds and a naive 4-bit baseline, the GGUF writer's metadata types
-- and refusals, the tiny golden llama written and read back with the same
-- logits (q/k permutation and config keys are the reader's inverse), and the
-- real SmolLM2-135M-Instruct with a LoRA adapter merged, exported as f16 /
-- q8_0 / q4_k and reloaded: metadata, tokenizer, chat template and greedy text.
local t = lfl.test
local fmt = string.format
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")
local SMOL = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if not io.open(SMOL, "rb") then
  print("FAIL test_gguf_export: " .. SMOL .. " is missing (tests/fixtures.sh fetches it)")
  os.exit(1)
end
local tmp = os.tmpname()
os.remove(tmp)
tmp = tmp .. "_ggufx"
lfl.fs.mkdir(tmp)
local gx = require("lfl.model.gguf_export")
local peft = require("lfl.train.peft")
local gen = require("lfl.infer.generate")

local function rms(x) return ((x * x):mean():_at(1)) ^ 0.5 end
local function cosine(a, b)
  return (a * b):sum():_at(1) / (((a * a):sum():_at(1) * (b * b):sum():_at(1)) ^ 0.5)
end

-- Q4_1-style min/max 4-bit quantization per 32 values, the baseline Q4_K's
-- scale search must at least match (it has the same 4 bits and coarser scales)
local function naive4(x)
  local s = x:size()
  local b = x:reshape(-1, 32)
  local lo, hi = b:min(2):reshape(-1, 1), b:max(2):reshape(-1, 1)
  local d = (hi - lo) / 15
  -- f32 adds of 1.5 x 2^23 round to the nearest integer (there is no round
  -- op); (b - lo) / d lies in [0, 15] already
  local q = ((b - lo) / (d + 1e-30)) + 12582912 - 12582912
  return (q * d + lo):reshape(s[1], s[2])
end

-- per-block max |x| as a [rows, cols / 32] tensor broadcast back to x's shape
local function block_amax(x, n)
  local s = x:size()
  return x:abs():reshape(-1, n):max(2):reshape(-1, 1):expand(s[1] * s[2] / n, n):reshape(s[1], s[2])
end

local function roundtrip(x, ty)
  local q = lfl.gguf.quantize(x, ty)
  t.assert_eq(q:dtype(), ty)
  return q:to("f32")
end

-- rows to quantize: gaussian, shifted, heavy-tailed, constant, zero, and real
-- weights of SmolLM2 (down_proj rows have 1536 = 6 x 256 values)
local function test_rows()
  lfl.manual_seed(11)
  local g = lfl.randn(16, 512)
  local rows = {
    gaussian = g,
    shifted = g * 0.5 + 3,
    tails = g * g * g,
    small = g * 1e-4,
    constant = lfl.ones(2, 512) * 0.25,
    zero = lfl.zeros(2, 512),
  }
  local w = lfl.gguf.tensors(SMOL)["blk.5.ffn_down.weight"]:to("f32")
  rows.smollm2 = w:narrow(1, 1, 64):contiguous()
  return rows
end

t.suite("gguf_export", {
  q8_0_and_q5_0_within_half_a_step = function()
    for name, x in pairs(test_rows()) do
      local amax = block_amax(x, 32)
      -- Q8_0: scale d = amax/127 rounded to f16 (2^-11 relative, or 2^-25
      -- absolute where it is subnormal), values rounded to the nearest step
      local e8 = (roundtrip(x, "q8_0") - x):abs()
      local d8 = amax / 127
      t.assert(((e8 - (d8 * 0.5 + (d8 * 2 ^ -11 + 2 ^ -25) * 127)):max():_at(1)) <= 1e-12,
        fmt("%s: q8_0 error %.3g exceeds half a step", name, e8:max():_at(1)))
      -- Q5_0: the largest value maps to -16 exactly; the far side may clip by one step
      local e5 = (roundtrip(x, "q5_0") - x):abs()
      local d5 = amax / 16
      t.assert(((e5 - (d5 + (d5 * 2 ^ -11 + 2 ^ -25) * 16)):max():_at(1)) <= 1e-12,
        fmt("%s: q5_0 error %.3g exceeds a step", name, e5:max():_at(1)))
      if name == "zero" then
        t.assert_eq((roundtrip(x, "q8_0") - x):abs():max():_at(1), 0, "zeros are exact in q8_0")
        t.assert_eq((roundtrip(x, "q4_k") - x):abs():max():_at(1), 0, "zeros are exact in q4_k")
      end
    end
  end,

  -- the bytes ggml's own quantizer wrote (tests/ref/make_ggml_quant_goldens.py:
  -- ggml_quantize_chunk of llama.cpp's libggml-base) for gaussian, shifted,
  -- heavy-tailed, tiny, constant and tied rows: the same values, bit for bit
  same_as_ggml = function()
    local g = lfl.safetensors.load(lfl.home .. "/tests/golden/io/ggml_quant.safetensors")
    local x = g.x
    local s = x:size()
    for _, ty in ipairs({"q8_0", "q5_0", "q4_k"}) do
      local ref = lfl.from_bytes(g[ty]:contiguous(), ty, {s[1], s[2]}):to("f32")
      local got = lfl.gguf.quantize(x, ty):to("f32")
      t.assert_tensor_close(got, ref, 0, 0, ty .. " as ggml quantizes it")
    end
  end,

  q4_k_error_comparable = function()
    for name, x in pairs(test_rows()) do
      local y = roundtrip(x, "q4_k")
      local err, base = rms(y - x), rms(naive4(x) - x)
      print(fmt("      q4_k %-9s rms error %.4g (min/max 4-bit per 32: %.4g, rms of x %.4g)", name, err, base, rms(x)))
      -- the scale search beats plain min/max on every kind of row but the
      -- degenerate ones, where both are (nearly) exact
      if name == "shifted" then
        -- make_qkx2_quants keeps a sub-block's min <= 0, so rows far from zero
        -- get the step max/15 (Q4_1 with its free min does better there)
        local step = x:max():_at(1) / 15
        t.assert(err <= step / 12 ^ 0.5 * 1.3, fmt("shifted: q4_k rms error %.4g, step %.4g", err, step))
      elseif name == "smollm2" then
        -- rows of a Q4_1 file sit on Q4_1's grid already (min/max is exact
        -- there); Q4_K's 6-bit sub-block scales cannot follow it exactly
        t.assert(err < 0.03 * rms(x), fmt("smollm2: q4_k rms error %.4g, rms %.4g", err, rms(x)))
      elseif base > 0 then
        t.assert(err <= base * 1.05, fmt("%s: q4_k rms error %.4g vs min/max %.4g", name, err, base))
      else
        t.assert(err <= 1e-3 * rms(x), fmt("%s: q4_k error %.4g on a constant row", name, err))
      end
      if name == "gaussian" then
        -- ggml's test-quantize-fns allows 0.002 absolute mean-squared error on
        -- rows of cos() values; on N(0, 1) rows Q4_K's rms is about 0.07
        t.assert(err < 0.08, fmt("gaussian q4_k rms %.4f", err))
      end
    end
    t.assert_error(function() lfl.gguf.quantize(lfl.randn(2, 96), "q4_k") end, "multiple of its block (256)")
    t.assert_error(function() lfl.gguf.quantize(lfl.randn(2, 64), "q6_k") end, "no quantizer for q6_k")
  end,

  writer_metadata_types = function()
    local path = tmp .. "/kv.gguf"
    local x = lfl.randn(3, 64)
    lfl.gguf.write(path, {
      kv = {
        {"general.architecture", "string", "llama"}, {"a.u8", "u8", 255}, {"a.i8", "i8", -128},
        {"a.u16", "u16", 65535}, {"a.i16", "i16", -32768}, {"a.u32", "u32", 4294967295},
        {"a.i32", "i32", -2147483648}, {"a.u64", "u64", 2 ^ 53}, {"a.i64", "i64", -2 ^ 40},
        {"a.f32", "f32", 0.1}, {"a.f64", "f64", 0.1}, {"a.t", "bool", true}, {"a.f", "bool", false},
        {"a.s", "string", "caf\xc3\xa9\0x"}, {"a.strs", "[string]", {"a b", "", "\xe2\x96\x81x"}},
        {"a.f32s", "[f32]", {1.5, -2, 0.1}}, {"a.i32s", "[i32]", {3, -4}}, {"a.bools", "[bool]", {true, false}},
        {"a.empty", "[string]", {}},
      },
      tensors = {{"w32", x, "f32"}, {"w16", x, "f16"}, {"wbf", x, "bf16"}, {"w8", x, "q8_0"}, {"v", lfl.ones(5), "f32"}},
    })
    local r = lfl.gguf.read(path)
    local m = r.metadata
    t.assert_eq(r.version, 3)
    t.assert_eq(m["a.u8"], 255); t.assert_eq(m["a.i8"], -128); t.assert_eq(m["a.u16"], 65535)
    t.assert_eq(m["a.i16"], -32768); t.assert_eq(m["a.u32"], 4294967295); t.assert_eq(m["a.i32"], -2147483648)
    t.assert_eq(m["a.u64"], 2 ^ 53); t.assert_eq(m["a.i64"], -2 ^ 40)
    t.assert_eq(m["a.f32"], lfl.tensor({0.1}):_at(1), "f32 keeps f32 precision"); t.assert_eq(m["a.f64"], 0.1)
    t.assert_eq(m["a.t"], true); t.assert_eq(m["a.f"], false); t.assert_eq(m["a.s"], "caf\xc3\xa9\0x")
    t.assert_eq(table.concat(m["a.strs"], "|"), "a b||\xe2\x96\x81x")
    t.assert_eq(table.concat(m["a.f32s"], ","), "1.5,-2," .. lfl.tensor({0.1}):_at(1))
    t.assert_eq(table.concat(m["a.i32s"], ","), "3,-4"); t.assert_eq(m["a.bools"][1], true)
    t.assert_eq(#m["a.empty"], 0)
    local types = {}
    for _, ti in ipairs(r.tensors) do
      types[ti.name] = ti.type
      t.assert_eq(ti.offset % 32, 0, ti.name .. " is 32-byte aligned")
    end
    t.assert_eq(types.w32, "f32"); t.assert_eq(types.w16, "f16"); t.assert_eq(types.wbf, "bf16")
    t.assert_eq(types.w8, "q8_0")
    local ts = lfl.gguf.tensors(path)
    t.assert_eq(table.concat(ts.w32:size(), ","), "3,64")
    t.assert_tensor_close(ts.w32, x, 0, 0)
    t.assert_tensor_close(ts.w16:to("f32"), x:to("f16"):to("f32"), 0, 0)
    t.assert_tensor_close(ts.wbf:to("f32"), x:to("bf16"):to("f32"), 0, 0)
    t.assert_tensor_close(ts.w8:to("f32"), lfl.gguf.quantize(x, "q8_0"):to("f32"), 0, 0)
    -- bad input is refused by name, and the file already there stays as it was
    local before = lfl.fs.read(path)
    local function bad(spec, pattern)
      t.assert_error(function() lfl.gguf.write(path, spec) end, pattern)
      t.assert(lfl.fs.read(path) == before, "a refused write leaves the old file: " .. pattern)
    end
    bad({kv = {{"k", "u8", 256}}}, "'k': 256 is not a u8")
    bad({kv = {{"k", "i32", 1.5}}}, "not an integer")
    bad({kv = {{"k", "u32", 1}, {"k", "u32", 2}}}, "'k' set twice")
    bad({kv = {{"k", "[i8]", {1, 300}}}}, "element 2")
    bad({kv = {{"k", "[string]", {"a", 5}}}}, "element 2 is a number, expected a string")
    bad({kv = {{"k", "float", 1}}}, "unknown type 'float'")
    bad({kv = {{"tokenizer.x", "copy"}}}, "spec.copy_from is not set")
    bad({kv = {{"tokenizer.nope", "copy"}}, copy_from = SMOL}, "'tokenizer.nope' is not in")
    bad({tensors = {{"w", lfl.randn(2, 48), "q8_0"}}}, "last dimension 48 is not a multiple of the q8_0 block")
    bad({tensors = {{"w", x, "q4_1"}}}, "cannot convert f32 to q4_1")
    bad({tensors = {{"w", x, "f32"}, {"w", x, "f16"}}}, "tensor 'w' added twice")
    bad({tensors = {{string.rep("n", 64), x, "f32"}}}, "longer than ggml's 63 characters")
    t.assert_error(function() lfl.gguf.write(tmp .. "/no/such/dir/x.gguf", {}) end, "No such file")
    local left = lfl.fs.list(tmp)
    for _, n in ipairs(left) do t.assert(not n:find("%.tmp%-"), "no temporary file is left: " .. n) end
  end,

  -- the tiny golden llama (4 heads, 2 kv heads: q and k permuted with
  -- different head counts), its linear- and yarn-rope siblings, Qwen2 (q/k/v biases,
  -- not permuted) and Qwen3 (q/k norms, tied head): written in f32 and read
  -- back by lfl's GGUF reader, the logits are the same bits
  tiny_roundtrip = function()
    local ids = lfl.tensor({{3, 5, 7, 11, 13, 17}}, "i64")
    for _, name in ipairs({"llama", "llama_linear_rope", "llama_yarn_rope", "qwen2", "qwen3"}) do
      local m = lfl.model.load(lfl.home .. "/tests/golden/models/" .. name)
      local want = lfl.no_grad(function() return m:forward(ids) end)
      local path = fmt("%s/%s.gguf", tmp, name)
      local r = gx.write(m, path, {quantization = "f32", tokenizer = false})
      t.assert_eq(r.types["blk.0.attn_q.weight"], "f32")
      local meta = lfl.gguf.read(path).metadata
      local arch = name:match("^qwen") and name or "llama"
      t.assert_eq(meta["general.architecture"], arch)
      t.assert_eq(meta[arch .. ".attention.head_count_kv"], m.config.num_key_value_heads)
      local m2 = lfl.model.load(path)
      for _, k in ipairs({"hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
                          "num_key_value_heads", "rms_norm_eps", "max_position_embeddings"}) do
        t.assert_eq(m2.config[k], m.config[k], name .. " config " .. k)
      end
      t.assert_eq(m2.config.head_dim, m.config.head_dim or m.config.hidden_size / m.config.num_attention_heads)
      local got = lfl.no_grad(function() return m2:forward(ids) end)
      t.assert_tensor_close(got, want, 0, 0, name .. ": same logits after the GGUF round trip")
      -- the permutation is llama.cpp's: q rows of head 0 interleave its two halves
      local q, gq = m.params["model.layers.0.self_attn.q_proj.weight"], lfl.gguf.tensors(path)["blk.0.attn_q.weight"]
      local hd = m.config.head_dim or m.config.hidden_size / m.config.num_attention_heads
      local row = arch == "llama" and hd / 2 + 1 or 2
      t.assert_tensor_close(gq:narrow(1, 2, 1), q:narrow(1, row, 1), 0, 0, name .. ": row 2 of the GGUF's q")
      if name == "qwen2" then t.assert(r.types["blk.1.attn_k.bias"] == "f32", "qwen2 keeps its biases") end
      if name == "qwen3" then t.assert(r.types["blk.0.attn_q_norm.weight"] == "f32", "qwen3's q norm") end
    end
    -- what the writer (or lfl's reader) cannot carry is refused by name
    local function refused(name, pattern)
      local mm = lfl.model.load(lfl.home .. "/tests/golden/models/" .. name)
      t.assert_error(function() gx.write(mm, tmp .. "/r.gguf", {tokenizer = false}) end, pattern)
    end
    refused("llama_bias", "q/k biases of a llama model are not written")
    -- llama3 scaling travels as rope_freqs.weight (written since; test_models checks it); dynamic has no GGUF form
    local dyn = lfl.model.load(lfl.home .. "/tests/golden/models/llama", {rope_scaling = {type = "dynamic", max_length = 100}})
    t.assert_error(function() gx.write(dyn, tmp .. "/r.gguf", {tokenizer = false}) end,
      "rope scaling 'dynamic' cannot be written")
    refused("mistral_window", "model_type 'mistral' to GGUF is not supported yet")
    local gm = lfl.model.load(lfl.home .. "/tests/golden/models/gemma")
    t.assert_error(function() gx.write(gm, tmp .. "/g.gguf", {tokenizer = false}) end,
      "model_type 'gemma' to GGUF is not supported yet")
    local lm = lfl.model.load(lfl.home .. "/tests/golden/models/llama")
    t.assert_error(function() gx.write(lm, tmp .. "/t.gguf") end,
      "has no tokenizer.json, which a GGUF export takes its tokenizer from")
    t.assert_error(function() gx.write(lm, tmp .. "/t.gguf", {quantization = "q2_k"}) end,
      "quantization 'q2_k' is not one lfl writes")
  end,

  smollm2_lora_merged_export = function()
    lfl.manual_seed(5)
    local m = lfl.model.load(SMOL)
    peft.add_lora(m, {rank = 4, target = "all"})
    local names = {}
    for n in pairs(m.adapters) do names[#names + 1] = n end
    table.sort(names) -- the same draws on every run
    for _, n in ipairs(names) do m.adapters[n].B:normal_(0, 0.1) end -- an adapter that changes the text
    peft.save_adapter(m, tmp .. "/adapter", SMOL)
    peft.merge(m)
    local tok = lfl.tokenizer.load(SMOL)
    local ids = tok:encode("The capital of France is")
    local want = gen.generate(m, ids, {do_sample = false, max_new_tokens = 24})
    local base_text = gen.generate(lfl.model.load(SMOL), ids, {do_sample = false, max_new_tokens = 24})
    collectgarbage() -- each SmolLM2 in f32 is 0.5 GB: one at a time besides m
    t.assert(table.concat(want, ",") ~= table.concat(base_text, ","), "the adapter changes the greedy text")
    local seq = {}
    for _, v in ipairs(ids) do seq[#seq + 1] = v end
    for _, v in ipairs(want) do seq[#seq + 1] = v end
    local full, n_full = lfl.tensor({seq}, "i64"), #seq
    local logits = lfl.no_grad(function() return m:forward(full) end)
    local top1 = logits:argmax(3)
    local base_meta = lfl.gguf.read(SMOL).metadata
    local texts = {"Hello, world!", "  leading spaces and\ttabs\n\nnewlines", "<|im_start|>user\nhi<|im_end|>",
                   "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 1234567 don't", ""}
    local export = require("lfl.cmd.export")
    local out = tmp .. "/out"
    for _, q in ipairs({"f16", "q8_0", "q4_k"}) do
      local a = lfl.args.resolve({model_name_or_path = SMOL, adapter_name_or_path = tmp .. "/adapter",
        export_dir = out, export_format = "gguf", export_quantization = q, do_train = false}, {}, "test")
      local r = export.export(a)
      collectgarbage() -- the base export loaded and merged
      t.assert_eq(r.dir, out .. "/ggml-model-" .. q .. ".gguf")
      t.assert_eq(#r.merged, 1)
      local info = lfl.gguf.read(r.dir)
      local meta = info.metadata
      -- architecture keys: what llama.cpp's llama loader reads
      t.assert_eq(meta["general.architecture"], "llama")
      t.assert_eq(meta["general.file_type"], gx.QUANTIZATIONS[q].file_type)
      for _, k in ipairs({"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size",
                          "llama.rope.dimension_count"}) do
        t.assert_eq(meta[k], base_meta[k], q .. ": " .. k)
      end
      -- the tokenizer and chat template come over whole
      for k, v in pairs(base_meta) do
        if k:match("^tokenizer%.") then
          if type(v) == "table" then
            t.assert_eq(#meta[k], #v, k)
            t.assert_eq(table.concat(meta[k], "\1"), table.concat(v, "\1"), k)
          else
            t.assert_eq(meta[k], v, k)
          end
        end
      end
      t.assert(#meta["tokenizer.chat_template"] > 100, "the chat template is there")
      local tok2 = lfl.tokenizer.load(r.dir)
      for _, s in ipairs(texts) do
        t.assert_eq(table.concat(tok2:encode(s), ","), table.concat(tok:encode(s), ","), q .. ": ids of " .. s)
      end
      -- tensor types: norms f32; matrices by the quantization (576-wide rows
      -- are no multiple of 256, so q4_k keeps only ffn_down in Q4_K)
      local types = {}
      for _, ti in ipairs(info.tensors) do types[ti.name] = ti.type end
      t.assert_eq(#info.tensors, 1 + 30 * 9 + 1, "token_embd, 9 per block, output_norm (tied: no output)")
      t.assert_eq(types["blk.0.attn_norm.weight"], "f32")
      local want_types = ({f16 = {"f16", "f16"}, q8_0 = {"q8_0", "q8_0"}, q4_k = {"q5_0", "q4_K"}})[q]
      t.assert_eq(types["blk.7.attn_q.weight"], want_types[1]); t.assert_eq(types["token_embd.weight"], want_types[1])
      t.assert_eq(types["blk.7.ffn_down.weight"], want_types[2])
      -- the model: f16 generates the merged model's text; q8_0 and q4_k predict
      -- the same next token along that text (teacher-forced) nearly everywhere
      local m2 = lfl.model.load(r.dir)
      local got = gen.generate(m2, ids, {do_sample = false, max_new_tokens = 24})
      local l2 = lfl.no_grad(function() return m2:forward(full) end)
      local cos = cosine(l2, logits)
      local top2 = l2:argmax(3)
      local agree = 0
      for i = 1, n_full do if top2:_at(i) == top1:_at(i) then agree = agree + 1 end end
      print(fmt("      %-4s %6.1f MB, logits cosine %.6f, max |diff| %.4f, top-1 agreement %d/%d, greedy: %s", q,
        lfl.fs.stat(r.dir).size / 1e6, cos, (l2 - logits):abs():max():_at(1), agree, n_full,
        tok:decode(got):gsub("\n", "\\n")))
      if q == "f16" then
        t.assert_eq(table.concat(got, ","), table.concat(want, ","), "f16 greedy text = the merged model's")
        t.assert(cos > 0.99999 and agree == n_full, fmt("f16: cosine %.6f, top-1 %d/%d", cos, agree, n_full))
      elseif q == "q8_0" then
        t.assert(cos > 0.998 and agree >= n_full - 2, fmt("q8_0: cosine %.5f, top-1 %d/%d", cos, agree, n_full))
      else
        -- a 135M model in 4 bits (Q5_0 where rows are 576 wide)
        t.assert(cos > 0.97 and agree >= 0.7 * n_full, fmt("q4_k: cosine %.5f, top-1 %d/%d", cos, agree, n_full))
      end
      m2 = nil
      collectgarbage()
    end
    -- from an HF folder (the merged model saved as one): the tokenizer keys are
    -- converted from tokenizer.json to what the GGUF base holds
    m:save(tmp .. "/hf")
    local hp = tmp .. "/hf.gguf"
    gx.write(lfl.model.load(tmp .. "/hf"), hp, {quantization = "f16"})
    local hm = lfl.gguf.read(hp).metadata
    for k, v in pairs(base_meta) do
      if k:match("^tokenizer%.") and k ~= "tokenizer.ggml.add_space_prefix" then -- (a SentencePiece key)
        if type(v) == "table" then
          t.assert_eq(#hm[k], #v, "hf: " .. k)
          t.assert_eq(table.concat(hm[k], "\1"), table.concat(v, "\1"), "hf: " .. k)
        else
          t.assert_eq(hm[k], v, "hf: " .. k)
        end
      end
    end
    collectgarbage()
    local hl = lfl.no_grad(function() return lfl.model.load(hp):forward(full) end)
    collectgarbage()
    t.assert(cosine(hl, logits) > 0.99999, "logits of the HF folder's f16 export")
    lfl.fs.remove(tmp .. "/hf")
    -- LlamaFactory's merge recipe form, with the GGUF keys added
    local yaml = tmp .. "/merge_gguf.yaml"
    lfl.fs.write(yaml, table.concat({
      "### model", "model_name_or_path: " .. SMOL, "adapter_name_or_path: " .. tmp .. "/adapter",
      "template: smollm2", "trust_remote_code: true", "", "### export", "export_dir: " .. tmp .. "/yaml_out",
      "export_size: 5", "export_device: cpu", "export_legacy_format: false", "export_format: gguf",
      "export_quantization: bf16", ""}, "\n"))
    t.assert_eq(export.run({yaml}), 0)
    local ym = lfl.gguf.read(tmp .. "/yaml_out/ggml-model-bf16.gguf")
    t.assert_eq(ym.metadata["general.file_type"], 32)
    local yt = {}
    for _, ti in ipairs(ym.tensors) do yt[ti.name] = ti.type end
    t.assert_eq(yt["blk.0.attn_q.weight"], "bf16"); t.assert_eq(yt["output_norm.weight"], "f32")
    local yl = lfl.no_grad(function() return lfl.model.load(tmp .. "/yaml_out/ggml-model-bf16.gguf"):forward(full) end)
    t.assert(cosine(yl, logits) > 0.9999, "bf16 export logits")
    collectgarbage()
    -- export_dir naming a .gguf file is that file; the arguments are checked
    local a = lfl.args.resolve({model_name_or_path = SMOL, export_dir = tmp .. "/one.gguf", export_format = "gguf",
      export_quantization = "q8_0", do_train = false}, {}, "test")
    t.assert_eq(export.export(a).dir, tmp .. "/one.gguf")
    local function resolve(extra)
      local r = {model_name_or_path = SMOL, do_train = false}
      for k, v in pairs(extra) do r[k] = v end
      return function() lfl.args.resolve(r, {}, "t") end
    end
    t.assert_error(resolve({export_format = "ggml"}), "export_format")
    t.assert_error(resolve({export_format = "gguf", export_quantization = "q3_k"}), "export_quantization")
    t.assert_error(resolve({export_quantization = "q8_0"}), "export_format: gguf")
    t.assert_error(resolve({export_format = "gguf", export_size = 2}), "a GGUF export is one file")
  end,
})

t.run()
lfl.fs.remove(tmp)
