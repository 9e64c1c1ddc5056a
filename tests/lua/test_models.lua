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
               "cohere_qknorm", "glm4", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "deepseek_v3_qproj",
               "deepseek_v2", "deepseek_v2_greedy", "ministral3", "llama_llama31rope", "glm4_moe", "glm4_moe_air"}
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
        -- an expert no token chose gets no gradient here and zeros there
        local unused = not got and (ref:double() * ref:double()):sum():item() == 0
        t.assert(got or unused, name .. ": no gradient for " .. pn)
        if got then
          local e = rel_err(got, ref)
          t.assert(e <= 1e-3, string.format("%s: gradient of %s relative error %.3g", name, pn, e))
        end
        checked = checked + 1
      end
    end
    local buffers = 0 -- DeepSeek-V3's e_score_correction_bias: a buffer there, no gradient here either
    for _, pn in ipairs(names) do if pn:find("e_score_correction_bias", 1, true) then buffers = buffers + 1 end end
    t.assert(checked >= #names - 1 - buffers, name .. ": only " .. checked .. " gradients compared")
  end
end
t.suite("models", cases)

local function write(path, text) local f = assert(io.open(path, "w")); f:write(text); f:close() end

-- Families added after the first fifteen also carry lora.safetensors: PEFT's
-- LoRA (r 4, alpha 8, the family's lora_target) with seeded adapter values,
-- its loss and adapter gradients. lora_target "all" must give PEFT's module
-- names one for one (the registry's list matches the checkpoint's linears).
local LORA_CASES = {"gemma3", "granite", "cohere", "cohere_qknorm", "glm4", "mixtral", "qwen2_moe", "qwen3_moe",
                    "deepseek_v3", "deepseek_v3_qproj", "deepseek_v2", "deepseek_v2_greedy", "glm4_moe",
                    "glm4_moe_air", "gpt_oss"}
-- PEFT cannot target transformers 5's fused Mixtral experts: its golden adapts attention only
local LORA_TARGET = {mixtral = "q_proj,k_proj,v_proj,o_proj", qwen2_moe = "q_proj,k_proj,v_proj,o_proj",
                     qwen3_moe = "q_proj,k_proj,v_proj,o_proj",
                     deepseek_v3 = "q_a_proj,q_b_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj",
                     deepseek_v3_qproj = "q_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj",
                     deepseek_v2 = "q_a_proj,q_b_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj",
                     deepseek_v2_greedy = "q_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj",
                     glm4_moe = "q_proj,k_proj,v_proj,o_proj", glm4_moe_air = "q_proj,k_proj,v_proj,o_proj",
                     gpt_oss = "q_proj,k_proj,v_proj,o_proj"}

-- PEFT key "base_model.model.<mod>.lora_A.weight" -> the lfl tensor holding it
local function adapter_tensor(m, key)
  local mod, kind = key:match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
  return mod and m.adapters[mod] and m.adapters[mod][kind]
end

local function lora_model(name)
  local trainer = require("lfl.train.trainer")
  local g = lfl.safetensors.load(root .. name .. "/lora.safetensors")
  local m = lfl.model.load(root .. name)
  local names, _, groups = trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
    lora_target = LORA_TARGET[name] or "all", learning_rate = 1e-3})
  local want = {}
  for k in pairs(g) do if k:match("^init%.") then want[#want + 1] = k:sub(6) end end
  table.sort(want)
  local got = {}
  for i, n in ipairs(names) do got[i] = n end
  table.sort(got)
  t.assert_eq(#got, #want, name .. ": trainable adapter tensors")
  for i = 1, #want do t.assert_eq(got[i], want[i], name .. ": PEFT key") end
  lfl.no_grad(function()
    for _, k in ipairs(want) do adapter_tensor(m, k):copy_(g["init." .. k]) end
  end)
  return m, g, want, groups
end

local lora_cases = {}
for _, name in ipairs(LORA_CASES) do
  lora_cases[name] = function()
    local m, g, keys = lora_model(name)
    local ids = lfl.safetensors.load(root .. name .. "/golden.safetensors")
    local loss = m:loss(ids.input_ids, ids.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, name .. " LoRA loss")
    loss:backward()
    for _, k in ipairs(keys) do
      local got = adapter_tensor(m, k).grad
      t.assert(got, name .. ": no gradient for " .. k)
      local e = rel_err(got, g["grad." .. k])
      t.assert(e <= 1e-3, string.format("%s: LoRA gradient of %s relative error %.3g", name, k, e))
    end
  end
end
-- a few AdamW steps on the golden batch bring the loss down (LoRA through the
-- new families' forward and backward: interleaved rotary, parallel blocks)
lora_cases.training_smoke = function()
  for _, name in ipairs({"gemma3", "cohere_qknorm", "glm4", "mixtral", "qwen2_moe", "deepseek_v3", "glm4_moe"}) do
    local m, _, _, groups = lora_model(name)
    local ids = lfl.safetensors.load(root .. name .. "/golden.safetensors")
    local opt = lfl.optim.AdamW(groups, {lr = 1e-2})
    local first, last
    for step = 1, 6 do
      opt:zero_grad()
      local loss = m:loss(ids.input_ids, ids.labels)
      if step == 1 then first = loss:item() end
      last = loss:item()
      loss:backward()
      opt:step()
    end
    if os.getenv("LFL_TEST_VERBOSE") then print(string.format("      %s: LoRA loss %.4f -> %.4f", name, first, last)) end
    t.assert(last < first - 0.02, string.format("%s: loss %.4f -> %.4f after 5 steps", name, first, last))
  end
end
-- GRPO's (and DPO's, through the same head) per-token log-probs from the
-- hidden states apply the family's logit scale like the forward does
lora_cases.token_logps_logit_scale = function()
  local grpo = require("lfl.train.grpo")
  for _, name in ipairs({"granite", "cohere"}) do
    local m = lfl.model.load(root .. name)
    local ids = {5, 9, 3, 17, 22, 8}
    local got = grpo.token_logps(m, {{input_ids = ids, labels = {-100, -100, 3, 17, 22, 8}}})
    local lp = m:forward(lfl.tensor({ids}, "i64")):log_softmax(3)
    -- position k (1-based) predicts ids[k + 1]: the labelled ones are k = 2..5
    t.assert_eq(got:numel(), 4, name .. ": labelled tokens")
    for i = 1, 4 do
      local k = i + 1
      t.assert_close(got[i], lp[{1, k, ids[k + 1] + 1}], 1e-5, name .. " token log-prob " .. i)
    end
  end
end
t.suite("models_lora", lora_cases)

local function weights_of(name) return lfl.safetensors.load(root .. name .. "/model.safetensors") end

-- Mixtral's router: the golden loss is the LM loss plus 0.02 x the
-- load-balancing loss (output_router_logits in its config.json)
t.suite("moe", {
  aux_loss_and_checkpointing = function()
    local g = lfl.safetensors.load(root .. "mixtral/golden.safetensors")
    local m = lfl.model.load(root .. "mixtral")
    t.assert(m.arch.router_aux, "output_router_logits turns the auxiliary loss on")
    local lm = lfl.no_grad(function()
      m.arch.router_aux = false
      local v = m:loss(g.input_ids, g.labels):item()
      m.arch.router_aux = true
      return v
    end)
    t.assert_close(lm + 0.02 * g.aux_loss[1], g.loss[1], 1e-5, "LM loss + coef x aux")
    local rs = {}
    lfl.no_grad(function() lfl.decoder.hidden(m, g.input_ids, {router_stats = rs}) end)
    t.assert_close(lfl.decoder.router_aux_loss(m, rs):item(), g.aux_loss[1], 1e-5, "load-balancing loss")
    local n = 0
    for _, c in ipairs(rs.counts) do n = n + c end
    t.assert_eq(n, 2 * 2 * 24, "top-2 choices of 24 tokens in 2 layers")
    -- the same gradients through gradient checkpointing (the router statistics
    -- leave the recomputed region as its second output)
    for _, p in ipairs(m:parameters()) do p:requires_grad() end
    local loss = m:loss(g.input_ids, g.labels, {gradient_checkpointing = true})
    t.assert_close(loss:item(), g.loss[1], 1e-5, "checkpointed loss")
    loss:backward()
    local gate = "model.layers.0.block_sparse_moe.gate.weight"
    t.assert(rel_err(m.params[gate].grad, g["grad." .. gate]) <= 1e-3, "router gradient under checkpointing")
    local w2 = "model.layers.1.block_sparse_moe.experts.2.w2.weight"
    t.assert(rel_err(m.params[w2].grad, g["grad." .. w2]) <= 1e-3, "expert gradient under checkpointing")
  end,

  -- lora_target all adapts the router and every expert's w1/w2/w3 too; the
  -- adapted forward equals the forward with the adapters merged into the weights
  lora_on_experts = function()
    local trainer = require("lfl.train.trainer")
    local g = lfl.safetensors.load(root .. "mixtral/golden.safetensors")
    local m = lfl.model.load(root .. "mixtral")
    local names, params = trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8,
      lora_dropout = 0, lora_target = "all", learning_rate = 1e-3})
    t.assert_eq(#names, 2 * 2 * (4 + 1 + 3 * 4), "A and B of q/k/v/o, the router and 4 experts' w1/w2/w3, 2 layers")
    lfl.manual_seed(3)
    lfl.no_grad(function()
      for i, p in ipairs(params) do if names[i]:find("lora_B") then p:copy_(lfl.randn(p:size()) * 0.2) end end
    end)
    local loss = m:loss(g.input_ids, g.labels)
    loss:backward()
    local w1 = "base_model.model.model.layers.1.block_sparse_moe.experts.3.w1.lora_B.weight"
    for i, n in ipairs(names) do
      if n == w1 then t.assert(params[i].grad and (params[i].grad * params[i].grad):sum():item() > 0, n) end
    end
    local adapted = lfl.no_grad(function() return m:forward(g.input_ids) end)
    m:merge_adapter()
    local merged = lfl.no_grad(function() return m:forward(g.input_ids, {adapter = false}) end)
    t.assert(t.max_abs_diff(adapted, merged) <= 1e-4, "merged experts give the adapted logits")
    t.assert(t.max_abs_diff(adapted, g.logits) > 1e-2, "the adapters change the logits")
  end,

  -- Qwen2-MoE: LM loss + 0.02 x the load-balancing loss over its two sparse
  -- layers (layer 1 is dense through mlp_only_layers), the shared expert and
  -- its gate get gradients; Qwen3-MoE: layer 0 dense (decoder_sparse_step 2),
  -- top-2 renormalised
  qwen_moe_layers_and_aux_loss = function()
    for _, c in ipairs({{"qwen2_moe", {true, false, true}}, {"qwen3_moe", {false, true}}}) do
      local name, sparse = c[1], c[2]
      local g = lfl.safetensors.load(root .. name .. "/golden.safetensors")
      local m = lfl.model.load(root .. name)
      for l, sp in ipairs(sparse) do
        t.assert_eq(lfl.decoder.sparse_layer(m.arch, l) == true, sp, name .. " layer " .. l .. " sparse")
        t.assert_eq(m.params["model.layers." .. (l - 1) .. ".mlp.gate_proj.weight"] ~= nil, not sp,
          name .. " layer " .. l .. " dense MLP")
      end
      local rs = {}
      lfl.no_grad(function() lfl.decoder.hidden(m, g.input_ids, {router_stats = rs}) end)
      t.assert_close(lfl.decoder.router_aux_loss(m, rs):item(), g.aux_loss[1], 1e-5, name .. " load-balancing loss")
      local n, ns = 0, 0
      for _, k in ipairs(rs.counts) do n = n + k end
      for _, sp in ipairs(sparse) do if sp then ns = ns + 1 end end
      t.assert_eq(n, 2 * 24 * ns, name .. ": top-2 choices of 24 tokens in each sparse layer")
      for _, p in ipairs(m:parameters()) do p:requires_grad() end
      local loss = m:loss(g.input_ids, g.labels, {gradient_checkpointing = true})
      t.assert_close(loss:item(), g.loss[1], 1e-5, name .. " checkpointed loss")
      loss:backward()
      local l = sparse[1] and 0 or 1
      for _, pn in ipairs({"mlp.gate.weight", "mlp.experts.2.down_proj.weight",
                           name == "qwen2_moe" and "mlp.shared_expert_gate.weight" or nil}) do
        local k = "model.layers." .. l .. "." .. pn
        t.assert(rel_err(m.params[k].grad, g["grad." .. k]) <= 1e-3, name .. ": " .. k .. " under checkpointing")
      end
    end
    local cfg = lfl.model.read_json(root .. "qwen2_moe/config.json")
    cfg.mlp_only_layers = {3}
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "mlp_only_layers[1] is 3, expected a layer number")
    cfg = lfl.model.read_json(root .. "qwen3_moe/config.json")
    cfg.use_sliding_window = true
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "use_sliding_window true is not supported")
    cfg = lfl.model.read_json(root .. "qwen3_moe/config.json")
    cfg.moe_intermediate_size = 20 -- the checkpoint's experts are 24 wide
    t.assert_error(function() lfl.model.from_params(cfg, weights_of("qwen3_moe")) end,
      "mlp.experts.0.gate_proj.weight' has shape [24,32], expected [20,32]")
  end,

  -- DeepSeek-V3 (and V2's refusals): the KV cache (expanded latent keys, padded values) gives the
  -- full forward's logits step by step; layer 0 is dense; no auxiliary loss
  -- (moe_aux_loss_coef refused); the multi-token prediction layer is dropped;
  -- config errors name the key
  deepseek_v3_cache_layers_refusals = function()
    local g = lfl.safetensors.load(root .. "deepseek_v3/golden.safetensors")
    local m = lfl.model.load(root .. "deepseek_v3")
    t.assert(not lfl.decoder.sparse_layer(m.arch, 1) and lfl.decoder.sparse_layer(m.arch, 2), "first_k_dense_replace 1")
    local ids = g.input_ids:narrow(1, 1, 1):contiguous()
    local full = lfl.no_grad(function() return m:forward(ids) end)
    local c = lfl.decoder.new_cache()
    lfl.no_grad(function()
      local first = m:forward(ids:narrow(2, 1, 7):contiguous(), {cache = c})
      t.assert(t.max_abs_diff(first, full:narrow(2, 1, 7)) <= 1e-5, "prefill logits")
      for j = 8, 12 do
        local step = m:forward(ids:narrow(2, j, 1):contiguous(), {cache = c})
        t.assert(t.max_abs_diff(step, full:narrow(2, j, 1)) <= 1e-5, "cached step " .. j)
      end
    end)
    local trainer = require("lfl.train.trainer")
    t.assert_error(function() trainer.setup_moe(m, {moe_aux_loss_coef = 0.01}) end,
      "moe_aux_loss_coef: deepseek_v3 has no load-balancing loss")
    local cfg = lfl.model.read_json(root .. "deepseek_v3/config.json")
    local w = weights_of("deepseek_v3")
    w["model.layers.3.self_attn.o_proj.weight"] = w["model.layers.0.self_attn.o_proj.weight"] -- an MTP layer's tensor
    local m2 = lfl.model.from_params(cfg, w)
    t.assert_eq(m2.params["model.layers.3.self_attn.o_proj.weight"], nil, "the MTP layer is not loaded")
    cfg.num_nextn_predict_layers = 0
    w["model.layers.3.self_attn.o_proj.weight"] = w["model.layers.0.self_attn.o_proj.weight"]
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "belongs to layer 3, but num_hidden_layers is 3")
    for _, c in ipairs({{"n_group", 3, "must be a multiple of n_group 3"}, {"topk_group", 5, "topk_group 5 is more"},
                        {"num_experts_per_tok", 5, "num_experts_per_tok 5 is more than the 4 experts"},
                        {"topk_method", "greedy", "topk_method greedy is not supported"},
                        {"num_key_value_heads", 2, "num_key_value_heads 2 differs"}}) do
      cfg = lfl.model.read_json(root .. "deepseek_v3/config.json")
      cfg[c[1]] = c[2]
      t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, c[3])
    end
    cfg = lfl.model.read_json(root .. "deepseek_v2/config.json")
    cfg.topk_method = "noaux_tc"
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "topk_method noaux_tc is not supported for deepseek_v2")
    t.assert_error(function() trainer.setup_moe(lfl.model.load(root .. "deepseek_v2"), {moe_aux_loss_coef = 0.01}) end,
      "moe_aux_loss_coef: deepseek_v2 has no load-balancing loss")
  end,

  -- GLM-4.5: the KV cache gives the full forward's logits; rotary on the
  -- first partial_rotary_factor of the dims in halves (0.5 when config.json
  -- has none, Glm4MoeConfig's default; the pairs matter: the interleaved ones
  -- give other logits); layer 0 dense; no auxiliary loss; the MTP layer dropped
  glm4_moe_cache_rotary_layers = function()
    local g = lfl.safetensors.load(root .. "glm4_moe/golden.safetensors")
    local m = lfl.model.load(root .. "glm4_moe")
    t.assert(not lfl.decoder.sparse_layer(m.arch, 1) and lfl.decoder.sparse_layer(m.arch, 3), "first_k_dense_replace 1")
    t.assert_eq(m.arch.rotary_dim, 8, "half of head_dim 16 rotated")
    local ids = g.input_ids:narrow(1, 2, 1):contiguous()
    local full = lfl.no_grad(function() return m:forward(ids) end)
    local c = lfl.decoder.new_cache()
    lfl.no_grad(function()
      m:forward(ids:narrow(2, 1, 6):contiguous(), {cache = c})
      for j = 7, 12 do
        local step = m:forward(ids:narrow(2, j, 1):contiguous(), {cache = c})
        t.assert(t.max_abs_diff(step, full:narrow(2, j, 1)) <= 1e-5, "cached step " .. j)
      end
    end)
    local cfg = lfl.model.read_json(root .. "glm4_moe_air/config.json")
    t.assert_eq(lfl.decoder.resolve(cfg, "c.json").rotary_dim, 4, "a quarter of 16")
    cfg.rope_parameters.partial_rotary_factor = nil
    t.assert_eq(lfl.decoder.resolve(cfg, "c.json").rotary_dim, 8, "Glm4MoeConfig's 0.5")
    cfg = lfl.model.read_json(root .. "glm4_moe/config.json")
    local w = weights_of("glm4_moe")
    local m2 = lfl.model.from_params(cfg, w)
    m2.arch.rope_interleave = true
    lfl.decoder.resolve_rope(m2.arch, "c.json")
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m2:forward(g.input_ids) end), g.logits) > 1e-3,
      "interleaved pairs give other logits")
    t.assert_error(function() require("lfl.train.trainer").setup_moe(m, {moe_aux_loss_coef = 0.01}) end,
      "moe_aux_loss_coef: glm4_moe has no load-balancing loss")
    w["model.layers.3.self_attn.o_proj.weight"] = w["model.layers.0.self_attn.o_proj.weight"] -- an MTP layer's tensor
    t.assert_eq(lfl.model.from_params(cfg, w).params["model.layers.3.self_attn.o_proj.weight"], nil, "MTP layer dropped")
    for _, c2 in ipairs({{"n_group", 3, "must be a multiple of n_group 3"}, {"topk_group", 5, "topk_group 5 is more"},
                         {"use_qk_norm", "yes", "use_qk_norm is yes, expected true or false"},
                         {"n_shared_experts", -1, "n_shared_experts is -1"}}) do
      cfg = lfl.model.read_json(root .. "glm4_moe/config.json")
      cfg[c2[1]] = c2[2]
      t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, c2[3])
    end
  end,

  config_refusals = function()
    local cfg = lfl.model.read_json(root .. "mixtral/config.json")
    cfg.router_jitter_noise = 0.1
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "router_jitter_noise 0.1 is not supported")
    cfg = lfl.model.read_json(root .. "mixtral/config.json")
    cfg.num_experts_per_tok = 5
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "num_experts_per_tok 5 is more than")
    cfg = lfl.model.read_json(root .. "mixtral/config.json")
    cfg.num_local_experts = 0
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "num_local_experts is 0")
    cfg = lfl.model.read_json(root .. "mixtral/config.json")
    cfg.num_local_experts = 3 -- the checkpoint has 4: experts.3 is left over, the router has 4 rows
    t.assert_error(function() lfl.model.from_params(cfg, lfl.safetensors.load(root .. "mixtral/model.safetensors")) end,
      "block_sparse_moe.gate.weight' has shape [4,32], expected [3,32]")
  end,
})

local function config_of(name) return lfl.model.read_json(root .. name .. "/config.json") end

-- The language model of vision-language checkpoints (tests/golden/models/
-- gemma3_vlm, mistral3_vlm: tiny Gemma3/Mistral3ForConditionalGeneration saved by
-- transformers 5): text-only logits, loss and the language model's gradients;
-- a full save writes the checkpoint back with its vision tensors untouched;
-- a LoRA adapter matches PEFT's on the wrapper (keys, loss, gradients) and
-- loads back.
local W = require("lfl.model.wrapper")
local function hub_name(pn) return pn == "lm_head.weight" and "language_model.lm_head.weight" or "language_model." .. pn end
t.suite("vision_language", {
  -- google/gemma-3-4b-it's config.json lists only what differs from
  -- Gemma3TextConfig's defaults; mistral3 without text_config is an error
  hub_gemma3_config = function()
    local cfg = {model_type = "gemma3", text_config = {hidden_size = 2560, intermediate_size = 10240,
      model_type = "gemma3_text", num_hidden_layers = 34, rope_scaling = {factor = 8.0, rope_type = "linear"},
      sliding_window = 1024}, vision_config = {model_type = "siglip_vision_model"}}
    local text, w = W.unwrap(cfg, "c.json")
    t.assert(w and w.outer == cfg, "wrapper record")
    local a = lfl.decoder.resolve(text, "c.json")
    t.assert(a.heads == 8 and a.kv_heads == 4 and a.head_dim == 256 and a.vocab == 262208 and a.layers == 34,
      "Gemma3TextConfig defaults fill the Hub's config")
    t.assert(a.window[1] == 1024 and a.window[6] == nil, "sliding layers (pattern 6)")
    t.assert_error(function() W.unwrap({model_type = "mistral3"}, "c.json") end, "c.json: model_type mistral3 without a text_config")
  end,

  text_part = function()
    for _, name in ipairs({"gemma3_vlm", "mistral3_vlm"}) do
      local m = lfl.model.load(root .. name)
      local g = lfl.safetensors.load(root .. name .. "/golden.safetensors")
      t.assert(m.wrap and m.wrap.aside_count > 10, name .. ": vision tensors kept aside")
      for _, p in ipairs(m:parameters()) do p:requires_grad() end
      t.assert(t.max_abs_diff(m:forward(g.input_ids), g.logits) <= 1e-5, name .. " logits")
      local loss = m:loss(g.input_ids, g.labels)
      t.assert_close(loss:item(), g.loss[1], 1e-5, name .. " loss")
      loss:backward()
      local names, params = m:named_parameters()
      for _, pn in ipairs(names) do
        local ref = g["grad." .. hub_name(pn)]
        t.assert(ref, name .. ": golden gradient of " .. pn)
        t.assert(rel_err(params[pn].grad, ref) <= 1e-3, name .. ": gradient of " .. pn)
      end
      -- full save: the same tensors under the same names, the wrapper's config
      local dir = os.tmpname() .. "_vlm"
      m:save(dir, {tokenizer = false})
      local a, b = lfl.safetensors.load(root .. name .. "/model.safetensors"), lfl.safetensors.load(dir .. "/model.safetensors")
      local na, nb = 0, 0
      for k, v in pairs(a) do
        na = na + 1
        t.assert(b[k], name .. ": saved " .. k)
        t.assert(t.max_abs_diff(v, b[k]) == 0, name .. ": " .. k .. " unchanged")
      end
      for _ in pairs(b) do nb = nb + 1 end
      t.assert_eq(nb, na, name .. ": tensor count")
      local cfg = lfl.model.read_json(dir .. "/config.json")
      t.assert(W.WRAPPERS[cfg.model_type] and cfg.vision_config and cfg.text_config.hidden_size == 32, name .. " config")
      lfl.fs.remove(dir)
    end
  end,

  lora_as_peft = function()
    local trainer = require("lfl.train.trainer")
    local peft = require("lfl.train.peft")
    for _, name in ipairs({"gemma3_vlm", "mistral3_vlm"}) do
      local g = lfl.safetensors.load(root .. name .. "/lora.safetensors")
      local m = lfl.model.load(root .. name)
      trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
        lora_target = "q_proj,v_proj", learning_rate = 1e-3})
      local n = 0
      lfl.no_grad(function()
        for k, v in pairs(g) do
          local key = k:match("^init%.(.+)$")
          if key then
            local mod, kind = W.adapter_key(key, W.module_in):match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
            local A, B = m.lora:get(mod)
            t.assert(A, name .. ": adapter on " .. tostring(mod))
            ;(kind == "A" and A or B):copy_(v)
            n = n + 1
          end
        end
      end)
      t.assert_eq(n, 8, name .. ": PEFT adapter tensors")
      local gold = lfl.safetensors.load(root .. name .. "/golden.safetensors")
      local loss = m:loss(gold.input_ids, gold.labels)
      t.assert_close(loss:item(), g.loss[1], 1e-5, name .. " LoRA loss")
      loss:backward()
      for k, v in pairs(g) do
        local key = k:match("^grad%.(.+)$")
        if key then
          local mod, kind = W.adapter_key(key, W.module_in):match("^base_model%.model%.(.+)%.lora_([AB])%.weight$")
          local A, B = m.lora:get(mod)
          local got = (kind == "A" and A or B).grad
          t.assert(got and rel_err(got, v) <= 1e-3, name .. ": LoRA gradient " .. key)
        end
      end
      local dir = os.tmpname() .. "_vlm_lora"
      peft.save_adapter(m, dir)
      local saved = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
      for k, v in pairs(g) do
        local key = k:match("^init%.(.+)$")
        if key then
          t.assert(saved[key], name .. ": PEFT key " .. key)
          t.assert(t.max_abs_diff(saved[key], v) == 0, name .. ": " .. key)
        end
      end
      -- a checkpoint's adapter (PEFT's names in the wrapper) restores the trained factors
      local names, params = peft.lora_parameters(m)
      local before = params[1]:clone()
      lfl.no_grad(function() params[1]:fill_(0) end)
      trainer.load_trainable(m, {finetuning_type = "lora"}, dir, names, params)
      t.assert(t.max_abs_diff(params[1], before) == 0, name .. ": checkpoint resume reads the wrapper's names")
      local m2 = lfl.model.load(root .. name)
      peft.load_adapter(m2, dir)
      local ids = lfl.safetensors.load(root .. name .. "/golden.safetensors").input_ids
      t.assert(t.max_abs_diff(lfl.no_grad(function() return m2:forward(ids) end),
        lfl.no_grad(function() return m:forward(ids) end)) <= 1e-6, name .. ": the loaded adapter")
      lfl.fs.remove(dir)
    end
  end,
})

-- Llama 4 text against transformers (tests/golden/models/llama4): logits,
-- loss and every gradient, the fused experts' through the family's
-- from_decoder; a save writes the checkpoint's own layout; the KV cache gives
-- the full forward's logits (temperature tuning on the layers without rotary);
-- the temperature matters; longer than attention_chunk_size is refused
t.suite("llama4", {
  against_transformers = function()
    local g = lfl.safetensors.load(root .. "llama4/golden.safetensors")
    local m = lfl.model.load(root .. "llama4")
    t.assert(m.arch.nope[2] and m.arch.nope[4] and not m.arch.nope[1], "layers 1 and 3 (0-based) without rotary")
    t.assert(lfl.decoder.sparse_layer(m.arch, 2) and not lfl.decoder.sparse_layer(m.arch, 1), "moe_layers 1, 3")
    for _, p in ipairs(m:parameters()) do p:requires_grad() end
    t.assert(t.max_abs_diff(m:forward(g.input_ids), g.logits) <= 1e-5, "logits")
    local loss = m:loss(g.input_ids, g.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, "loss")
    loss:backward()
    local names, params = m:named_parameters()
    local grads = {}
    for _, n in ipairs(names) do grads[n] = params[n].grad or params[n] * 0 end
    local fl, fg = require("lfl.model.convert").from_decoder(m.config, names, grads)
    local n = 0
    for _, k in ipairs(fl) do
      local ref = g["grad." .. k]
      t.assert(ref, "golden gradient of " .. k)
      t.assert(rel_err(fg[k], ref) <= 1e-3, "gradient of " .. k)
      n = n + 1
    end
    t.assert_eq(n, 45, "gradients compared")
    local dir = os.tmpname() .. "_llama4"
    lfl.model.load(root .. "llama4"):save(dir, {tokenizer = false})
    local a, b = lfl.safetensors.load(root .. "llama4/model.safetensors"), lfl.safetensors.load(dir .. "/model.safetensors")
    local na, nb = 0, 0
    for k, v in pairs(a) do
      na = na + 1
      t.assert(b[k] and t.max_abs_diff(v, b[k]) == 0, "saved " .. k)
    end
    for _ in pairs(b) do nb = nb + 1 end
    t.assert_eq(nb, na, "the checkpoint's tensors")
    lfl.fs.remove(dir)
  end,

  -- lora_target all = the linears PEFT adapts (not the fused experts nor the
  -- router), under the checkpoint's names (feed_forward.*): PEFT's golden
  lora_as_peft = function()
    local trainer = require("lfl.train.trainer")
    local peft = require("lfl.train.peft")
    local g = lfl.safetensors.load(root .. "llama4/lora.safetensors")
    local gold = lfl.safetensors.load(root .. "llama4/golden.safetensors")
    local m = lfl.model.load(root .. "llama4")
    trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
      lora_target = "all", learning_rate = 1e-3})
    local names, params = peft.lora_parameters(m)
    local idx = {}
    for i, n in ipairs(names) do idx[peft.peft_key(m, n, "out")] = i end
    local n = 0
    lfl.no_grad(function()
      for k, v in pairs(g) do
        local key = k:match("^init%.(.+)$")
        if key then
          t.assert(idx[key], "lfl has PEFT's " .. key)
          params[idx[key]]:copy_(v)
          n = n + 1
        end
      end
    end)
    t.assert_eq(n, #names, "the same adapter tensors")
    local loss = m:loss(gold.input_ids, gold.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, "LoRA loss")
    loss:backward()
    for k, v in pairs(g) do
      local key = k:match("^grad%.(.+)$")
      if key then t.assert(rel_err(params[idx[key]].grad, v) <= 1e-3, "LoRA gradient " .. key) end
    end
    local dir = os.tmpname() .. "_l4lora"
    peft.save_adapter(m, dir)
    local saved = lfl.safetensors.load(dir .. "/adapter_model.safetensors")
    for k in pairs(g) do
      local key = k:match("^init%.(.+)$")
      if key then t.assert(saved[key], "saved under PEFT's key " .. key) end
    end
    local m2 = lfl.model.load(root .. "llama4")
    peft.load_adapter(m2, dir)
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m2:forward(gold.input_ids) end),
      lfl.no_grad(function() return m:forward(gold.input_ids) end)) <= 1e-6, "loads back")
    lfl.fs.remove(dir)
  end,

  cache_temperature_chunk = function()
    local g = lfl.safetensors.load(root .. "llama4/golden.safetensors")
    local m = lfl.model.load(root .. "llama4")
    local ids = g.input_ids:narrow(1, 1, 1):contiguous()
    local full = lfl.no_grad(function() return m:forward(ids) end)
    local c = lfl.decoder.new_cache()
    lfl.no_grad(function()
      m:forward(ids:narrow(2, 1, 5):contiguous(), {cache = c})
      for j = 6, 12 do
        t.assert(t.max_abs_diff(m:forward(ids:narrow(2, j, 1):contiguous(), {cache = c}), full:narrow(2, j, 1)) <= 1e-5,
          "cached step " .. j)
      end
    end)
    m.arch.temp_tune = nil
    local plain = lfl.no_grad(function() return m:forward(g.input_ids) end)
    t.assert(t.max_abs_diff(plain, g.logits) > 1e-3, "temperature tuning changes the golden logits (floor_scale 4)")
    t.assert(t.max_abs_diff(plain:narrow(2, 1, 3), g.logits:narrow(2, 1, 3)) <= 1e-5, "positions 0-2 keep scale 1")
    local long = lfl.zeros(1, 65):to("i64")
    t.assert_error(function() lfl.no_grad(function() return m:forward(long) end) end,
      "65 positions exceed attention_chunk_size 64")
  end,
})

-- GPT-OSS against transformers (tests/golden/models/gpt_oss): logits, loss
-- (with the load-balancing loss), every gradient (the fused experts' through
-- from_decoder, the sinks'); a save writes the checkpoint's own layout; the
-- KV cache gives the full forward's logits (sliding and full layers, sinks on
-- the one-query path); the sinks and the SwiGLU clamps matter; LoRA as PEFT,
-- also through checkpointing's replay; MXFP4 checkpoints are refused
local function gpt_oss_grads(m, g, what)
  local names, params = m:named_parameters()
  local grads = {}
  for _, n in ipairs(names) do grads[n] = params[n].grad or params[n] * 0 end
  local fl, fg = require("lfl.model.convert").from_decoder(m.config, names, grads)
  local n = 0
  for _, k in ipairs(fl) do
    local ref = g["grad." .. k]
    t.assert(ref, "golden gradient of " .. k)
    local e = rel_err(fg[k], ref)
    t.assert(e <= 1e-3, string.format("%s: gradient of %s relative error %.3g", what, k, e))
    n = n + 1
  end
  t.assert_eq(n, 54, what .. ": gradients compared")
end

t.suite("gpt_oss", {
  against_transformers = function()
    local g = lfl.safetensors.load(root .. "gpt_oss/golden.safetensors")
    local m = lfl.model.load(root .. "gpt_oss")
    t.assert(m.arch.window[1] == 4 and m.arch.window[2] == nil and m.arch.window[3] == 4, "layer_types")
    t.assert(m.arch.router_aux, "output_router_logits turns the auxiliary loss on")
    for _, p in ipairs(m:parameters()) do p:requires_grad() end
    local d = t.max_abs_diff(m:forward(g.input_ids), g.logits)
    t.assert(d <= 1e-5, string.format("logits max abs diff %.3g", d))
    local loss = m:loss(g.input_ids, g.labels)
    t.assert_close(loss:item(), g.loss[1], 1e-5, "loss")
    loss:backward()
    gpt_oss_grads(m, g, "full")
    local rs = {}
    lfl.no_grad(function() lfl.decoder.hidden(m, g.input_ids, {router_stats = rs}) end)
    t.assert_close(lfl.decoder.router_aux_loss(m, rs):item(), g.aux_loss[1], 1e-5, "load-balancing loss")
    -- training keeps config.json's switch and coefficient, as LlamaFactory (moe_aux_loss_coef not applied)
    local trainer = require("lfl.train.trainer")
    trainer.setup_moe(m, {moe_aux_loss_coef = 0.5})
    t.assert(m.arch.router_aux and m.arch.router_aux_coef == 0.02, "config.json's aux loss")
    local cfg = config_of("gpt_oss")
    cfg.output_router_logits = false
    local m0 = lfl.model.from_params(cfg, weights_of("gpt_oss"))
    trainer.setup_moe(m0, {})
    t.assert(not m0.arch.router_aux, "no aux loss unless config.json asks")
    t.assert_close(lfl.no_grad(function() return m0:loss(g.input_ids, g.labels):item() end), g.loss[1] - 0.02 * g.aux_loss[1],
      1e-5, "the LM loss alone")
    -- the same through gradient checkpointing
    m = lfl.model.load(root .. "gpt_oss")
    for _, p in ipairs(m:parameters()) do p:requires_grad() end
    loss = m:loss(g.input_ids, g.labels, {gradient_checkpointing = true})
    t.assert_close(loss:item(), g.loss[1], 1e-5, "checkpointed loss")
    loss:backward()
    gpt_oss_grads(m, g, "checkpointed")
    -- save: the checkpoint's fused layout, bit for bit
    local dir = os.tmpname() .. "_gpt_oss"
    lfl.model.load(root .. "gpt_oss"):save(dir, {tokenizer = false})
    local a, b = weights_of("gpt_oss"), lfl.safetensors.load(dir .. "/model.safetensors")
    local na, nb = 0, 0
    for k, v in pairs(a) do
      na = na + 1
      t.assert(b[k] and t.max_abs_diff(v, b[k]) == 0, "saved " .. k)
    end
    for _ in pairs(b) do nb = nb + 1 end
    t.assert_eq(nb, na, "the checkpoint's tensors")
    lfl.fs.remove(dir)
  end,

  cache_sinks_clamps = function()
    local g = lfl.safetensors.load(root .. "gpt_oss/golden.safetensors")
    local m = lfl.model.load(root .. "gpt_oss")
    local ids = g.input_ids:narrow(1, 2, 1):contiguous()
    local full = lfl.no_grad(function() return m:forward(ids) end)
    local c = lfl.decoder.new_cache()
    lfl.no_grad(function()
      m:forward(ids:narrow(2, 1, 3):contiguous(), {cache = c})
      for j = 4, 12 do -- past the window of 4
        local step = m:forward(ids:narrow(2, j, 1):contiguous(), {cache = c})
        t.assert(t.max_abs_diff(step, full:narrow(2, j, 1)) <= 1e-5, "cached step " .. j)
      end
    end)
    m.arch.sinks = nil
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits) > 1e-3, "sinks matter")
    m.arch.sinks, m.arch.swiglu_clamp = true, {alpha = 1.702, limit = 1e9}
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits) > 1e-3, "clamps matter")
  end,

  lora_as_peft = function()
    local trainer = require("lfl.train.trainer")
    local peft = require("lfl.train.peft")
    local g = lfl.safetensors.load(root .. "gpt_oss/lora.safetensors")
    local gold = lfl.safetensors.load(root .. "gpt_oss/golden.safetensors")
    for _, ckpt in ipairs({false, true}) do
      local m = lfl.model.load(root .. "gpt_oss")
      -- all = q/k/v/o_proj: not the fused experts nor the router
      trainer.setup_method(m, {finetuning_type = "lora", lora_rank = 4, lora_alpha = 8, lora_dropout = 0,
        lora_target = "all", learning_rate = 1e-3})
      local names, params = peft.lora_parameters(m)
      local idx = {}
      for i, n in ipairs(names) do idx[peft.peft_key(m, n, "out")] = i end
      local n = 0
      lfl.no_grad(function()
        for k, v in pairs(g) do
          local key = k:match("^init%.(.+)$")
          if key then
            t.assert(idx[key], "lfl has PEFT's " .. key)
            params[idx[key]]:copy_(v)
            n = n + 1
          end
        end
      end)
      t.assert_eq(n, #names, "the same adapter tensors")
      local loss = m:loss(gold.input_ids, gold.labels, {gradient_checkpointing = ckpt})
      t.assert_close(loss:item(), g.loss[1], 1e-5, "LoRA loss")
      loss:backward()
      for k, v in pairs(g) do
        local key = k:match("^grad%.(.+)$")
        if key then
          t.assert(rel_err(params[idx[key]].grad, v) <= 1e-3, "LoRA gradient " .. key .. (ckpt and " (checkpointed)" or ""))
        end
      end
    end
  end,

  -- the Hub's transformers 4.5x spelling (rope_theta and rope_scaling) reads the same
  hub_spelling = function()
    local cfg = config_of("gpt_oss")
    local rp = cfg.rope_parameters
    cfg.rope_parameters, cfg.rope_theta, rp.rope_theta, cfg.rope_scaling = nil, rp.rope_theta, nil, rp
    local g = lfl.safetensors.load(root .. "gpt_oss/golden.safetensors")
    local m = lfl.model.from_params(cfg, weights_of("gpt_oss"))
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits) <= 1e-5, "logits")
  end,

  refusals = function()
    local cfg = config_of("gpt_oss")
    cfg.quantization_config = {quant_method = "mxfp4", modules_to_not_convert = {"model.layers.*.self_attn"}}
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end,
      "quantization_config quant_method mxfp4: GPT-OSS's MXFP4-quantized experts")
    cfg = config_of("gpt_oss")
    local w = weights_of("gpt_oss")
    w["model.layers.0.mlp.experts.gate_up_proj_blocks"] = w["model.layers.0.mlp.experts.gate_up_proj"]
    t.assert_error(function() lfl.model.from_params(cfg, w) end,
      "model.layers.0.mlp.experts.gate_up_proj_blocks: GPT-OSS's MXFP4-quantized experts")
    w = weights_of("gpt_oss")
    w["model.layers.1.mlp.experts.down_proj_bias"] = nil
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "model.layers.1.mlp.experts.down_proj_bias is missing")
    w = weights_of("gpt_oss")
    w["model.layers.2.self_attn.sinks"] = nil
    t.assert_error(function() lfl.model.from_params(cfg, w) end, "parameter 'model.layers.2.self_attn.sinks' is missing")
    w = weights_of("gpt_oss")
    w["model.layers.0.mlp.experts.gate_up_proj_bias"] = w["model.layers.0.mlp.experts.gate_up_proj_bias"]:narrow(2, 1, 40)
    t.assert_error(function() lfl.model.from_params(cfg, w) end,
      "model.layers.0.mlp.experts.gate_up_proj_bias has shape [4,40], expected [4,48]")
    for _, c in ipairs({{"swiglu_limit", 0, "swiglu_limit is 0, expected a positive number"},
                        {"num_experts_per_tok", 5, "num_experts_per_tok 5 is more than num_local_experts 4"}}) do
      cfg = config_of("gpt_oss")
      cfg[c[1]] = c[2]
      t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, c[3])
    end
  end,
})

t.suite("family_configs", {
  -- a recipe's rope_scaling as LlamaFactory's configure_rope: the tiny llama
  -- (64 positions) trained at cutoff 100 gets linear factor 2, which is
  -- transformers' llama_linear_rope (the same weights); a cutoff that fits
  -- changes nothing; inference stretches by 2; llama3/yarn carry the old length
  recipe_rope_scaling = function()
    local g = lfl.safetensors.load(root .. "llama_linear_rope/golden.safetensors")
    local m = lfl.model.load(root .. "llama", {rope_scaling = lfl.args.rope_option({rope_scaling = "linear",
      cutoff_len = 100}, true)})
    t.assert_eq(m.config.max_position_embeddings, 128, "64 positions x 2")
    t.assert(t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits) <= 1e-5,
      "transformers' linear factor 2")
    local rope = require("lfl.model.rope")
    local cfg = config_of("llama")
    local note = rope.apply_recipe_scaling(cfg, "linear", 60)
    t.assert(note:find("fits the model's 64 positions", 1, true) and cfg.max_position_embeddings == 64, note)
    cfg = config_of("llama")
    rope.apply_recipe_scaling(cfg, "llama3", 200)
    local rp = cfg.rope_parameters
    t.assert(rp.rope_type == "llama3" and rp.factor == 4 and rp.original_max_position_embeddings == 64 and
      rp.low_freq_factor == 1 and rp.high_freq_factor == 4 and rp.rope_theta == 10000, "llama3 keys")
    cfg = config_of("llama")
    rope.apply_recipe_scaling(cfg, "yarn", nil)
    t.assert(cfg.rope_parameters.factor == 2 and cfg.max_position_embeddings == 128, "inference: factor 2")
    t.assert_error(function() rope.apply_recipe_scaling(config_of("gemma3"), "linear", 100) end,
      "model_type gemma3_text keeps rope parameters per layer type")
    t.assert_eq(lfl.args.rope_option({}, true), nil, "no rope_scaling, no option")
  end,

  -- Llama 3.1 / 3.2 GGUFs carry llama3 rope scaling only as rope_freqs.weight
  -- (convert_hf_to_gguf's factors, written by the reference script): lfl
  -- recovers the rope_scaling, gives the HF model's logits, writes the same
  -- factors back on export and reads its own export
  gguf_llama3_rope_freqs = function()
    for _, c in ipairs({{"llama_tied_llama3rope", 16}, {"llama_llama31rope", 8192}}) do
      local name = c[1]
      local g = lfl.safetensors.load(root .. name .. "/golden.safetensors")
      local m = lfl.model.load(root .. name .. "/model.gguf")
      local rs = m.config.rope_scaling
      t.assert(rs and rs.rope_type == "llama3" and rs.factor == 8 and rs.high_freq_factor == 4 and
        rs.original_max_position_embeddings == c[2], name .. ": rope_scaling from rope_freqs")
      t.assert(t.max_abs_diff(lfl.no_grad(function() return m:forward(g.input_ids) end), g.logits) <= 1e-5,
        name .. ": GGUF logits")
      local file = lfl.gguf.tensors(root .. name .. "/model.gguf")["rope_freqs.weight"]:to("f32")
      local mine = require("lfl.model.gguf").llama3_factors(rs, 500000.0, m.arch.head_dim)
      for i = 1, #mine do t.assert_close(mine[i], file[i], 1e-6, name .. " factor " .. i) end
      local out = os.tmpname() .. ".gguf"
      require("lfl.model.gguf_export").write(lfl.model.load(root .. name), out, {quantization = "f32", tokenizer = false})
      local back = lfl.model.load(out)
      os.remove(out)
      t.assert_eq(back.config.rope_scaling.original_max_position_embeddings, c[2], name .. ": exported rope_freqs")
      t.assert(t.max_abs_diff(lfl.no_grad(function() return back:forward(g.input_ids) end), g.logits) <= 1e-5,
        name .. ": exported GGUF logits")
    end
    -- the tied case without its scaling is visibly off: the test sees the scaling
    local cfg = config_of("llama_tied_llama3rope")
    cfg.rope_parameters = {rope_theta = cfg.rope_parameters.rope_theta, rope_type = "default"}
    local plain = lfl.model.from_params(cfg, weights_of("llama_tied_llama3rope"))
    local g = lfl.safetensors.load(root .. "llama_tied_llama3rope/golden.safetensors")
    t.assert(t.max_abs_diff(lfl.no_grad(function() return plain:forward(g.input_ids) end), g.logits) > 1e-2,
      "llama3 scaling changes these logits")
  end,

  -- Ministral 3's query scale past original_max_position_embeddings (4 in the
  -- golden) matters (the logits move without it) and holds in cached decoding
  ministral3_query_scale = function()
    local g = lfl.safetensors.load(root .. "ministral3/golden.safetensors")
    local m = lfl.model.load(root .. "ministral3")
    t.assert(m.arch.q_pos_scale and m.arch.q_pos_scale.omax == 4, "llama_4_scaling_beta read")
    local ids = g.input_ids:narrow(1, 1, 1):contiguous()
    local full = lfl.no_grad(function() return m:forward(ids) end)
    local c = lfl.decoder.new_cache()
    lfl.no_grad(function()
      m:forward(ids:narrow(2, 1, 5):contiguous(), {cache = c})
      for j = 6, 12 do
        local st = m:forward(ids:narrow(2, j, 1):contiguous(), {cache = c})
        t.assert(t.max_abs_diff(st, full:narrow(2, j, 1)) <= 1e-5, "cached step " .. j)
      end
    end)
    m.arch.q_pos_scale = nil
    local plain = lfl.no_grad(function() return m:forward(ids) end)
    t.assert(t.max_abs_diff(plain, full) > 1e-3, "the query scale changes the logits")
    t.assert(t.max_abs_diff(plain:narrow(2, 1, 4), full:narrow(2, 1, 4)) <= 1e-6, "positions 0-3 are not scaled")
  end,

  -- the Hub's Gemma 3 spelling (rope_theta, rope_local_base_freq, rope_scaling,
  -- sliding_window_pattern; transformers checked it reads the same) gives the same logits
  gemma3_hub_spelling = function()
    local cfg = lfl.model.read_json(root .. "gemma3/hub_config.json")
    t.assert_eq(cfg.rope_parameters, nil); t.assert_eq(cfg.layer_types, nil)
    local m = lfl.model.from_params(cfg, weights_of("gemma3"))
    local g = lfl.safetensors.load(root .. "gemma3/golden.safetensors")
    t.assert(t.max_abs_diff(m:forward(g.input_ids), g.logits) <= 1e-4, "hub spelling logits")
    t.assert_eq(m.arch.rope_of[1], "sliding_attention"); t.assert_eq(m.arch.rope_of[2], "full_attention")
    t.assert_eq(m.arch.window[1], 4); t.assert_eq(m.arch.window[2], nil)
    -- the same config with one rope base for every layer differs: the local base matters
    cfg.rope_local_base_freq = cfg.rope_theta
    local m2 = lfl.model.from_params(cfg, weights_of("gemma3"))
    t.assert(t.max_abs_diff(m2:forward(g.input_ids), g.logits) > 1e-3, "the local rope base is used")
  end,

  gemma3_defaults_and_refusals = function()
    local cfg = lfl.model.read_json(root .. "gemma3/hub_config.json")
    cfg.sliding_window_pattern, cfg.rope_theta, cfg.rope_local_base_freq = nil, nil, nil
    local a = lfl.decoder.resolve(cfg, "c.json")
    -- transformers' defaults: every 6th layer global, bases 1e6 / 1e4
    for l = 1, 4 do t.assert_eq(a.rope_of[l], "sliding_attention") end
    t.assert_eq(a.ropes.full_attention.rope_parameters.rope_theta, 1000000.0)
    t.assert_eq(a.ropes.sliding_attention.rope_parameters.rope_theta, 10000.0)
    t.assert_close(a.scale, 16 ^ -0.5, 1e-12, "query_pre_attn_scalar")
    local bad = config_of("gemma3")
    bad.use_bidirectional_attention = true
    t.assert_error(function() lfl.decoder.resolve(bad, "c.json") end, "use_bidirectional_attention")
    bad = config_of("gemma3")
    bad.layer_types[3] = "chunked_attention"
    t.assert_error(function() lfl.decoder.resolve(bad, "c.json") end, "layer_types[3] is chunked_attention")
    bad = config_of("gemma3")
    bad.rope_parameters.full_attention.rope_theta = "big"
    t.assert_error(function() lfl.decoder.resolve(bad, "c.json") end, "full_attention rope_theta is big")
  end,

  granite_refusals = function()
    local cfg = config_of("granite")
    cfg.logits_scaling = 0
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "logits_scaling is 0")
    cfg = config_of("granite")
    cfg.residual_multiplier = "0.2"
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "residual_multiplier is 0.2, expected a finite")
  end,

  cohere_refusals = function()
    local cfg = config_of("cohere")
    cfg.use_qk_norm = "yes"
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "use_qk_norm is yes")
    cfg = config_of("cohere")
    cfg.logit_scale = {}
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "logit_scale")
    -- a use_qk_norm config needs the per-head weights
    cfg = config_of("cohere")
    cfg.use_qk_norm = true
    t.assert_error(function() lfl.model.from_params(cfg, weights_of("cohere")) end,
      "parameter 'model.layers.0.self_attn.q_norm.weight' is missing")
  end,

  partial_rotary = function()
    local cfg = config_of("glm4")
    cfg.rope_parameters.partial_rotary_factor = 0.1875 -- 3 of 16 dims
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "rotates 3 of the 16 head dims")
    cfg.rope_parameters.partial_rotary_factor = 1.5
    t.assert_error(function() lfl.decoder.resolve(cfg, "c.json") end, "partial_rotary_factor is 1.5")
    -- absent: Glm4Config's 0.5
    cfg.rope_parameters.partial_rotary_factor = nil
    t.assert_eq(lfl.decoder.resolve(cfg, "c.json").rotary_dim, 8)
    -- families with halves-style rotary refuse a partial one instead of rotating every dim
    local l = config_of("llama")
    l.partial_rotary_factor = 0.5
    t.assert_error(function() lfl.decoder.resolve(l, "c.json") end,
      "partial_rotary_factor (4 of 8 head dims rotated) is not supported for model_type llama")
  end,
})

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
    for _, name in ipairs({"olmo", "olmo2", "starcoder2", "internlm2", "baichuan2", "gemma3", "granite", "cohere_qknorm",
                           "glm4", "mixtral"}) do
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

-- GGUF files written by llama.cpp's converter class itself
-- (tests/ref/make_model_goldens.py convert_gguf) from a sibling of the
-- golden checkpoint that llama.cpp can represent (qwen2moe / qwen3moe: no
-- dense layers; gemma3: every 6th layer global, 1/sqrt(head_dim) scale; mixtral:
-- the golden one, written as a llama file with experts; granite, cohere,
-- cohere_qknorm, glm4, deepseek_v2(_greedy), deepseek_v3: the golden ones), its
-- HF parameters ("param.<name>") and logits in gguf_golden.safetensors. The
-- fused ffn_*_exps [n_expert, rows, cols] come back as one weight per expert,
-- gemma3's norms (q/k norms too) without llama.cpp's +1.
local converted = {qwen2_moe = "qwen2_moe", qwen3_moe = "qwen3_moe", gemma3 = "gemma3_text", mixtral = "mixtral",
                   granite = "granite", cohere = "cohere", cohere_qknorm = "cohere",
                   glm4 = "glm4", deepseek_v2 = "deepseek_v2", deepseek_v3 = "deepseek_v3",
                   deepseek_v2_greedy = "deepseek_v2"}
for name, model_type in pairs(converted) do
  gguf_cases[name] = function()
    local m = lfl.model.load(root .. name .. "/model.gguf")
    local g = lfl.safetensors.load(root .. name .. "/gguf_golden.safetensors")
    local n = 0
    for k, v in pairs(g) do
      local hf = k:match("^param%.(.+)$")
      if hf then
        t.assert(m.params[hf], name .. ".gguf: no parameter " .. hf)
        -- gemma3's norms went through + 1 in f32 and back: one rounding
        local tol = (name == "gemma3" and hf:match("norm%.weight$")) and 1e-6 or 0
        t.assert_tensor_close(m.params[hf], v, tol, 0, name .. ".gguf " .. hf)
        n = n + 1
      end
    end
    t.assert(n > 0, name .. ": gguf_golden.safetensors holds no parameters")
    t.assert_eq(#m.names, n, name .. ".gguf: parameter count")
    t.assert_eq(m.config.model_type, model_type)
    local diff = t.max_abs_diff(m:forward(g.input_ids), g.logits)
    t.assert(diff <= 1e-4, string.format("%s.gguf logits max abs diff %.3g", name, diff))
  end
end
-- Q8_0 blocks in a fused [n_expert, rows, cols] tensor (qwen3_moe's file
-- with its matrices quantized by gguf-py): each expert's weight is that
-- expert's slice, dequantized (within Q8_0's step of the f32 file, and not
-- equal to it); with gguf_blocks the 2-D linears stay in blocks and the
-- experts are dequantized (the decoder takes no per-expert block views)
gguf_cases.qwen3_moe_q8_0_experts = function()
  local dir = root .. "qwen3_moe/"
  local f = lfl.model.load(dir .. "model.gguf")
  local g = lfl.safetensors.load(dir .. "gguf_golden.safetensors")
  for _, opts in ipairs({{}, {gguf_blocks = true}}) do
    local q = lfl.model.load(dir .. "model_q8_0.gguf", opts)
    for e = 0, 3 do
      for _, w in ipairs({"gate_proj", "up_proj"}) do
        local n = string.format("model.layers.1.mlp.experts.%d.%s.weight", e, w)
        t.assert_eq(q.params[n]:dtype(), "f32", n)
        local d = t.max_abs_diff(q.params[n], f.params[n])
        t.assert(d > 0 and d < 0.005, string.format("%s: Q8_0 expert differs by %.3g from f32", n, d))
      end
    end
    t.assert_eq(q.params["model.layers.1.self_attn.q_proj.weight"]:dtype(), opts.gguf_blocks and "q8_0" or "f32")
    local diff = t.max_abs_diff(q:forward(g.input_ids), g.logits)
    t.assert(diff < 0.05, string.format("qwen3_moe Q8_0 logits max abs diff %.3g", diff))
  end
  -- QLoRA-style quantization (int8) reaches each expert's slice too
  local q = lfl.model.load(dir .. "model_q8_0.gguf", {quantize = {type = "int8"}})
  t.assert_eq(q.params["model.layers.1.mlp.experts.3.up_proj.weight"]:dtype(), "int8")
  local diff = t.max_abs_diff(q:forward(g.input_ids), g.logits)
  t.assert(diff < 0.05, string.format("qwen3_moe Q8_0 -> int8 logits max abs diff %.3g", diff))
end
-- DeepSeek-V2 as older converters wrote it (kv_b_proj whole as attn_kv_b,
-- the real key/value head sizes, no *_mla lengths): the same parameters and logits
gguf_cases.deepseek_v2_kv_b = function()
  local dir = root .. "deepseek_v2/"
  local m = lfl.model.load(dir .. "model_kv_b.gguf")
  local g = lfl.safetensors.load(dir .. "gguf_golden.safetensors")
  local n = 0
  for k, v in pairs(g) do
    local hf = k:match("^param%.(.+)$")
    if hf then
      t.assert(m.params[hf], "model_kv_b.gguf: no parameter " .. hf)
      t.assert_tensor_close(m.params[hf], v, 0, 0, "model_kv_b.gguf " .. hf)
      n = n + 1
    end
  end
  t.assert_eq(#m.names, n, "model_kv_b.gguf: parameter count")
  local diff = t.max_abs_diff(m:forward(g.input_ids), g.logits)
  t.assert(diff <= 1e-4, string.format("model_kv_b.gguf logits max abs diff %.3g", diff))
end

-- a converted golden GGUF written again by lfl.gguf.write with metadata
-- changed (edit_kv[key] = value) and tensors dropped (drop[name] = true)
local function rewritten(src, edit_kv, drop)
  local r = lfl.gguf.read(src)
  local kv = {}
  for k, v in pairs(r.metadata) do
    if edit_kv[k] ~= nil then v = edit_kv[k] end
    local ty = type(v) == "string" and "string" or type(v) == "boolean" and "bool" or
      (v == math.floor(v) and "u32" or "f32")
    kv[#kv + 1] = {k, ty, v}
  end
  local tensors = {}
  for name, w in pairs(lfl.gguf.tensors(src)) do
    if not drop[name] then tensors[#tensors + 1] = {name, w:to("f32"), "f32"} end
  end
  local out = os.tmpname() .. ".gguf"
  lfl.gguf.write(out, {kv = kv, tensors = tensors})
  return out
end
gguf_cases.fused_tensor_errors = function()
  -- an expert count the fused tensors do not have
  local p = rewritten(root .. "qwen3_moe/model.gguf", {["qwen3moe.expert_count"] = 3}, {})
  local err = t.assert_error(function() lfl.model.load(p) end,
    "], expected [n_expert, rows, cols] with n_expert from qwen3moe.expert_count")
  t.assert(err:find("_exps.weight' has shape [4, ", 1, true), err)
  os.remove(p)
  -- half of DeepSeek's split kv_b
  p = rewritten(root .. "deepseek_v3/model.gguf", {}, {["blk.1.attn_v_b.weight"] = true})
  t.assert_error(function() lfl.model.load(p) end, "blk.1.attn_k_b.weight without blk.1.attn_v_b.weight")
  os.remove(p)
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
