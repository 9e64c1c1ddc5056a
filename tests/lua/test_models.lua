-- The decoder family against transformers: tiny random checkpoints of each
-- architecture (tests/golden/models/*, written by tests/ref/make_model_goldens.py)
-- give the same logits, loss and parameter gradients here.
-- internlm2, baichuan and baichuan2 are remote-code families with no
-- transformers class: their goldens are a tiny llama's weights packed into the
-- family's fused layout (InternLM2's grouped wqkv, Baichuan's W_pack) by the
-- Python script, independently of lfl.convert; what is checked is that lfl
-- unpacks them into the llama the reference ran (internlm2 is compared with the
-- llama golden itself; baichuan2 adds NormHead, reproduced in the reference).
local t = lfl.test
local root = lfl.home .. "/tests/golden/models/"
local CASES = {"llama", "llama_tied_llama3rope", "llama_linear_rope", "llama_yarn_rope", "llama_bias",
               "mistral_window", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "olmo2", "starcoder2",
               "internlm2", "baichuan", "baichuan2"}
local GOLDEN_OF = {internlm2 = "llama"} -- cases checked against another case's golden

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
