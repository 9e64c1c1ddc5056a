-- The config.json keys of the sparse mixture-of-experts families with the
-- mlp.gate router and mlp.experts.<e>.gate_proj / up_proj / down_proj experts
-- (Qwen2-MoE, Qwen3-MoE, DeepSeek-V2 / V3): which layers are sparse, the
-- experts' sizes, the router's kind, top-k renormalisation, shared experts, the
-- load-balancing coefficient, and DeepSeek's latent attention sizes, set on the
-- decoder's arch (see lfl.model.decoder's moe and mla traits). Errors name
-- config.json and the key.
local fmt = string.format
local M = {}

local function get(cfg, key, default)
  local v = cfg[key]
  if v == nil or v == lfl.json.null then return default end
  return v
end

local function int(cfg, key, default, min)
  local v = get(cfg, key, default)
  if type(v) ~= "number" or v ~= math.floor(v) or v < min then
    error(fmt("config.json: %s is %s, expected an integer >= %d", key, tostring(v), min), 0)
  end
  return v
end

local function num(cfg, key, default)
  local v = get(cfg, key, default)
  if type(v) ~= "number" then error(fmt("config.json: %s is %s, expected a number", key, tostring(v)), 0) end
  return v
end

-- config.json readers with errors naming the key, shared with the MoE families' modules
M.get, M.int = get, int

local function bool(cfg, key, default)
  local v = get(cfg, key, default)
  if type(v) ~= "boolean" then error(fmt("config.json: %s is %s, expected true or false", key, tostring(v)), 0) end
  return v
end

-- cfg: config.json; a: the decoder's arch; shared: whether the family has
-- Qwen2-MoE's shared expert
function M.resolve_qwen(cfg, a, shared)
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  -- the Hub's configs say num_experts; transformers 5 writes Qwen3-MoE's as
  -- num_local_experts (an attribute_map alias)
  local ek = get(cfg, "num_experts", nil) == nil and get(cfg, "num_local_experts", nil) ~= nil and
    "num_local_experts" or "num_experts"
  a.experts = int(cfg, ek, 60, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 4, 1)
  if a.top_k > a.experts then
    error(fmt("config.json: num_experts_per_tok %d is more than %s %d", a.top_k, ek, a.experts), 0)
  end
  a.moe_F = int(cfg, "moe_intermediate_size", 1408, 1)
  -- transformers' Qwen2Moe/Qwen3MoeConfig default is false; the released
  -- Qwen3-MoE checkpoints say true
  a.norm_topk = bool(cfg, "norm_topk_prob", false)
  if shared then
    local sf = int(cfg, "shared_expert_intermediate_size", 5632, 0)
    a.shared_F = sf > 0 and sf or nil
  end
  -- a layer is sparse unless listed in mlp_only_layers (0-based) or off the
  -- decoder_sparse_step grid ((l + 1) % step == 0, l 0-based)
  local step = int(cfg, "decoder_sparse_step", 1, 1)
  local only = get(cfg, "mlp_only_layers", {})
  if type(only) ~= "table" then
    error(fmt("config.json: mlp_only_layers is %s, expected a list of layer numbers", tostring(only)), 0)
  end
  local dense = {}
  for i, l in ipairs(only) do
    if type(l) ~= "number" or l ~= math.floor(l) or l < 0 or l >= a.layers then
      error(fmt("config.json: mlp_only_layers[%d] is %s, expected a layer number in [0, %d)", i, tostring(l),
        a.layers), 0)
    end
    dense[l + 1] = true
  end
  a.moe_layer = {}
  for l = 1, a.layers do a.moe_layer[l] = not dense[l] and l % step == 0 or nil end
  local coef = get(cfg, "router_aux_loss_coef", 0.001)
  if type(coef) ~= "number" then
    error(fmt("config.json: router_aux_loss_coef is %s, expected a number", tostring(coef)), 0)
  end
  a.router_aux_coef = coef
  a.router_aux = cfg.output_router_logits == true
  if get(cfg, "use_sliding_window", false) == true then
    error("config.json: use_sliding_window true is not supported for the Qwen MoE models (their released " ..
      "checkpoints attend over the whole context)", 0)
  end
end

-- the key naming the routed experts' count: the Hub's n_routed_experts, or
-- num_local_experts (transformers 5's attribute_map alias) when only that is set
local function routed_key(cfg)
  return get(cfg, "n_routed_experts", nil) == nil and get(cfg, "num_local_experts", nil) ~= nil and
    "num_local_experts" or "n_routed_experts"
end

-- group-limited top-k: n_group groups of experts, the topk_group best kept,
-- top_k experts among them (sigmoid: at least 2 experts a group, as the
-- group score is the sum of the two largest)
local function groups(cfg, a, ek, dg, dtg, sigmoid)
  a.n_group = int(cfg, "n_group", dg, 1)
  a.topk_group = int(cfg, "topk_group", dtg, 1)
  local per = a.experts / a.n_group
  if a.experts % a.n_group ~= 0 or (sigmoid and per < 2) then
    error(fmt("config.json: %s %d must be a multiple of n_group %d%s", ek, a.experts, a.n_group,
      sigmoid and " with at least 2 experts a group" or ""), 0)
  end
  if a.topk_group > a.n_group then
    error(fmt("config.json: topk_group %d is more than n_group %d", a.topk_group, a.n_group), 0)
  end
  if a.top_k > a.topk_group * per then
    error(fmt("config.json: num_experts_per_tok %d is more than the %d experts of topk_group %d groups", a.top_k,
      a.topk_group * per, a.topk_group), 0)
  end
end

-- DeepSeek-V3's router, GLM-4.5's too: sigmoid scores plus
-- e_score_correction_bias for the choice, group-limited top-k, the chosen
-- scores renormalised (norm_topk_prob) and times routed_scaling_factor;
-- auxiliary-loss-free (transformers adds no load-balancing loss).
-- d: the family's defaults of n_group, topk_group, routed_scaling_factor
local function sigmoid_group(cfg, a, ek, d)
  groups(cfg, a, ek, d.n_group, d.topk_group, true)
  a.router = "sigmoid_group"
  a.routed_scale = num(cfg, "routed_scaling_factor", d.routed_scaling_factor)
  a.norm_topk = bool(cfg, "norm_topk_prob", true)
  a.aux_free = true
end

-- DeepSeek's expert layout (GLM-4.5's too): mlp.gate, mlp.experts.<e>.*_proj,
-- n_shared_experts folded into one shared_experts.* MLP, the first
-- first_k_dense_replace layers dense; d: the family's defaults
local function experts_after_dense(cfg, a, d)
  a.moe_F = int(cfg, "moe_intermediate_size", d.moe_intermediate_size, 1)
  a.moe_names = {block = "mlp.", gate = "gate_proj", up = "up_proj", down = "down_proj"}
  local shared = int(cfg, "n_shared_experts", d.n_shared_experts, 0)
  a.shared_F = shared > 0 and shared * a.moe_F or nil
  a.shared_name = "shared_experts."
  local dense = int(cfg, "first_k_dense_replace", d.first_k_dense_replace, 0)
  a.moe_layer = {}
  for l = dense + 1, a.layers do a.moe_layer[l] = true end
  a.aux_free = true
end

-- DeepSeek-V2 / V3 (v3 true): multi-head latent attention and their routers
function M.resolve_deepseek(cfg, a, v3)
  -- attention
  a.mla = true
  a.q_rank = get(cfg, "q_lora_rank", nil) and int(cfg, "q_lora_rank", nil, 1) or nil
  a.kv_rank = int(cfg, "kv_lora_rank", 512, 1)
  a.nope_dim = int(cfg, "qk_nope_head_dim", 128, 1)
  a.rope_dim = int(cfg, "qk_rope_head_dim", 64, 2)
  a.v_dim = int(cfg, "v_head_dim", 128, 1)
  a.head_dim = a.nope_dim + a.rope_dim
  if a.v_dim > a.head_dim then
    error(fmt("config.json: v_head_dim %d is more than qk_nope_head_dim + qk_rope_head_dim %d (not supported)",
      a.v_dim, a.head_dim), 0)
  end
  if a.kv_heads ~= a.heads then
    error(fmt("config.json: num_key_value_heads %d differs from num_attention_heads %d; latent attention expands " ..
      "keys and values for every head", a.kv_heads, a.heads), 0)
  end
  -- V2 rotates interleaved pairs as complex numbers; V3 by rope_interleave
  a.rope_interleave = not v3 or get(cfg, "rope_interleave", true) == true
  a.scale = 1 / math.sqrt(a.head_dim)
  local rp = get(cfg, "rope_parameters", nil) or get(cfg, "rope_scaling", nil)
  if type(rp) == "table" and (rp.rope_type or rp.type or "default") ~= "default" and rp.mscale_all_dim
     and rp.mscale_all_dim ~= 0 and (rp.factor or 1) > 1 then
    -- transformers' yarn_apply_mscale: scaling * mscale^2 (the non-rotary dims too)
    local ms = 0.1 * rp.mscale_all_dim * math.log(rp.factor) + 1.0
    a.scale = a.scale * ms * ms
  end
  -- multi-token prediction layers past num_hidden_layers: transformers does not load them
  a.extra_layers = v3 and int(cfg, "num_nextn_predict_layers", 0, 0) or 0
  -- experts
  local ek = routed_key(cfg)
  a.experts = int(cfg, ek, v3 and 256 or 64, 1)
  a.top_k = int(cfg, "num_experts_per_tok", v3 and 8 or nil, 1)
  if v3 then
    for key, want in pairs({topk_method = "noaux_tc", scoring_func = "sigmoid"}) do
      local v = get(cfg, key, want)
      if v ~= want then
        error(fmt("config.json: %s %s is not supported for deepseek_v3 (only %s)", key, tostring(v), want), 0)
      end
    end
    sigmoid_group(cfg, a, ek, {n_group = 8, topk_group = 4, routed_scaling_factor = 2.5})
  else
    -- transformers' DeepseekV2TopkRouter: softmax, greedy top-k or the best
    -- topk_group groups by their largest score; never renormalised
    -- (norm_topk_prob is not read), times routed_scaling_factor
    local tm = get(cfg, "topk_method", "greedy")
    if tm ~= "greedy" and tm ~= "group_limited_greedy" then
      error(fmt("config.json: topk_method %s is not supported for deepseek_v2 (greedy, group_limited_greedy)",
        tostring(tm)), 0)
    end
    if tm == "group_limited_greedy" then groups(cfg, a, ek, 8, 4, false)
    elseif a.top_k > a.experts then
      error(fmt("config.json: num_experts_per_tok %d is more than %s %d", a.top_k, ek, a.experts), 0)
    end
    local sf = get(cfg, "scoring_func", "softmax")
    if sf ~= "softmax" then
      error(fmt("config.json: scoring_func %s is not supported for deepseek_v2 (only softmax)", tostring(sf)), 0)
    end
    a.group_score = tm == "group_limited_greedy" and "max" or nil
    a.routed_scale = num(cfg, "routed_scaling_factor", 1.0)
    a.norm_topk = false
  end
  experts_after_dense(cfg, a, {moe_intermediate_size = v3 and 2048 or 1407, n_shared_experts = v3 and 1 or 2,
                               first_k_dense_replace = v3 and 3 or 0})
end

-- GLM-4.5 / GLM-4.5-Air (model_type glm4_moe): grouped-query attention with
-- q/k/v biases (attention_bias), optional per-head q/k RMSNorm (use_qk_norm),
-- partial rotary on the first dims in halves; DeepSeek-V3's sigmoid router and
-- expert layout (transformers' defaults: n_group 1, routed_scaling_factor 1)
function M.resolve_glm4_moe(cfg, a)
  a.qk_norm = bool(cfg, "use_qk_norm", false) or nil
  -- Glm4MoeConfig's default when config.json has none (rope.lua reads it)
  if get(cfg, "partial_rotary_factor", nil) == nil and not (type(cfg.rope_parameters) == "table" and
     get(cfg.rope_parameters, "partial_rotary_factor", nil) ~= nil) then
    local c = {}
    for k, v in pairs(cfg) do c[k] = v end
    c.partial_rotary_factor = 0.5
    a.ropes.main = c
  end
  -- the multi-token prediction layers past num_hidden_layers: transformers does not load them
  a.extra_layers = int(cfg, "num_nextn_predict_layers", 0, 0)
  local ek = routed_key(cfg)
  a.experts = int(cfg, ek, 128, 1)
  a.top_k = int(cfg, "num_experts_per_tok", 8, 1)
  sigmoid_group(cfg, a, ek, {n_group = 1, topk_group = 1, routed_scaling_factor = 1.0})
  experts_after_dense(cfg, a, {moe_intermediate_size = 1408, n_shared_experts = 1, first_k_dense_replace = 1})
end


-- GGUF (llama.cpp arch qwen2moe / qwen3moe, convert_hf_to_gguf's
-- Qwen2MoeModel in conversion/qwen.py): the experts of a layer come fused as
-- ffn_{gate,up,down}_exps [n_expert, rows, cols] ("*" in a name: one HF tensor
-- per expert, lfl.model.gguf cuts them), the router as ffn_gate_inp, Qwen2-MoE's
-- shared expert as ffn_*_shexp with its gate ffn_gate_inp_shexp. Sizes come
-- from {arch}.expert_count / expert_used_count / expert_feed_forward_length /
-- expert_shared_feed_forward_length. The files carry no norm_topk_prob:
-- llama.cpp renormalises Qwen3-MoE's top-k weights and not Qwen2-MoE's
-- (norm_topk; {arch}.expert_weights_norm wins when present). A block without a
-- router is a dense layer (mlp_only_layers).
function M.gguf_qwen(arch, hf_class, shared, norm_topk)
  local names = {
    ffn_gate_inp = "mlp.gate", ffn_gate_exps = "mlp.experts.*.gate_proj", ffn_up_exps = "mlp.experts.*.up_proj",
    ffn_down_exps = "mlp.experts.*.down_proj",
  }
  if shared then
    names.ffn_gate_shexp, names.ffn_up_shexp = "mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj"
    names.ffn_down_shexp, names.ffn_gate_inp_shexp = "mlp.shared_expert.down_proj", "mlp.shared_expert_gate"
  end
  return {
    arch = arch, hf_class = hf_class, names = names,
    config = function(cfg, meta, key, k, tensors)
      cfg.num_experts, cfg.num_experts_per_tok = k("expert_count"), k("expert_used_count")
      cfg.moe_intermediate_size = k("expert_feed_forward_length")
      if shared then cfg.shared_expert_intermediate_size = k("expert_shared_feed_forward_length", 0) end
      local nw = meta[key("expert_weights_norm")]
      if nw == nil then nw = norm_topk end
      cfg.norm_topk_prob = nw
      cfg.decoder_sparse_step = 1
      if next(tensors) then
        local dense = {}
        for l = 0, cfg.num_hidden_layers - 1 do
          if not tensors[fmt("blk.%d.ffn_gate_inp.weight", l)] then dense[#dense + 1] = l end
        end
        cfg.mlp_only_layers = dense
      end
    end,
  }
end


-- GGUF (llama.cpp arch deepseek2, convert_hf_to_gguf's DeepseekV2Model in
-- conversion/deepseek.py) for DeepSeek-V2 and V3: latent attention as
-- attn_q_a / attn_q_a_norm / attn_q_b (or attn_q), attn_kv_a_mqa /
-- attn_kv_a_norm and kv_b_proj either whole (attn_kv_b, older files) or, as
-- the converter writes it now, split per head into attn_k_b [heads, kv_rank,
-- nope] (transposed) and attn_v_b [heads, v_dim, kv_rank]; the experts fused
-- (ffn_*_exps), the shared ones as ffn_*_shexp, V3's correction bias as
-- exp_probs_b. The head counts are MQA's (head_count_kv 1) with
-- key_length_mla / value_length_mla as the real head sizes. A file is V3 when
-- it has correction biases or a sigmoid gating function (2); V2 is
-- group-limited when it has groups. mscale = mscale_all_dim =
-- yarn_log_multiplier / 0.1 (llama.cpp has one, the released configs both
-- equal); V3's rotary is interleaved (the released configs).
function M.gguf_deepseek()
  local names = {
    attn_q_a = "self_attn.q_a_proj", attn_q_a_norm = "self_attn.q_a_layernorm", attn_q_b = "self_attn.q_b_proj",
    attn_kv_a_mqa = "self_attn.kv_a_proj_with_mqa", attn_kv_a_norm = "self_attn.kv_a_layernorm",
    attn_kv_b = "self_attn.kv_b_proj",
    ffn_gate_inp = "mlp.gate", ["exp_probs_b.bias"] = "mlp.gate.e_score_correction_bias",
    ffn_gate_exps = "mlp.experts.*.gate_proj", ffn_up_exps = "mlp.experts.*.up_proj",
    ffn_down_exps = "mlp.experts.*.down_proj",
    ffn_gate_shexp = "mlp.shared_experts.gate_proj", ffn_up_shexp = "mlp.shared_experts.up_proj",
    ffn_down_shexp = "mlp.shared_experts.down_proj",
  }
  return {
    arch = "deepseek2", hf_class = "DeepseekV2ForCausalLM", names = names,
    config = function(cfg, meta, key, k, tensors)
      local heads = cfg.num_attention_heads
      cfg.num_key_value_heads = heads
      cfg.kv_lora_rank = k("attention.kv_lora_rank")
      cfg.q_lora_rank = meta[key("attention.q_lora_rank")]
      local rope = k("rope.dimension_count")
      local kl = meta[key("attention.key_length_mla")] or k("attention.key_length")
      cfg.qk_rope_head_dim, cfg.qk_nope_head_dim = rope, kl - rope
      cfg.v_head_dim = meta[key("attention.value_length_mla")] or k("attention.value_length")
      cfg.head_dim = kl
      cfg.first_k_dense_replace = k("leading_dense_block_count", 0)
      cfg.moe_intermediate_size = k("expert_feed_forward_length")
      cfg.n_routed_experts, cfg.num_experts_per_tok = k("expert_count"), k("expert_used_count")
      cfg.n_shared_experts = k("expert_shared_count", 0)
      cfg.routed_scaling_factor = meta[key("expert_weights_scale")] or 1.0
      cfg.norm_topk_prob = meta[key("expert_weights_norm")] == true
      cfg.n_group, cfg.topk_group = meta[key("expert_group_count")], meta[key("expert_group_used_count")]
      local v3 = meta[key("expert_gating_func")] == 2
      for name in pairs(tensors) do v3 = v3 or name:match("%.exp_probs_b%.bias$") ~= nil end
      if v3 then
        cfg.model_type, cfg.architectures = "deepseek_v3", {"DeepseekV3ForCausalLM"}
        cfg.topk_method, cfg.scoring_func, cfg.rope_interleave = "noaux_tc", "sigmoid", true
      else
        cfg.topk_method = (cfg.n_group or 1) > 1 and "group_limited_greedy" or "greedy"
      end
      local rs = cfg.rope_scaling
      if rs and rs.rope_type == "yarn" then
        rs.beta_fast = meta[key("rope.scaling.yarn_beta_fast")]
        rs.beta_slow = meta[key("rope.scaling.yarn_beta_slow")]
        local lm = meta[key("rope.scaling.yarn_log_multiplier")]
        if lm then
          local ms = require("lfl.model.gguf").f32_decimal(lm) / 0.1
          rs.mscale, rs.mscale_all_dim = ms, ms
        end
      end
    end,
    -- kv_b_proj [heads * (nope + v), kv_rank] from attn_k_b / attn_v_b
    tensors = function(t, cfg, path)
      local heads, nope, v = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim
      for l = 0, cfg.num_hidden_layers - 1 do
        local kn, vn = fmt("blk.%d.attn_k_b.weight", l), fmt("blk.%d.attn_v_b.weight", l)
        local kb, vb = t[kn], t[vn]
        if (kb == nil) ~= (vb == nil) then
          error(fmt("%s: %s without %s: the file is inconsistent", path, kb and kn or vn, kb and vn or kn), 0)
        end
        if kb then
          local ks, vs = kb:size(), vb:size()
          local r = cfg.kv_lora_rank
          if kb:dim() ~= 3 or ks[1] ~= heads or ks[2] ~= r or ks[3] ~= nope then
            error(fmt("%s: %s has shape [%s], expected [%d, %d, %d] (heads, kv_lora_rank, qk_nope_head_dim)", path,
              kn, table.concat(ks, ", "), heads, r, nope), 0)
          end
          if vb:dim() ~= 3 or vs[1] ~= heads or vs[2] ~= v or vs[3] ~= r then
            error(fmt("%s: %s has shape [%s], expected [%d, %d, %d] (heads, v_head_dim, kv_lora_rank)", path,
              vn, table.concat(vs, ", "), heads, v, r), 0)
          end
          t[fmt("blk.%d.attn_kv_b.weight", l)] =
            lfl.cat({kb:to("f32"):transpose(2, 3), vb:to("f32")}, 2):reshape(heads * (nope + v), r):contiguous()
          t[kn], t[vn] = nil, nil
        end
      end
    end,
  }
end

return M
