-- The decoder family against transformers: tiny random checkpoints of each
-- architecture (tests/golden/models/*, written by tests/ref/make_model_goldens.py)
-- give the same logits, loss and parameter gradients here.
-- internlm2, baichuan and baichuan2 are remote-code families with no
-- transformers class: their goldens are a tiny llama's weights packed into the
-- family's fused layout (InternLM2's grouped wqkv, Baichuan's W_pack) by the
-- Python script, independently of lfl.convert; what is checked is that lfl
-- unpacks them into the llama the reference ran (internlm2 is compared with the
-- llama golden itself, internlm2_bias with llama_bias; baichuan2 adds NormHead,
-- reproduced in the reference).
local t = lfl.test
local root = lfl.home .. "/tests/golden/models/"
local CASES = {"llama", "llama_tied_llama3rope", "llama_linear_rope", "llama_yarn_rope", "llama_bias",
               "mistral_window", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "olmo2", "starcoder2",
               "internlm3", "internlm2", "internlm2_bias", "baichuan", "baichuan2", "gemma3", "granite", "cohere",
               "cohere_qknorm", "glm4"}
local GOLDEN_OF = {internlm2 = "llama", internlm2_bias = "llama_bias"} -- cases checked against another case's golden

local function rel_err(a, b)
  local d = (a:double() - b:double())
  local num = math.sqrt((d * d):sum():item())
  local den = math.sqrt((b:double() * b:double()):sum():item())
  return num / math.max(den, 1e-30)
end

local cases = {}
for _, name in ipairs(CASES) do
  cases[name] = function()
    local m = lfl.model.load(root .. name)
    local g = lfl.safetensors.load(root .. (GOLDEN_OF[name] or name) .. "/golden.safetensors")
    for _, p in ipairs(m:parameters()) do p:requires_grad() end
    local logits = m:forward(g.input_ids)
    local diff = t.max_abs_diff(logits, g.logits)
    t.assert(diff <= 1e-4, string.format("%s logits max abs diff %.3g", name, diff))
    local loss = m:loss(g.input_ids, g.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, name .. " loss")
    loss:backward()
    local names, params = m:named_parameters()
    local checked = 0
    for _, pn in ipairs(names) do
      local ref = g["grad." .. pn]
      if ref then
        local got = params[pn].grad
        t.assert(got, name .. ": no gradient for " .. pn)
        local e = rel_err(got, ref)
        t.assert(e <= 1e-3, string.format("%s: gradient of %s relative error %.3g", name, pn, e))
        checked = checked + 1
      end
    end
    t.assert(checked >= #names - 1, name .. ": only " .. checked .. " gradients compared")
  end
end
t.suite("models", cases)

local function write(path, text) local f = assert(io.open(path, "w")); f:write(text); f:close() end

t.suite("remote_layouts", {
  -- saving packs q/k/v back: the folder is the original checkpoint again
  save_repacks_original_layout = function()
    for _, name in ipairs({"internlm2", "internlm2_bias", "baichuan2"}) do
      local m = lfl.model.load(root .. name)
      local dir = os.tmpname() .. "_" .. name
      m:save(dir)
      local a = lfl.safetensors.load(root .. name .. "/model.safetensors")
      local b = lfl.safetensors.load(dir .. "/model.safetensors")
      local n = 0
      for k, v in pairs(a) do
        t.assert(b[k], name .. ": saved folder lacks " .. k)
        t.assert_tensor_close(b[k], v, 0, 0, name .. " " .. k)
        n = n + 1
      end
      for k in pairs(b) do t.assert(a[k], name .. ": saved folder has an extra tensor " .. k) end
      t.assert(n > 10, name .. ": too few tensors compared")
      local cfg = lfl.model.read_json(dir .. "/config.json")
      t.assert_eq(cfg.model_type, name:match("^internlm2") and "internlm2" or "baichuan")
      local m2 = lfl.model.load(dir)
      local ids = lfl.tensor({{3, 4, 5, 6}}, "i64")
      t.assert_tensor_close(m2:forward(ids), m:forward(ids), 0, 0)
      os.execute("rm -rf '" .. dir .. "'")
    end
  end,

  baichuan_13b_refused = function()
    local dir = os.tmpname() .. "_b13"
    os.execute("mkdir -p " .. dir)
    local cfg = lfl.model.read_json(root .. "baichuan2/config.json")
    cfg.num_hidden_layers, cfg.hidden_size, cfg.max_position_embeddings = 40, 5120, nil
    write(dir .. "/config.json", lfl.json.encode(cfg))
    t.assert_error(function() lfl.model.load(dir) end, "ALiBi")
    os.execute("rm -rf '" .. dir .. "'")
  end,

  bad_fused_shapes = function()
    local w = lfl.safetensors.load(root .. "internlm2/model.safetensors")
    local cfg = lfl.model.read_json(root .. "internlm2/config.json")
    w["model.layers.0.attention.wqkv.weight"] = w["model.layers.0.attention.wqkv.weight"]:narrow(1, 1, 8)
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "wqkv.weight' has 8 rows, expected 64")
    w = lfl.safetensors.load(root .. "internlm2/model.safetensors")
    w["model.layers.0.attention.something.weight"] = w["model.norm.weight"]
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "something.weight' has no counterpart")
    w = lfl.safetensors.load(root .. "baichuan/model.safetensors")
    cfg = lfl.model.read_json(root .. "baichuan/config.json")
    w["model.layers.1.self_attn.W_pack.weight"] = w["model.layers.1.self_attn.W_pack.weight"]:narrow(1, 1, 64)
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "W_pack.weight' has 64 rows, expected 96")
  end,

  -- generation's KV-cache path (one token at a time) against the full forward
  cached_decode_matches_forward = function()
    local ids = lfl.tensor({{5, 9, 3, 17, 22, 8, 41, 12}}, "i64")
    for _, name in ipairs({"olmo", "olmo2", "starcoder2", "internlm2", "baichuan2"}) do
      local m = lfl.model.load(root .. name)
      local full = m:forward(ids)
      local cache = lfl.decoder.new_cache()
      m:forward(ids:narrow(2, 1, 5), {cache = cache})
      for i = 6, 8 do
        local step = m:forward(ids:narrow(2, i, 1), {cache = cache})
        local d = t.max_abs_diff(step:narrow(2, 1, 1), full:narrow(2, i, 1))
        t.assert(d <= 1e-4, string.format("%s: cached step %d differs by %.3g", name, i, d))
      end
    end
  end,
})

-- GGUF files of the tiny checkpoints, written as llama.cpp's converter writes
-- them (tests/ref/make_model_goldens.py): the same HF parameters come back
-- (OLMo's q/k rows un-permuted) and the same logits (StarCoder2's GGUF has no
-- sliding window, so its reference runs without it).
local gguf_cases = {}
for _, name in ipairs({"olmo", "olmo2", "starcoder2"}) do
  gguf_cases[name] = function()
    local m = lfl.model.load(root .. name .. "/model.gguf")
    local hf = lfl.safetensors.load(root .. name .. "/model.safetensors")
    local n = 0
    for k, v in pairs(hf) do
      t.assert(m.params[k], name .. ".gguf: no parameter " .. k)
      t.assert_tensor_close(m.params[k], v, 0, 0, name .. ".gguf " .. k)
      n = n + 1
    end
    t.assert_eq(#m.names, n, name .. ".gguf: parameter count")
    local g = lfl.safetensors.load(root .. name .. (name == "starcoder2" and "/gguf_golden.safetensors"
      or "/golden.safetensors"))
    local diff = t.max_abs_diff(m:forward(g.input_ids), g.logits)
    t.assert(diff <= 1e-4, string.format("%s.gguf logits max abs diff %.3g", name, diff))
  end
end
t.suite("models_gguf", gguf_cases)

t.suite("model_io", {
  save_reload_same_logits = function()
    local m = lfl.model.load(root .. "qwen3")
    local dir = os.tmpname() .. "_model"
    m:save(dir, {shard_size = 20000}) -- forces several shards + an index
    local m2 = lfl.model.load(dir)
    local ids = lfl.tensor({{3, 4, 5, 6}}, "i64")
    t.assert_tensor_close(m2:forward(ids), m:forward(ids), 0, 0)
    os.execute("rm -rf '" .. dir .. "'")
  end,

  bad_folders = function()
    t.assert_error(function() lfl.model.load("/nonexistent") end, "neither an existing local path nor a Hub repo id")
    local dir = os.tmpname() .. "_bad"
    os.execute("mkdir -p " .. dir)
    local f = io.open(dir .. "/config.json", "w"); f:write('{"model_type": "rwkv"}'); f:close()
    t.assert_error(function() lfl.model.load(dir) end, "model_type 'rwkv' is not supported")
    os.execute("cp " .. root .. "llama/config.json " .. dir .. "/")
    t.assert_error(function() lfl.model.load(dir) end, "no model.safetensors")
    f = io.open(dir .. "/model.safetensors.index.json", "w")
    f:write('{"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}'); f:close()
    t.assert_error(function() lfl.model.load(dir) end, "is missing")
    os.execute("rm -rf '" .. dir .. "'")
  end,
})

t.run()
