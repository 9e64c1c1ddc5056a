-- The generic decoder: one forward for the llama family and its relatives,
-- parameterised by an architecture spec derived from config.json and the
-- traits of the model family module defining its model_type (recipes/models/);
-- families whose weights use another layout convert them to this one at load
-- (their arch.to_decoder); parameter names are Hugging Face's.
local lfl = lfl
local rope = require("lfl.model.rope")
local fmt, sqrt = string.format, math.sqrt

local M = {}

-- What a model_type is comes from the model family module that defines it
-- (recipes/models/<family>.lua, its `arch` table, found by lfl.model.registry):
-- arch.traits, merged over the defaults below, and arch.resolve(cfg, a, traits)
-- / arch.window(cfg, layer, sliding_window) for the family's special cases.
-- Traits:
--   norm: "rms" (default), "layer" (LayerNorm with weight and bias) or
--     "layer_np" (OLMo's LayerNorm without parameters, eps fixed at 1e-5)
--   pre_norms = false: no input/pre-feedforward norms (only the sublayer outputs)
--   post_norms: norms after attention and MLP; qk_norm (per head) /
--     qk_norm_full (over the whole projection): RMSNorm on q and k
--   mlp = "plain": c_fc -> act -> c_proj instead of the gated gate/up/down
--   fused_qkv / fused_gate_up: qkv_proj / gate_up_proj parameters
--   qkv_bias: biases on q/k/v; norm_plus_one: x * (1 + w) norms;
--   embed_scale: embeddings times sqrt(hidden); act: the family's activation
--   (wins over a GELU variant in config.json); tied: tied embeddings when
--   config.json does not say; window_all: every layer uses sliding_window
--   qk_norm = "layer_heads": q/k LayerNorm per head without bias, weights
--     [heads, head_dim] (Cohere's use_qk_norm); norm_plus_one applies to q/k
--     RMSNorms too (Gemma 3)
--   norm_names = {post_attn =, pre_ffn =, post_ffn =}: the post_norms layout's
--     names when they are not Gemma 2's (GLM-4: post_self_attn_layernorm,
--     post_attention_layernorm, post_mlp_layernorm)
--   parallel: attention and MLP both read input_layernorm's output and are
--     added to the residual together (Cohere); no second norm
--   rope_interleave: rotary pairs are neighbouring dims (2i, 2i+1) instead
--     of halves (Cohere, GLM-4); partial_halves: a partial rotary rotates the
--     first dims in halves (GLM-4.5)
--   moe: a sparse mixture of experts instead of the MLP (Mixtral's layout:
--     block_sparse_moe.gate router, experts.<e>.w1 / w3 / w2), with
--     arch.experts, arch.top_k, arch.router_aux (add the load-balancing loss
--     to Model:loss) and arch.router_aux_coef set by the family's resolve;
--     a family's resolve may also set arch.moe_names ({block =, gate =, up =,
--     down =}: Qwen-MoE's mlp. / gate_proj, up_proj, down_proj), arch.moe_layer
--     (layer -> true for the sparse layers; the others keep the dense MLP),
--     arch.moe_F (the experts' intermediate size), arch.norm_topk = false (the
--     top-k probabilities not renormalised) and arch.shared_F (a shared expert
--     of that size, gated by sigmoid(shared_expert_gate), Qwen2-MoE's)
--   mla: DeepSeek's multi-head latent attention (see mla_qkv) with
--     arch.q_rank (nil: q_proj), kv_rank, nope_dim, rope_dim (the rotary
--     tables' and rope's dims), v_dim; head_dim is nope_dim + rope_dim
--   router = "sigmoid_group": DeepSeek-V3's router (see moe) with
--     arch.score_bias, n_group, topk_group, routed_scale; arch.shared_F with
--     shared_name = "shared_experts." and no sigmoid gate
--   router = "llama4": Llama 4's top-k of the router logits, the chosen
--     experts' INPUT scaled by sigmoid(logit) (arch.scale_input), no gate
--     on the shared expert; arch.dense_F: the dense layers' MLP width when
--     it is not config.intermediate_size
--   router = "gpt_oss": GPT-OSS's softmax over the top-k router logits (the
--     router has a bias, mlp.gate.bias), arch.expert_bias (biases on the
--     router and every expert's projections) and arch.swiglu_clamp {alpha =,
--     limit =} (the experts' clamped SwiGLU); arch.sinks: a learned logit per
--     head in the attention's softmax (self_attn.sinks, lfl.attention's sinks)
--   nope (layer -> true): no rotary in that layer (Llama 4), with
--     arch.temp_tune {floor =, scale =}: the query times
--     log1p(floor((pos + 1) / floor)) * scale + 1 there; qk_l2: q and k
--     L2-normalised (weightless RMSNorm) after the rotary elsewhere;
--     chunk: attention_chunk_size, a sequence longer than it is refused
-- A family's resolve may also set on the arch: scale (attention scaling),
-- embed_mult / residual_mult (Granite's multipliers of the embeddings and of
-- each sublayer's output), logit_scale (multiplies the logits), ropes (name ->
-- a config-like table rope.lua reads) with rope_of[layer] = that name
-- (Gemma 3's local and global rotary embeddings; default: one, the config).
local registry -- lfl.model.registry, loaded on first use

local ACTS = {silu = "silu", swish = "silu", gelu_pytorch_tanh = "gelu_tanh", gelu_new = "gelu_tanh",
              gelu = "gelu", gelu_fast = "gelu_tanh"}

-- the family arch of cfg.model_type; where names the config in errors
function M.arch_of(cfg, where)
  registry = registry or require("lfl.model.registry")
  return registry.arch(cfg.model_type, where)
end

local function shown(v)
  if type(v) == "string" then return fmt("%q", v) end
  if v == lfl.json.null then return "null" end
  if type(v) == "table" then return "a " .. (#v > 0 and "list" or "table") end
  return tostring(v)
end

-- cfg[key] as an integer >= min (nil when absent and optional), or an error
-- naming `where` and the key
local function int_key(cfg, key, where, min, optional)
  local v = cfg[key]
  if v == nil or v == lfl.json.null then
    if optional then return nil end
    error(fmt("%s: %s is missing", where, key), 0)
  end
  if type(v) ~= "number" or v ~= math.floor(v) or v < min or v >= 2 ^ 53 then
    error(fmt("%s: %s is %s, expected an integer >= %d", where, key, shown(v), min), 0)
  end
  return v
end

-- The sizes everything is built from, checked before any weight is read:
-- counts that are not positive integers, heads that do not divide, an odd
-- head_dim are errors naming `where` (the config.json path) and the key.
-- transformers fails on most of these later (a ZeroDivisionError, a shape
-- mismatch, "__len__() should return >= 0"); a layer count of 0 it accepts,
-- but a decoder without layers is never what a checkpoint holds (one whose
-- layers lie past num_hidden_layers is refused in lfl.model.from_params).
-- rope_theta need only be a number: 0 or a negative base makes inv_freq inf or
-- NaN and the loss NaN, as in transformers (eager attention).
function M.validate(cfg, where)
  where = where or "config"
  local H = int_key(cfg, "hidden_size", where, 1)
  int_key(cfg, "num_hidden_layers", where, 1)
  local heads = int_key(cfg, "num_attention_heads", where, 1)
  local kv = int_key(cfg, "num_key_value_heads", where, 1, true) or heads
  if heads % kv ~= 0 then
    error(fmt("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", where, heads, kv), 0)
  end
  local hd = int_key(cfg, "head_dim", where, 1, true)
  if not hd then
    if H % heads ~= 0 then
      error(fmt("%s: hidden_size %d is not divisible by num_attention_heads %d (and there is no head_dim)", where, H,
        heads), 0)
    end
    hd = H / heads
  end
  if hd % 2 ~= 0 then
    error(fmt("%s: the head dimension %d is odd (rotary embeddings rotate pairs)", where, hd), 0)
  end
  int_key(cfg, "vocab_size", where, 1)
  int_key(cfg, "intermediate_size", where, 1)
  local rp = cfg.rope_parameters ~= lfl.json.null and cfg.rope_parameters or nil
  for _, t in ipairs({{cfg, ""}, {type(rp) == "table" and rp or {}, "rope_parameters."}}) do
    local v = t[1].rope_theta
    if v ~= nil and v ~= lfl.json.null and type(v) ~= "number" then
      error(fmt("%s: %srope_theta is %s, expected a number", where, t[2], shown(v)), 0)
    end
  end
end

function M.resolve(cfg, where)
  local mt = cfg.model_type
  local fam = M.arch_of(cfg, where)
  M.validate(cfg, where)
  local tr = fam.traits
  local a = {norm = "rms", pre_norms = true, mlp = "gated"}
  for k, v in pairs(tr) do a[k] = v end
  a.name = mt
  a.hidden = cfg.hidden_size
  a.layers = cfg.num_hidden_layers
  a.heads = cfg.num_attention_heads
  a.kv_heads = cfg.num_key_value_heads or cfg.num_attention_heads
  a.head_dim = (cfg.head_dim ~= nil and cfg.head_dim ~= lfl.json.null and cfg.head_dim) or a.hidden / a.heads
  a.head_dim = math.floor(a.head_dim)
  a.vocab = cfg.vocab_size
  a.eps = cfg.rms_norm_eps or cfg.layer_norm_eps or 1e-6
  if a.norm == "layer_np" then a.eps = 1e-5 end -- OlmoLayerNorm hard-codes it
  -- a config without an activation (one made from GGUF metadata) gets the family's
  local act = cfg.hidden_activation or cfg.hidden_act
  if act == lfl.json.null then act = nil end
  if act == nil then a.act = tr.act or "silu"
  else a.act = tr.act and (ACTS[act] or tr.act) or ACTS[act] end
  if not a.act then error(fmt("config.json: hidden_act '%s' is not supported", tostring(act)), 0) end
  a.tied = cfg.tie_word_embeddings
  if a.tied == nil then a.tied = tr.tied == true end
  if cfg.attention_bias then a.qkv_bias, a.o_bias = true, true end
  if cfg.mlp_bias then a.mlp_bias = true end
  -- attention scaling and soft-capping
  a.scale = 1 / sqrt(a.head_dim)
  a.attn_softcap = cfg.attn_logit_softcapping
  a.final_softcap = cfg.final_logit_softcapping
  if a.attn_softcap == lfl.json.null then a.attn_softcap = nil end
  if a.final_softcap == lfl.json.null then a.final_softcap = nil end
  -- sliding windows per layer: config.json's layer_types, else the family's rule
  a.window = {}
  local sw = cfg.sliding_window
  if sw == lfl.json.null then sw = nil end
  for l = 1, a.layers do
    local w = nil
    if cfg.layer_types and cfg.layer_types ~= lfl.json.null then
      if cfg.layer_types[l] == "sliding_attention" then w = sw end
    elseif fam.window then
      w = fam.window(cfg, l, sw)
    elseif tr.window_all then
      w = sw
    end
    a.window[l] = w
  end
  a.norm_names = {post_attn = "post_attention_layernorm", pre_ffn = "pre_feedforward_layernorm",
                  post_ffn = "post_feedforward_layernorm"}
  for k, v in pairs(tr.norm_names or {}) do a.norm_names[k] = v end
  a.ropes, a.rope_of = {main = cfg}, {}
  -- the family's own special cases (eps keys, biases, scaling, refusals)
  if fam.resolve then fam.resolve(cfg, a, tr) end
  M.resolve_rope(a, where)
  return a
end

-- Each rotary table's rotated dims and the permutation of the head dims that
-- brings interleaved pairs (2i, 2i+1) and a partial rotary's pairs to the
-- (i, i + D/2) positions rope.c rotates: a permutation applied to q and k
-- alike leaves every q.k product, so the attention, as it was; the dims that
-- are not rotated get cos 1, sin 0 (rope.cos_sin). A partial rotary without
-- interleaving rotates the first R dims in halves (j, j + R/2) where the
-- family says so (trait partial_halves, GLM-4.5); elsewhere it is refused
-- (transformers' llama-style rotary fails on it).
function M.resolve_rope(a, where)
  local D, R = a.rope_dim or a.head_dim, nil
  for name, rc in pairs(a.ropes) do
    local p = rope.params(rc)
    if type(p.partial) ~= "number" or p.partial <= 0 or p.partial > 1 then
      error(fmt("%s: partial_rotary_factor is %s, expected a number in (0, 1]", where or "config", shown(p.partial)), 0)
    end
    local r = math.floor(D * p.partial)
    if r % 2 ~= 0 or r == 0 then
      error(fmt("%s: partial_rotary_factor %s rotates %d of the %d head dims, expected an even, non-zero count",
        where or "config", tostring(p.partial), r, D), 0)
    end
    if R and R ~= r then error(fmt("%s: the rotary embeddings (%s) rotate different dim counts", where or "config", name), 0) end
    R = r
  end
  a.rotary_dim = R
  if R < D and not (a.rope_interleave or a.partial_halves) then
    error(fmt("%s: partial_rotary_factor (%d of %d head dims rotated) is not supported for model_type %s",
      where or "config", R, D, a.name), 0)
  end
  if a.rope_interleave or R < D then
    -- the rotated pairs: (2j, 2j + 1) interleaved, else (j, j + R/2) of the first R dims (GLM-4.5's partial halves)
    local perm, h, r2, pass = {}, D / 2, R / 2, (D - R) / 2
    for j = 0, r2 - 1 do
      if a.rope_interleave then perm[j + 1], perm[h + j + 1] = 2 * j, 2 * j + 1
      else perm[j + 1], perm[h + j + 1] = j, r2 + j end
    end
    for j = 0, pass - 1 do perm[r2 + j + 1], perm[h + r2 + j + 1] = R + j, R + pass + j end
    a.rope_perm = lfl.tensor(perm, "i64")
  end
end

-- Mixtral's names of the sparse block and its experts' projections, unless the
-- family's resolve set others (Qwen-MoE's)
local MIXTRAL_NAMES = {block = "block_sparse_moe.", gate = "w1", up = "w3", down = "w2"}
function M.moe_names(a) return a.moe_names or MIXTRAL_NAMES end
-- whether layer l (1-based) has the sparse block (every layer unless the
-- family's resolve made arch.moe_layer)
function M.sparse_layer(a, l) return a.moe and (not a.moe_layer or a.moe_layer[l] == true) end

-- zeros of the given sizes with ref's dtype, on ref's device (KV caches, padding)
local function zeros_as(ref, ...)
  local z = lfl.zeros(...)
  if z:dtype() ~= ref:dtype() then z = z:to(ref:dtype()) end
  local d = ref:device()
  return d == "cpu" and z or z:to(d)
end

local function P(m, name)
  local t = m.params[name]
  if not t then error(fmt("model: parameter '%s' is missing (architecture %s)", name, m.arch.name), 0) end
  return t
end

-- The names of layer l's (1-based) parameters start with this: a layer that
-- mixture-of-depths routes (lfl.model.mod) holds its block under "block.", as
-- the MoD package's MoD module does
function M.layer_prefix(m, l)
  if m.mod and m.mod.layers[l] then return "model.layers." .. (l - 1) .. ".block." end
  return "model.layers." .. (l - 1) .. "."
end

-- Checks that every parameter the forward needs is there with the right shape;
-- errors start with `where` (the checkpoint's config path) when given.
function M.check(m, where)
  local a = m.arch
  local pre = where and where .. ": " or ""
  local function want(name, shape)
    local t = m.params[name]
    if not t then error(fmt("%smodel: parameter '%s' is missing (architecture %s)", pre, name, a.name), 0) end
    local s = t:size()
    local ok = #s == #shape
    for i = 1, #shape do ok = ok and s[i] == shape[i] end
    if not ok then
      error(fmt("%smodel: parameter '%s' has shape [%s], expected [%s]", pre, name, table.concat(s, ","),
        table.concat(shape, ",")), 0)
    end
  end
  local H, D, Hq, Hk, F = a.hidden, a.head_dim, a.heads, a.kv_heads, a.dense_F or m.config.intermediate_size
  want("model.embed_tokens.weight", {a.vocab, H})
  for l = 0, a.layers - 1 do
    local p = M.layer_prefix(m, l + 1)
    if m.mod and m.mod.layers[l + 1] then
      local r = "model.layers." .. l .. ".router.weight_predictor."
      want(r .. "weight", {1, H}); want(r .. "bias", {1})
    end
    if a.fused_qkv then
      want(p .. "self_attn.qkv_proj.weight", {(Hq + 2 * Hk) * D, H})
    elseif a.mla then
      local s = p .. "self_attn."
      if a.q_rank then
        want(s .. "q_a_proj.weight", {a.q_rank, H}); want(s .. "q_a_layernorm.weight", {a.q_rank})
        want(s .. "q_b_proj.weight", {Hq * D, a.q_rank})
      else
        want(s .. "q_proj.weight", {Hq * D, H})
      end
      want(s .. "kv_a_proj_with_mqa.weight", {a.kv_rank + a.rope_dim, H})
      want(s .. "kv_a_layernorm.weight", {a.kv_rank})
      want(s .. "kv_b_proj.weight", {Hq * (a.nope_dim + a.v_dim), a.kv_rank})
    else
      want(p .. "self_attn.q_proj.weight", {Hq * D, H})
      want(p .. "self_attn.k_proj.weight", {Hk * D, H})
      want(p .. "self_attn.v_proj.weight", {Hk * D, H})
    end
    want(p .. "self_attn.o_proj.weight", {H, Hq * (a.mla and a.v_dim or D)})
    if a.sinks then want(p .. "self_attn.sinks", {Hq}) end
    if a.qk_norm_full then
      want(p .. "self_attn.q_norm.weight", {Hq * D})
      want(p .. "self_attn.k_norm.weight", {Hk * D})
    elseif a.qk_norm == "layer_heads" then
      want(p .. "self_attn.q_norm.weight", {Hq, D})
      want(p .. "self_attn.k_norm.weight", {Hk, D})
    elseif a.qk_norm then
      want(p .. "self_attn.q_norm.weight", {D})
      want(p .. "self_attn.k_norm.weight", {D})
    end
    if M.sparse_layer(a, l + 1) then
      local nm, Fe = M.moe_names(a), a.moe_F or F
      local q = p .. nm.block
      want(q .. "gate.weight", {a.experts, H})
      for e = 0, a.experts - 1 do
        local x = q .. "experts." .. e .. "."
        want(x .. nm.gate .. ".weight", {Fe, H}); want(x .. nm.up .. ".weight", {Fe, H})
        want(x .. nm.down .. ".weight", {H, Fe})
      end
      if a.router == "sigmoid_group" then want(q .. "gate.e_score_correction_bias", {a.experts}) end
      if a.expert_bias then
        want(q .. "gate.bias", {a.experts})
        for e = 0, a.experts - 1 do
          local x = q .. "experts." .. e .. "."
          want(x .. nm.gate .. ".bias", {Fe}); want(x .. nm.up .. ".bias", {Fe}); want(x .. nm.down .. ".bias", {H})
        end
      end
      if a.shared_F then
        local x = q .. (a.shared_name or "shared_expert.")
        want(x .. "gate_proj.weight", {a.shared_F, H}); want(x .. "up_proj.weight", {a.shared_F, H})
        want(x .. "down_proj.weight", {H, a.shared_F})
        if not a.shared_name then want(q .. "shared_expert_gate.weight", {1, H}) end
      end
    elseif a.mlp == "plain" then
      want(p .. "mlp.c_fc.weight", {F, H}); want(p .. "mlp.c_proj.weight", {H, F})
    else
      if a.fused_gate_up then want(p .. "mlp.gate_up_proj.weight", {2 * F, H})
      else want(p .. "mlp.gate_proj.weight", {F, H}); want(p .. "mlp.up_proj.weight", {F, H}) end
      want(p .. "mlp.down_proj.weight", {H, F})
    end
    local nn = a.norm_names
    if a.norm ~= "layer_np" then
      if a.pre_norms then want(p .. "input_layernorm.weight", {H}) end
      if a.post_norms then want(p .. nn.post_attn .. ".weight", {H})
      elseif a.pre_norms and not a.parallel then want(p .. "post_attention_layernorm.weight", {H}) end
      if a.post_norms then want(p .. nn.post_ffn .. ".weight", {H}) end
      if a.pre_norms and a.post_norms then want(p .. nn.pre_ffn .. ".weight", {H}) end
    end
  end
  if a.norm ~= "layer_np" then want("model.norm.weight", {H}) end
  if not a.tied then want("lm_head.weight", {a.vocab, H}) end
end

-- the norm whose parameters are base .. ".weight" (and ".bias" for LayerNorm)
local function norm(m, x, base)
  local a = m.arch
  if a.norm == "layer_np" then return lfl.layernorm(x, nil, nil, a.eps) end
  local w = P(m, base .. ".weight")
  if a.norm == "layer" then return lfl.layernorm(x, w, m.params[base .. ".bias"], a.eps) end
  if a.norm_plus_one then
    -- norm_plus_one: x * (1 + w); the (1 + w) is part of the graph so w gets its gradient
    w = w + 1
  end
  return lfl.rmsnorm(x, w, a.eps)
end

local function opt(m, name) return m.params[name] end

-- per-head q/k norm of x [B, T, heads, D]: RMSNorm over D (x * (1 + w) with
-- norm_plus_one), or Cohere's bias-free LayerNorm with one weight row per head
local function head_norm(m, x, base)
  local a = m.arch
  local w = P(m, base .. ".weight")
  if a.qk_norm == "layer_heads" then
    -- a 2-D weight stays bf16 in a bf16 model (lfl.model.param_dtype); the product is f32
    if w:dtype() ~= x:dtype() then w = w:to(x:dtype()) end
    return lfl.layernorm(x, nil, nil, a.eps) * w
  end
  if a.norm_plus_one then w = w + 1 end
  return lfl.rmsnorm(x, w, a.eps)
end

-- torch's clamp(x, -c, c), gradient passing where -c <= x <= c
local function clip(x, c)
  return lfl.where(x:gt(c), c, lfl.where(x:lt(-c), -c, x))
end

local peft, oft -- loaded on first use (adapters are optional)

-- A checkpointed layer's GEMMs run once (see M.hidden): in the region's first
-- pass memo keeps each fused LoRA linear's output and its side product x A^T;
-- its recompute hands them back to lfl.lora_linear, which records the backward
-- node without computing anything. A `last` output (the layer's final
-- projection, whose value backward never reads) is not kept: a zero tensor
-- stands in for it.
local function memo_linear(m, x, base, w, b, memo, last)
  local i = memo.i + 1
  memo.i = i
  local ad = m.lora
  local A, B = ad:get(base)
  if not memo.replay then
    if not peft.fusable(m, base, x) then return peft.linear(m, base, x, w, b) end
    local y, side = lfl.lora_linear(x, w, b, A, B, ad.scaling, {keep_side = true})
    memo[i] = {not last and y, side}
    return y
  end
  local kept = memo[i]
  memo[i] = nil
  if kept == nil then return peft.linear(m, base, x, w, b) end
  local y = kept[1]
  if not y then
    local sz = x:size()
    sz[#sz] = w:size(1)
    y = zeros_as(x, sz)
  end
  return lfl.lora_linear(x, w, b, A, B, ad.scaling, {given = y, side = kept[2]})
end

-- An 8-bit (LLM.int8) base in eval mode (m.int8_eval = llm_int8_threshold, set
-- by the trainer's evaluation as transformers' model.eval() switches
-- Linear8bitLt): bitsandbytes' MatMul8bitLt, int8 activations with the outlier
-- columns in f32; a LoRA adapter's update is added as PEFT adds it (an OFT
-- adapter's rotated input goes through the same matmul: lfl.train.oft.linear)
local function int8_eval_linear(m, x, base, w, b)
  local xf = x:dtype() == "f32" and x or x:float()
  local y = lfl.int8_linear_lt(xf, w, b and b:float(), m.int8_eval)
  if xf ~= x then y = y:to(x:dtype()) end
  return peft.apply(m, base, x, y, w, b)
end

local function linear(m, x, base, memo, last)
  -- GPTQ's calibration (lfl.model.gptq_export) reads each linear's input here
  if m.linear_hook then m.linear_hook(base, x) end
  local w, b = P(m, base .. ".weight"), opt(m, base .. ".bias")
  peft = peft or require("lfl.train.peft")
  if m.oft ~= nil then -- an OFT adapter (lfl.train.oft) rotates the input of the linears it targets
    oft = oft or require("lfl.train.oft")
    if oft.applies(m, base) then return oft.linear(m, base, x, w, b) end
  end
  if m.int8_eval and w:dtype() == "int8" then return int8_eval_linear(m, x, base, w, b) end
  if peft.applies(m, base) then
    if memo then return memo_linear(m, x, base, w, b, memo, last) end
    return peft.linear(m, base, x, w, b)
  end
  return lfl.linear(x, w, b)
end

-- gate/up projections and the gated activation (input of down_proj)
local function gated_act(m, h, p, memo, mlp)
  local a = m.arch
  local gate, up
  if mlp then -- a shared expert's own gate/up (mlp: its name prefix)
    gate, up = linear(m, h, mlp .. "gate_proj", memo), linear(m, h, mlp .. "up_proj", memo)
  elseif a.fused_gate_up then
    local gu = linear(m, h, p .. "mlp.gate_up_proj", memo)
    local F = gu:size(3) / 2
    gate, up = gu:narrow(3, 1, F), gu:narrow(3, F + 1, F)
  else
    gate = linear(m, h, p .. "mlp.gate_proj", memo)
    up = linear(m, h, p .. "mlp.up_proj", memo)
  end
  if a.act == "silu" then return lfl.swiglu(gate, up) end
  return lfl.geglu(gate, up, a.act == "gelu_tanh")
end

-- Sparse mixture of experts (Mixtral): the router's softmax over experts,
-- each token's top_k experts (their probabilities renormalised to sum to 1),
-- each expert's gated MLP on its tokens only, weighted and summed back into
-- the tokens' rows. The choice itself has no gradient; the weights do (through
-- the softmax into the router). With `stats`, also returns the router
-- probabilities summed over the tokens [E] (in the graph) and each expert's
-- count of choices, for the load-balancing loss.
-- DeepSeek's choice per token from sc [N, E] (V3: sigmoid scores + correction
-- bias; V2: softmax probabilities): the n_group groups of E / n_group experts
-- scored by their two largest (V2's group_score "max": their largest), the
-- topk_group best groups kept, then the top_k experts among those. -> [N, K] i64
local function group_topk(a, sc, N)
  local E, G, TG, K = a.experts, a.n_group, a.topk_group, a.top_k
  local per, ninf = E / G, -math.huge
  local d = sc:contiguous():reshape(N * E):double()
  local out = {}
  for n = 0, N - 1 do
    local base = n * E
    local gs, keep, taken = {}, {}, {}
    for g = 0, G - 1 do
      local b1, b2 = ninf, ninf
      for j = 1, per do
        local v = d[base + g * per + j]
        if v > b1 then b1, b2 = v, b1 elseif v > b2 then b2 = v end
      end
      gs[g + 1] = a.group_score == "max" and b1 or b1 + b2
    end
    for _ = 1, TG do
      local best, bi = ninf, nil
      for g = 1, G do if not keep[g] and (bi == nil or gs[g] > best) then best, bi = gs[g], g end end
      keep[bi] = true
    end
    for _ = 1, K do
      local best, bi = ninf, nil
      for e = 0, E - 1 do
        local v = d[base + e + 1]
        if keep[math.floor(e / per) + 1] and not taken[e] and (bi == nil or v > best) then best, bi = v, e end
      end
      taken[bi] = true
      out[#out + 1] = bi
    end
  end
  return lfl.tensor(out, "i64"):view(N, K)
end

-- the K largest entries of each row of scores [N, E] (no gradient): [N, K] i64
local function topk_ids(scores, K)
  return lfl.no_grad(function()
    local sz = scores:size()
    local N, E = sz[1], sz[2]
    local masked, cols = scores:detach(), {}
    local ids = lfl.arange(E, "i64"):view(1, E)
    for k = 1, K do
      local ik = masked:argmax(2):view(N, 1)
      cols[k] = ik
      if k < K then masked = lfl.where(ids:eq(ik), -math.huge, masked) end
    end
    return lfl.cat(cols, 2)
  end)
end

-- GPT-OSS's experts' activation: the gate clamped above at limit, up to
-- [-limit, limit] (torch's clamp: the gradient passes at the bounds), then
-- (up + 1) * gate * sigmoid(alpha * gate)
local function clamped_swiglu(g, u, c)
  g = lfl.where(g:gt(c.limit), c.limit, g)
  u = clip(u, c.limit)
  return (u + 1) * (g * (g * c.alpha):sigmoid())
end

local function moe(m, h, p, memo, stats)
  local a = m.arch
  local sz = h:size()
  local N, H = sz[1] * sz[2], sz[3]
  local E, K = a.experts, a.top_k
  local nm = M.moe_names(a)
  local blk = p .. nm.block
  local x = h:reshape(N, H)
  local chosen, w, probs
  if a.router == "sigmoid_group" then
    -- DeepSeek-V3: sigmoid scores; the choice adds e_score_correction_bias and
    -- keeps the topk_group groups with the largest top-2 sums; the weights are
    -- the chosen scores without the bias, renormalised, times routed_scale
    local scores = linear(m, x, blk .. "gate", memo):sigmoid()
    chosen = lfl.no_grad(function()
      return group_topk(a, scores:detach() + P(m, blk .. "gate.e_score_correction_bias"):view(1, E), N)
    end)
    w = lfl.gather(scores, 2, chosen)
    if a.norm_topk ~= false then w = w / (w:sum({2}, true) + 1e-20) end
    w = (w * a.routed_scale):reshape(N * K)
  elseif a.router == "gpt_oss" then
    -- GPT-OSS: the top-k router logits (with the router's bias), softmaxed over those k
    local logits = linear(m, x, blk .. "gate", memo)
    chosen = topk_ids(logits, K)
    w = lfl.gather(logits, 2, chosen):softmax(2):reshape(N * K)
    if stats then probs = logits:softmax(2) end -- the load-balancing loss's, over every expert
  elseif a.router == "llama4" then
    -- Llama 4: the top-k router logits; sigmoid(logit) scales the expert's input (below)
    local logits = linear(m, x, blk .. "gate", memo)
    chosen = topk_ids(logits, K)
    w = lfl.gather(logits, 2, chosen):sigmoid():reshape(N * K)
  else
    probs = linear(m, x, blk .. "gate", memo):softmax(2)
    chosen = a.group_score and lfl.no_grad(function() return group_topk(a, probs:detach(), N) end)
    chosen = chosen or topk_ids(probs, K)
    w = lfl.gather(probs, 2, chosen)
    if a.norm_topk ~= false then w = w / w:sum({2}, true) end
    if a.routed_scale then w = w * a.routed_scale end -- DeepSeek-V2's routed_scaling_factor
    w = w:reshape(N * K)
  end
  -- each expert's tokens and the flat positions of their weights
  local tokens, slots = {}, {}
  for e = 1, E do tokens[e], slots[e] = {}, {} end
  local cd = chosen:reshape(N * K):double()
  for j = 1, N * K do
    local e = cd[j] + 1
    local n = tokens[e]
    n[#n + 1] = math.floor((j - 1) / K)
    slots[e][#n] = j - 1
  end
  -- the experts' weighted outputs, then one scatter-add into the tokens' rows
  local counts, ys, rows = {}, {}, {}
  for e = 1, E do
    local ne = #tokens[e]
    counts[e] = ne
    if ne > 0 then
      local q = blk .. "experts." .. (e - 1) .. "."
      local sel = lfl.tensor(tokens[e], "i64")
      local xe = x:index_select(1, sel)
      local we = w:index_select(1, lfl.tensor(slots[e], "i64")):view(ne, 1)
      if a.router == "llama4" then xe = xe * we end -- Llama 4 scales the expert's input, not its output
      local g, u = linear(m, xe, q .. nm.gate, memo), linear(m, xe, q .. nm.up, memo)
      local act
      if a.swiglu_clamp then act = clamped_swiglu(g, u, a.swiglu_clamp)
      else act = a.act == "silu" and lfl.swiglu(g, u) or lfl.geglu(g, u, a.act == "gelu_tanh") end
      local ye = linear(m, act, q .. nm.down, memo)
      ys[#ys + 1] = a.router == "llama4" and ye or ye * we
      rows[#rows + 1] = sel
    end
  end
  local y, r = lfl.cat(ys, 1), lfl.cat(rows, 1)
  local out = lfl.scatter_add(zeros_as(y, N, H), 1, r:view(N * K, 1):expand(N * K, H):contiguous(), y)
  if a.shared_F then
    -- the shared expert on every token: Qwen2-MoE's scaled by its sigmoid
    -- gate, DeepSeek's (shared_experts.) as it is
    local sn = blk .. (a.shared_name or "shared_expert.")
    local se = linear(m, gated_act(m, x, p, memo, sn), sn .. "down_proj", memo)
    if a.shared_name then out = out + se
    else out = out + linear(m, x, blk .. "shared_expert_gate", memo):sigmoid() * se end
  end
  out = out:reshape(sz[1], sz[2], H)
  if stats and probs then return out, probs:sum({1}), counts end
  return out
end

-- Llama 4's weightless RMSNorm over each head's dims (its "L2 norm" of q and k)
local ones_cache = {}
local function l2_heads(x, eps)
  local D = x:size(4)
  local w = ones_cache[D]
  if not w then w = lfl.ones(D); ones_cache[D] = w end
  return lfl.rmsnorm(x, w:to(x:dtype() == "f64" and "f64" or "f32"), eps)
end

-- DeepSeek's multi-head latent attention: q from q_proj, or q_a_proj ->
-- RMSNorm -> q_b_proj; one latent kv_a_proj_with_mqa = [kv latent | rotary key],
-- the latent RMSNormed and expanded by kv_b_proj into each head's
-- [k_nope | v]; the rotary key is shared by the heads. Rotary only on the last
-- rope_dim dims of q and k. v (v_dim wide) is zero-padded to the q/k head dim
-- so the attention kernel sees one D; the layer drops the padded output
-- columns. Returns q, k, v [B, H, T, D], rotated. The latent norms use
-- transformers' own eps (1e-6), not rms_norm_eps.
local function mla_qkv(m, h, p, B, T, cos, sin, memo)
  local a = m.arch
  local Hq, D, N, R, Vd = a.heads, a.head_dim, a.nope_dim, a.rope_dim, a.v_dim
  local s = p .. "self_attn."
  local q
  if a.q_rank then
    q = linear(m, h, s .. "q_a_proj", memo)
    q = linear(m, lfl.rmsnorm(q, P(m, s .. "q_a_layernorm.weight"), 1e-6), s .. "q_b_proj", memo)
  else
    q = linear(m, h, s .. "q_proj", memo)
  end
  q = q:reshape(B, T, Hq, D)
  local ckv = linear(m, h, s .. "kv_a_proj_with_mqa", memo)
  local lat = lfl.rmsnorm(ckv:narrow(3, 1, a.kv_rank), P(m, s .. "kv_a_layernorm.weight"), 1e-6)
  local kr = ckv:narrow(3, a.kv_rank + 1, R):reshape(B, T, 1, R)
  local kv = linear(m, lat, s .. "kv_b_proj", memo):reshape(B, T, Hq, N + Vd)
  local qr = q:narrow(4, N + 1, R)
  if a.rope_perm then qr, kr = qr:index_select(4, a.rope_perm), kr:index_select(4, a.rope_perm) end
  qr = lfl.rope(qr:transpose(2, 3), cos, sin)
  kr = lfl.rope(kr:transpose(2, 3), cos, sin):expand(B, Hq, T, R)
  q = lfl.cat({q:narrow(4, 1, N):transpose(2, 3), qr}, 4)
  local k = lfl.cat({kv:narrow(4, 1, N):transpose(2, 3), kr}, 4)
  local v = kv:narrow(4, N + 1, Vd):transpose(2, 3)
  if Vd < D then v = lfl.cat({v, zeros_as(v, B, Hq, T, D - Vd)}, 4) end
  return q, k, v
end

-- One decoder layer: x [B, T, H] -> [B, T, H]. With a KV cache (generation),
-- this step's rotated keys and values are appended to the layer's cached ones
-- and the queries attend over all of them (the attention's offset S - T puts
-- them after the cached keys, so causal and window masks stay right).
local function layer(m, l, x, cos, sin, segments, cache, memo, stats, qcs)
  local a = m.arch
  local p = M.layer_prefix(m, l)
  local sz = x:size()
  local B, T = sz[1], sz[2]
  local D, Hq, Hk = a.head_dim, a.heads, a.kv_heads
  local h = a.pre_norms and norm(m, x, p .. "input_layernorm") or x
  local q, k, v
  if a.mla then
    q, k, v = mla_qkv(m, h, p, B, T, cos, sin, memo)
  else
    if a.fused_qkv then
      local qkv = linear(m, h, p .. "self_attn.qkv_proj", memo)
      q = qkv:narrow(3, 1, Hq * D)
      k = qkv:narrow(3, Hq * D + 1, Hk * D)
      v = qkv:narrow(3, (Hq + Hk) * D + 1, Hk * D)
    else
      q = linear(m, h, p .. "self_attn.q_proj", memo)
      k = linear(m, h, p .. "self_attn.k_proj", memo)
      v = linear(m, h, p .. "self_attn.v_proj", memo)
    end
    if a.clip_qkv then q, k, v = clip(q, a.clip_qkv), clip(k, a.clip_qkv), clip(v, a.clip_qkv) end
    if a.qk_norm_full then
      -- OLMo2: RMSNorm over the whole q / k projection, before the split into heads
      q = lfl.rmsnorm(q, P(m, p .. "self_attn.q_norm.weight"), a.eps)
      k = lfl.rmsnorm(k, P(m, p .. "self_attn.k_norm.weight"), a.eps)
    end
    q = q:reshape(B, T, Hq, D)
    k = k:reshape(B, T, Hk, D)
    v = v:reshape(B, T, Hk, D)
    if a.qk_norm then
      q = head_norm(m, q, p .. "self_attn.q_norm")
      k = head_norm(m, k, p .. "self_attn.k_norm")
    end
    if a.rope_perm then q, k = q:index_select(4, a.rope_perm), k:index_select(4, a.rope_perm) end
    if a.nope and a.nope[l] then
      -- Llama 4's layers without rotary: temperature tuning scales the query (qcs.temp [B, 1, T, 1])
      q, k = q:transpose(2, 3), k:transpose(2, 3)
      if qcs and qcs.temp then q = q * qcs.temp end
    else
      -- qcs: the query's own tables (Ministral 3's position-dependent query scale folded in)
      q = lfl.rope(q:transpose(2, 3), qcs and qcs[1] or cos, qcs and qcs[2] or sin)
      k = lfl.rope(k:transpose(2, 3), cos, sin)
      if a.qk_l2 then q, k = l2_heads(q, a.eps), l2_heads(k, a.eps) end
    end
    v = v:transpose(2, 3)
  end
  if cache then
    -- per-layer buffers [B, Hk, cap, D] grown by doubling; this step's k/v
    -- are copied in at the cache length and the filled part is used
    local past, need = cache.len, cache.len + T
    local c = cache.layers[l]
    if not c or c.cap < need then
      local cap = math.max(need, 2 * (c and c.cap or 0), 16)
      local nk, nv = zeros_as(k, B, Hk, cap, D), zeros_as(v, B, Hk, cap, D)
      if c and past > 0 then
        nk:narrow(3, 1, past):copy_(c.k:narrow(3, 1, past))
        nv:narrow(3, 1, past):copy_(c.v:narrow(3, 1, past))
      end
      c = {k = nk, v = nv, cap = cap}
      cache.layers[l] = c
    end
    c.k:narrow(3, past + 1, T):copy_(k)
    c.v:narrow(3, past + 1, T):copy_(v)
    k, v = c.k:narrow(3, 1, need), c.v:narrow(3, 1, need)
  end
  local o
  do -- decoding (T == 1) takes the attention kernel's one-query path; kv_start hides a batch's left padding
    local ao = {causal = true, scale = a.scale, window = a.window[l], softcap = a.attn_softcap, segments = segments,
                kv_start = cache and cache.kv_start}
    if a.sinks then -- GPT-OSS's per-head sink logits
      local sk = P(m, p .. "self_attn.sinks")
      ao.sinks = sk:dtype() == q:dtype() and sk or sk:to(q:dtype())
    end
    if memo then -- a checkpoint's replay reuses the first pass's output (see memo_linear)
      if memo.replay then ao.given, memo.att = memo.att, nil else ao.keep_lse = true end
    end
    local lse
    o, lse = lfl.attention(q, k, v, ao)
    if memo and not memo.replay then memo.att = {o, lse} end
  end
  if a.mla and a.v_dim < D then o = o:narrow(4, 1, a.v_dim):transpose(2, 3):contiguous():reshape(B, T, Hq * a.v_dim)
  else o = o:transpose(2, 3):reshape(B, T, Hq * D) end
  o = linear(m, o, p .. "self_attn.o_proj", memo)
  local nn = a.norm_names
  if a.post_norms then o = norm(m, o, p .. nn.post_attn) end
  if a.residual_mult then o = o * a.residual_mult end
  if not a.parallel then
    x = x + o
    if not a.pre_norms then h = x
    else h = norm(m, x, p .. (a.post_norms and nn.pre_ffn or "post_attention_layernorm")) end
  end
  local y, probsum, counts
  if M.sparse_layer(a, l) then
    y, probsum, counts = moe(m, h, p, memo, stats)
  elseif a.mlp == "plain" then
    y = linear(m, h, p .. "mlp.c_fc", memo)
    if a.act == "gelu_tanh" then y = y:gelu_tanh() elseif a.act == "gelu" then y = y:gelu() else y = y:silu() end
    y = linear(m, y, p .. "mlp.c_proj", memo, not a.post_norms)
  else
    y = linear(m, gated_act(m, h, p, memo), p .. "mlp.down_proj", memo, not a.post_norms)
  end
  if a.post_norms then y = norm(m, y, p .. nn.post_ffn) end
  if a.residual_mult then y = y * a.residual_mult end
  if a.parallel then return x + o + y end
  return x + y, probsum, counts
end

-- A layer mixture-of-depths routes (lfl.model.mod; the MoD package 1.2.0's
-- MoD.forward): the router (a [1, H] linear with bias, in f32) scores every
-- token; in each example (a row, or a segment of a packed row, as the MoD
-- package sees one example per row) of s tokens, k = max(1, floor(capacity *
-- s)) and the tokens whose score is above the k-th largest (at or above it
-- when k = 1) go through the block, causally among themselves at their own
-- positions; their output (the block's, residual included) is multiplied by
-- their score; the other tokens pass unchanged. The choice has no gradient;
-- the scores do, through the product. The returned selection (1-based flat
-- indices) is for tests.
local function mod_layer(m, l, x, cos, sin, segments, capacity, qcs)
  local sz = x:size()
  local B, T, H = sz[1], sz[2], sz[3]
  local N = B * T
  local r = "model.layers." .. (l - 1) .. ".router.weight_predictor."
  local xf = x:reshape(N, H)
  local w = lfl.linear(xf:dtype() == "f32" and xf or xf:to("f32"), P(m, r .. "weight"), P(m, r .. "bias")):view(N)
  if w:dtype() ~= x:dtype() then w = w:to(x:dtype()) end
  local sel, seg_of = {}, {}
  local nseg = 0
  lfl.no_grad(function()
    local wd = w:detach():double()
    local sd = segments and segments:reshape(N):double()
    local function route(first, last) -- one example: flat indices first..last (1-based)
      local s = last - first + 1
      local k = math.max(1, math.floor(capacity * s))
      local vals = {}
      for j = first, last do vals[#vals + 1] = wd[j] end
      table.sort(vals, function(u, v) return u > v end)
      local thr = vals[k]
      nseg = nseg + 1
      for j = first, last do
        local v = wd[j]
        if v > thr or (k == 1 and v >= thr) then sel[#sel + 1], seg_of[#sel + 1] = j, nseg end
      end
    end
    for b = 0, B - 1 do
      local first = b * T + 1
      for j = b * T + 2, b * T + T + 1 do
        if j > b * T + T or (sd and sd[j] ~= sd[j - 1]) then route(first, j - 1); first = j end
      end
    end
  end)
  local n = #sel
  if n == 0 then return x, sel end
  local idx = {}
  for i = 1, n do idx[i] = sel[i] - 1 end
  local it = lfl.tensor(idx, "i64")
  local D = cos:size(3)
  local function rows(tab) return tab:reshape(N, D):index_select(1, it):view(1, n, D) end
  local segs = seg_of[n] ~= seg_of[1] and lfl.tensor({seg_of}, "i64") or nil
  local y = layer(m, l, xf:index_select(1, it):view(1, n, H), rows(cos), rows(sin), segs, nil, nil, nil,
    qcs and {rows(qcs[1]), rows(qcs[2])})
  y = y:view(n, H) * w:index_select(1, it):view(n, 1)
  local keep = {}
  for j = 1, N do keep[j] = 1 end
  for i = 1, n do keep[sel[i]] = 0 end
  local kt = lfl.tensor(keep):view(N, 1)
  if kt:dtype() ~= xf:dtype() then kt = kt:to(xf:dtype()) end
  local out = lfl.scatter_add(zeros_as(y, N, H), 1, it:view(n, 1):expand(n, H):contiguous(), y)
  return (xf * kt + out):reshape(B, T, H), sel
end

-- exposed for benchmarks and tests of a single block
M.mod_layer_for_test = function(m, l, x, cos, sin, segments, capacity, qcs)
  return mod_layer(m, l, x, cos, sin, segments, capacity, qcs)
end
M.layer_for_bench = function(m, l, x, cos, sin, segments) return layer(m, l, x, cos, sin, segments) end

-- Ministral 3's query scale 1 + beta * log(1 + floor(pos / original_max)) for
-- positions past original_max_position_embeddings (arch.q_pos_scale = {beta =,
-- omax =}), folded into the query's rotary tables: rope(q) * s = q * (cos * s)
-- + rotate(q) * (sin * s). nil while every position's scale is 1.
function M.query_tables(a, pos, cos, sin)
  local qs = a.q_pos_scale
  if not qs then return nil end
  local sz = pos:size()
  local B, T = sz[1], sz[2]
  local rows, any = {}, false
  for b = 1, B do
    local r = {}
    for t = 1, T do
      local f = math.floor(pos[{b, t}] / qs.omax)
      if f > 0 then any = true end
      r[t] = 1 + qs.beta * math.log(1 + f)
    end
    rows[b] = r
  end
  if not any then return nil end
  local s = lfl.tensor(rows):view(B, T, 1)
  return {cos * s, sin * s}
end

local function default_positions(B, T, start)
  local pos = lfl.arange(T, "i64")
  if start and start > 0 then pos = pos + start end
  pos = pos:view(1, T):expand(B, T):contiguous()
  return pos
end

-- each rope's cos / sin tables for positions pos over len positions (and the
-- query's own, M.query_tables)
-- The cos/sin rows of positions 0..n-1 of each rope, kept in a.rope_rows
-- (grown by doubling, up to ROPE_ROWS_MAX positions) and looked up by position
-- (lfl.embedding): a decoding step would otherwise rebuild its frequencies and
-- one row from Lua numbers, dozens of small ops a token. The same numbers:
-- each row is a function of its position alone. Dynamic scaling changes the
-- frequencies with the length, so it computes its rows each time, as do
-- positions the caller gave (given: not known to be below len).
local ROPE_ROWS_MAX = 16384
local function rope_rows(a, name, rc, pos, len, given)
  local D = a.rope_dim or a.head_dim
  -- given position ids (packing) may lie past len: computed as they are
  if given or len > ROPE_ROWS_MAX or rope.params(rc).type == "dynamic" then
    local inv, att = rope.inv_freq(rc, D, len)
    return rope.cos_sin(inv, att, pos, D)
  end
  a.rope_rows = a.rope_rows or {}
  local r = a.rope_rows[name]
  if not r or r.n < len or r.rc ~= rc then
    local n = math.min(ROPE_ROWS_MAX, math.max(len, 256, r and 2 * r.n or 0))
    local inv, att = rope.inv_freq(rc, D, n)
    local cos, sin = rope.cos_sin(inv, att, lfl.arange(n, "i64"):view(1, n), D)
    r = {n = n, rc = rc, cos = cos:view(n, D), sin = sin:view(n, D)}
    a.rope_rows[name] = r
  end
  return lfl.embedding(r.cos, pos), lfl.embedding(r.sin, pos)
end

local function rope_tables(a, pos, len, given)
  local tabs = {}
  for name, rc in pairs(a.ropes) do
    local cos, sin = rope_rows(a, name, rc, pos, len, given)
    tabs[name] = {cos, sin, q = M.query_tables(a, pos, cos, sin)}
  end
  if a.temp_tune then
    -- Llama 4's temperature tuning of the layers without rotary; rows of the same positions share it
    local sz = pos:size()
    local rows = {}
    for b = 1, sz[1] do
      local r = {}
      for t = 1, sz[2] do
        r[t] = math.log(1 + math.floor((pos[{b, t}] + 1) / a.temp_tune.floor)) * a.temp_tune.scale + 1
      end
      rows[b] = r
    end
    local temp = lfl.tensor(rows):view(sz[1], 1, sz[2], 1)
    for _, tb in pairs(tabs) do tb.q = tb.q or {}; tb.q.temp = temp end
  end
  return tabs
end

-- Layer by layer over ids [B, T] (GPTQ's calibration, lfl.model.gptq_export, as
-- optimum runs one block at a time): the first layer's input (the embeddings,
-- scaled as M.hidden scales them) and run(l, x) -> layer l's output for a
-- hidden state x of those positions (no cache, no padding).
function M.layerwise(m, ids)
  local a = m.arch
  local sz = ids:size()
  local B, T = sz[1], sz[2]
  local tabs = rope_tables(a, default_positions(B, T, 0), T)
  local x = lfl.embedding(P(m, "model.embed_tokens.weight"), ids)
  if a.embed_scale then x = x * lfl.tensor(sqrt(a.hidden)):_at(1) end
  if a.embed_mult then x = x * a.embed_mult end
  return x, function(l, h)
    local cs = tabs[a.rope_of[l] or "main"]
    return (layer(m, l, h, cs[1], cs[2], nil, nil, nil, nil, cs.q))
  end
end

-- Bytes that selective checkpointing keeps for a micro-batch of `tokens`
-- positions beyond what full checkpointing keeps: each adapted linear's output
-- but the layer's last projection (see memo_linear) and each one's rank-r side
-- product, and each adapted layer's attention output and log-sum-exps, at the
-- activations' 4 bytes (f32).
function M.selective_bytes(m, tokens)
  local a, floats, layers = m.arch, 0, {}
  for mod, e in pairs(m.adapters or {}) do
    local l = mod:match("^model%.layers%.(%d+)%.")
    if l then
      layers[l] = true
      local last = not a.post_norms and (mod:match("down_proj$") or mod:match("c_proj$"))
      floats = floats + e.A:size(1) + (last and 0 or e.B:size(1))
    end
  end
  for _ in pairs(layers) do floats = floats + a.heads * (a.head_dim + 1) end
  return 4 * floats * tokens
end

-- layers (1-based) holding a parameter or adapter that trains
function M.trainable_layers(m)
  local out = {}
  local names, params = m:named_parameters()
  for _, name in ipairs(names) do
    local l = name:match("^model%.layers%.(%d+)%.")
    if l and params[name]:get_requires_grad() then out[tonumber(l) + 1] = true end
  end
  for mod in pairs(m.adapters or {}) do
    local l = mod:match("^model%.layers%.(%d+)%.")
    if l then out[tonumber(l) + 1] = true end
  end
  if m.oft then -- an OFT adapter's rotations (lfl.train.oft)
    for _, mod in ipairs(m.oft.modules) do
      local l = mod:match("^model%.layers%.(%d+)%.")
      if l and m.oft.weights[mod]:get_requires_grad() then out[tonumber(l) + 1] = true end
    end
  end
  return out
end

-- A KV cache for generation: pass it as opts.cache to forward/hidden; each
-- call appends its keys/values per layer and advances len (positions start at
-- len). One cache holds one batch of rows; pad (a list, one number per row)
-- says how many of each row's first tokens are left padding: those keys are
-- never attended to and the row's positions start after them.
function M.new_cache(pad)
  local c = {layers = {}, len = 0}
  if pad then M.set_cache_pad(c, pad) end
  return c
end

function M.set_cache_pad(c, pad)
  local any = false
  for _, p in ipairs(pad) do any = any or p > 0 end
  c.pad = any and pad or nil
  c.kv_start = any and lfl.tensor(pad, "i64") or nil
end

-- Keeps the cache rows `rows` (1-based, in that order) and drops the leading
-- key columns that are padding in every kept row (finished rows of a batch
-- stop costing compute).
function M.cache_keep(c, rows)
  local pad, shift = {}, math.huge
  for i, r in ipairs(rows) do
    pad[i] = c.pad and c.pad[r] or 0
    shift = math.min(shift, pad[i])
  end
  if #rows == 0 then shift = 0 end
  local idx = {}
  for i, r in ipairs(rows) do idx[i] = r - 1; pad[i] = pad[i] - shift end
  local it = lfl.tensor(idx, "i64")
  local len = c.len - shift
  for l, e in pairs(c.layers) do
    local k = e.k:narrow(3, shift + 1, len):index_select(1, it)
    local v = e.v:narrow(3, shift + 1, len):index_select(1, it)
    local cap = math.max(len + 16, 16)
    local sz = k:size()
    local nk, nv = zeros_as(k, sz[1], sz[2], cap, sz[4]), zeros_as(v, sz[1], sz[2], cap, sz[4])
    if len > 0 then nk:narrow(3, 1, len):copy_(k); nv:narrow(3, 1, len):copy_(v) end
    c.layers[l] = {k = nk, v = nv, cap = cap}
  end
  c.len = len
  M.set_cache_pad(c, pad)
end

-- rows held by a cache that has seen a forward
local function cache_rows(c)
  local _, e = next(c.layers)
  return e and e.k:size(1) or 0
end
M.cache_rows = cache_rows

-- A new cache holding the rows of a, then those of b (continuous batching: a
-- newly prefilled request joins the running batch). Both must have seen a
-- forward of the same model. The shorter cache's rows get more left padding so
-- every row ends at the last column; a row's positions and masked keys stay as
-- they were, so its next logits do not change. a may be nil (then b itself).
function M.cache_join(a, b)
  if not a or cache_rows(a) == 0 then return b end
  if cache_rows(b) == 0 then return a end
  local Ba, Bb = cache_rows(a), cache_rows(b)
  local len = math.max(a.len, b.len)
  local da, db = len - a.len, len - b.len
  local pad = {}
  for r = 1, Ba do pad[r] = (a.pad and a.pad[r] or 0) + da end
  for r = 1, Bb do pad[Ba + r] = (b.pad and b.pad[r] or 0) + db end
  local cap = len + 16
  local c = {layers = {}, len = len}
  for l, ea in pairs(a.layers) do
    local eb = b.layers[l]
    if not eb then error("decoder.cache_join: the caches come from different models (layer " .. l .. ")", 2) end
    local e = {cap = cap}
    for _, kv in ipairs({"k", "v"}) do
      local ta, tb = ea[kv], eb[kv]
      local sz = ta:size()
      local t = zeros_as(ta, Ba + Bb, sz[2], cap, sz[4])
      if a.len > 0 then t:narrow(1, 1, Ba):narrow(3, da + 1, a.len):copy_(ta:narrow(3, 1, a.len)) end
      if b.len > 0 then t:narrow(1, Ba + 1, Bb):narrow(3, db + 1, b.len):copy_(tb:narrow(3, 1, b.len)) end
      e[kv] = t
    end
    c.layers[l] = e
  end
  M.set_cache_pad(c, pad)
  return c
end

-- The device a model's weights are on ("cuda:0"), or nil on the CPU: the
-- embedding's, which m:to(device) moves with the rest.
function M.device_of(m)
  local d = P(m, "model.embed_tokens.weight"):device()
  return d ~= "cpu" and d or nil
end

-- t on device dev (a copy when it is elsewhere; the same tensor when there)
function M.on_device(t, dev)
  if t == nil or dev == nil or t:device() == dev then return t end
  return t:to(dev)
end

-- Hidden states after the final norm: [B, T, H]
function M.hidden(m, ids, opts)
  local a = m.arch
  local sz = ids:size()
  local B, T = sz[1], sz[2]
  local cache = opts.cache
  local past = cache and cache.len or 0
  local pos = opts.position_ids
  local pad = cache and cache.pad
  local minpad = 0
  if pad then
    -- left-padded rows: row b's position is its index minus its padding (0 on the padding)
    local p, mp = {}, math.huge
    for b = 1, B do
      local r = {}
      for t = 1, T do r[t] = math.max(0, past + t - 1 - pad[b]) end
      p[b] = r
      mp = math.min(mp, pad[b])
    end
    pos, minpad = pos or lfl.tensor(p, "i64"), mp
  end
  pos = pos or default_positions(B, T, past)
  -- a model on a device (m:to("cuda")): the position tables are built on the
  -- host from the positions (small), then the inputs and tables move to it
  local dev = M.device_of(m)
  if dev and pos:device() ~= "cpu" then pos = pos:to("cpu") end
  local tabs = rope_tables(a, pos, past + T - minpad, opts.position_ids ~= nil)
  if dev then
    ids = M.on_device(ids, dev)
    for _, tb in pairs(tabs) do
      tb[1], tb[2] = M.on_device(tb[1], dev), M.on_device(tb[2], dev)
      if tb.q then for k, v in pairs(tb.q) do tb.q[k] = M.on_device(v, dev) end end
    end
    if opts.segments and opts.segments:device() ~= dev then
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.segments = opts.segments:to(dev)
      opts = o
    end
    if cache and cache.kv_start and cache.kv_start:device() ~= dev then cache.kv_start = cache.kv_start:to(dev) end
  end
  if a.chunk and past + T > a.chunk then
    error(fmt("model: %d positions exceed attention_chunk_size %d; %s's chunked attention over longer sequences is "
      .. "not implemented (shorten cutoff_len or the generation)", past + T, a.chunk, a.name), 0)
  end
  -- ZeRO-3 (lfl.train.zero3): the partitioned parameters outside the layers are gathered
  -- now, each layer's around its forward (and its recompute in backward)
  local z3 = m.zero3
  if z3 then z3:begin_forward() end
  local x = lfl.embedding(P(m, "model.embed_tokens.weight"), ids)
  -- NEFTune (neftune_noise_alpha), as transformers' hook on the input
  -- embeddings' output: uniform noise in +-alpha / sqrt(T * hidden) while
  -- training (a forward that records gradients; transformers: module.training),
  -- T the row's length (a packed row here, a padded batch there)
  if m.neftune_alpha and lfl.is_grad_enabled() then
    local mag = m.neftune_alpha / sqrt(T * a.hidden)
    local noise = lfl.zeros(B, T, a.hidden):uniform_(-mag, mag)
    if dev then noise = noise:to(dev) end
    x = x + (x:dtype() == "f32" and noise or noise:to(x:dtype()))
  end
  if a.embed_scale then x = x * lfl.tensor(sqrt(a.hidden)):_at(1) end
  if a.embed_mult then x = x * a.embed_mult end
  -- ZeRO-3 regathers a layer's parameters in its recompute: checkpointing is on under it
  local ckpt = (opts.gradient_checkpointing or z3 ~= nil) and lfl.is_grad_enabled()
  local trainable = ckpt and M.trainable_layers(m)
  m.checkpointing = ckpt or nil
  -- "full" recomputes every layer's GEMMs in backward; otherwise ("selective",
  -- or "auto" as the trainer resolves it) the first pass keeps the fused LoRA
  -- linears' and the attention's outputs and backward recomputes the rest
  local replay = ckpt and m.adapters and opts.checkpoint_policy ~= "full"
  -- opts.router_stats (a table) collects the MoE layers' router statistics:
  -- probsum (summed over layers, in the graph), counts per expert, rows
  local rs = a.moe and opts.router_stats
  -- mixture-of-depths: a forward that records gradients is MoD's training
  -- mode, which counts its calls and sets the capacity from the count (the
  -- MoD package's training_step, 1000 then +999 per call as it writes it);
  -- other forwards take the capacity the last training forward left
  local mod, capacity = m.mod, nil
  if mod then
    if cache then
      error("mixture_of_depths: generation (a KV cache) with a mixture-of-depths model is not implemented in lfl", 0)
    end
    if lfl.is_grad_enabled() then
      mod.step = mod.step < 1000 and mod.step + 1 or mod.step + 999
      mod.capacity = 0.125 + (1 - 0.125) * (1 / mod.step)
    end
    capacity = mod.capacity
    if opts.mod_selection then opts.mod_selection.capacity = capacity end
  end
  for l = 1, a.layers do
    local cs = tabs[a.rope_of[l] or "main"]
    local cos, sin = cs[1], cs[2]
    local probsum, counts
    if mod and mod.layers[l] then
      local segs, chosen = opts.segments, nil
      if ckpt and (trainable[l] or x:get_requires_grad()) then
        x = lfl.checkpoint_trainable(function(h) return (mod_layer(m, l, h, cos, sin, segs, capacity, cs.q)) end, x)
      else
        x, chosen = mod_layer(m, l, x, cos, sin, segs, capacity, cs.q)
        if opts.mod_selection then opts.mod_selection[l] = chosen end
      end
    elseif ckpt and (trainable[l] or x:get_requires_grad() or (z3 and z3:has(l))) then
      -- recorded even when x needs no grad: the layer's own weights do; the
      -- router's probabilities are a second output, so the auxiliary loss's
      -- gradient reaches the recomputed region
      local memo = replay and {}
      x, probsum, counts = lfl.checkpoint_trainable(function(h)
        if memo then memo.i, memo.replay, memo.ran = 0, memo.ran, true end
        if z3 then
          z3:enter(l)
          local y, ps, cn = layer(m, l, h, cos, sin, opts.segments, nil, memo, rs and true, cs.q)
          z3:leave(l)
          return y, ps, cn
        end
        return layer(m, l, h, cos, sin, opts.segments, nil, memo, rs and true, cs.q)
      end, x)
    else
      if z3 then z3:enter(l) end
      x, probsum, counts = layer(m, l, x, cos, sin, opts.segments, cache, nil, rs and true, cs.q)
      if z3 then z3:leave(l) end
    end
    if rs and probsum then -- a sparse layer (Qwen-MoE's dense ones have no router)
      rs.probsum = rs.probsum and rs.probsum + probsum or probsum
      rs.counts = rs.counts or {}
      for e, c in ipairs(counts) do rs.counts[e] = (rs.counts[e] or 0) + c end
      rs.rows = (rs.rows or 0) + B * T
    end
  end
  if cache then cache.len = past + T end
  if opts.last_only then x = x:narrow(2, T, 1) end
  return norm(m, x, "model.norm")
end

function M.lm_head(m)
  if m.arch.tied then return P(m, "model.embed_tokens.weight") end
  local w = P(m, "lm_head.weight")
  if m.arch.norm_head then
    -- Baichuan2's NormHead: F.normalize(w) (rows over max(||row||, 1e-12)), in
    -- the graph so training gets the gradient through the normalisation
    local ss = (w * w):sum({2}, true)
    w = w / lfl.where(ss:lt(1e-24), 1e-24, ss):sqrt()
  end
  return w
end

-- the hidden states the head multiplies: times the family's logit_scale
-- (Cohere's logit_scale, Granite's 1 / logits_scaling), which scales the
-- logits as linear(h, W) * s does
function M.head_input(m, h)
  local s = m.arch.logit_scale
  if s and s ~= 1 then return h * s end
  return h
end

-- the head weight forward multiplies: the GGUF blocks a model loaded with
-- gguf_blocks keeps of it (m.head_blocks) while its parameter is the one they
-- were dequantized into at load (not replaced by a trained copy or a resize),
-- else lm_head
function M.head_weight(m)
  local hb = m.head_blocks
  if hb and not m.arch.norm_head then
    local w = m.params[hb.name]
    if w and not w:get_requires_grad() and w:data_ptr() == hb.ptr then return hb.weight end
  end
  return M.lm_head(m)
end

function M.forward(m, ids, opts)
  local h = M.hidden(m, ids, opts)
  if opts.hidden then return h end
  local logits = lfl.linear(M.head_input(m, h), M.head_weight(m))
  local cap = m.arch.final_softcap
  if cap then logits = (logits * (1 / cap)):tanh() * cap end
  return logits
end

-- labels [B, T] (i64, -100 ignored) are the inputs' labels; the loss predicts
-- token t+1 from position t, as transformers shifts them.
function M.shift_labels(labels)
  local sz = labels:size()
  local B, T = sz[1], sz[2]
  local shifted = lfl.full({B, T}, -100, "i64")
  if T > 1 then shifted[{{}, {1, T - 1}}] = labels[{{}, {2, T}}] end
  return shifted
end

-- The load-balancing loss of a forward's router statistics (transformers'
-- load_balancing_loss_func without an attention mask): E * sum_e f_e * P_e,
-- f_e the share of top-k choices that went to expert e and P_e its mean
-- router probability, both over all layers' rows.
function M.router_aux_loss(m, rs)
  local E, R = m.arch.experts, rs.rows
  local f = lfl.tensor(rs.counts):to(rs.probsum:dtype())
  return (f * rs.probsum):sum() * (E / (R * R))
end

-- the LM loss plus, for a MoE model with arch.router_aux, router_aux_coef
-- times the load-balancing loss (transformers adds it when
-- output_router_logits is set; LlamaFactory sets it for training)
local lm_loss
function M.loss(m, ids, labels, opts)
  if not (m.arch.moe and m.arch.router_aux) then return lm_loss(m, ids, labels, opts) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.router_stats = {}
  local loss = lm_loss(m, ids, labels, o)
  return loss + M.router_aux_loss(m, o.router_stats) * m.arch.router_aux_coef
end

-- LlamaFactory's SFT loss variants (train/trainer_utils.py): the per-token
-- cross-entropy ce (0 on ignored rows) times a weight taken without gradient,
-- summed over the labelled tokens and divided by their count (its
-- num_items_in_batch over one micro-batch). kind "dft" (use_dft_loss): the
-- weight is the label's probability exp(-ce); kind "eaft" (use_eaft_loss):
-- (H / 3)^alpha, H the entropy of the softmax over the 20 largest logits;
-- kind "asft" (use_asft_loss): DFT + alpha * the mean over the labelled tokens
-- of KL(reference || policy) over the whole vocabulary, ref(W) giving the
-- reference's head input rows and head weight (tw.ref_rows).
-- hf/W: the head's input rows and weight (fused, no [N, V] logits), or
-- logits with W nil. No labelled token: 0, as LlamaFactory.
local EAFT_TOPK = 20
local weighted_ce
weighted_ce = function(hf, W, lab, tw, chunk)
  if type(tw) ~= "table" then error("lm_loss: token_weight must be a table {kind = ...}, got " .. type(tw), 0) end
  if tw.kind == "asft" then
    if not W then
      error("use_asft_loss: not implemented for a model with final_logit_softcapping (lfl takes the KL term inside "
        .. "the fused head, which the soft-capped logits do not use)", 0)
    end
    if not tw.ref_rows then error("lm_loss: token_weight asft needs ref_rows (the reference's head input)", 0) end
    local dft = weighted_ce(hf, W, lab, {kind = "dft"}, chunk)
    local n = lfl.nonzero(lab:ne(-100)):numel()
    if n == 0 then return dft end
    local hr, Wr = lfl.no_grad(tw.ref_rows)
    local kl = lfl.linear_kl_div(hf, W, hr, Wr, lab, {chunk = chunk})
    return dft + kl:sum() * ((tw.alpha or 0.1) / n)
  end
  local ce
  if W then ce = lfl.linear_cross_entropy(hf, W, lab, {reduction = "none", chunk = chunk})
  else ce = lfl.cross_entropy(hf, lab, {reduction = "none"}) end
  local n = lfl.nonzero(lab:ne(-100)):numel()
  if n == 0 then return ce:sum() * 0 end
  local wt = lfl.no_grad(function()
    if tw.kind == "dft" then return (-ce:detach()):exp() end
    if tw.kind ~= "eaft" then
      error("lm_loss: token_weight.kind must be \"dft\", \"eaft\" or \"asft\", got " .. tostring(tw.kind), 0)
    end
    if not W then
      error("use_eaft_loss: not implemented for a model with final_logit_softcapping (the top-20 entropy is taken "
        .. "inside the fused head, which that model's soft-capped logits do not use)", 0)
    end
    local V = W:size(1)
    if V < EAFT_TOPK then
      error(("use_eaft_loss: the vocabulary (%d) is smaller than EAFT's top-%d"):format(V, EAFT_TOPK), 0)
    end
    return (lfl.linear_topk_entropy(hf, W, {k = EAFT_TOPK, chunk = chunk}) * (1 / 3)):pow(tw.alpha or 1.0)
  end)
  return (ce * wt):sum() * (1 / n)
end

M.token_weighted_ce = weighted_ce

lm_loss = function(m, ids, labels, opts)
  local dev = M.device_of(m)
  if dev and not opts.shifted and labels:device() ~= "cpu" then labels = labels:to("cpu") end
  local shifted = opts.shifted and labels or M.shift_labels(labels)
  if dev then shifted = M.on_device(shifted, dev) end
  local tw = opts.token_weight
  if m.arch.final_softcap then
    local logits = M.forward(m, ids, opts)
    local V = logits:size(3)
    if tw then return weighted_ce(logits:reshape(-1, V), nil, shifted:reshape(-1), tw) end
    return lfl.cross_entropy(logits:reshape(-1, V), shifted:reshape(-1))
  end
  local h = M.head_input(m, M.hidden(m, ids, opts))
  local H = h:size(3)
  local hf, lab = h:reshape(-1, H), shifted:reshape(-1)
  -- rows without a label (SFT prompts, each example's last token) skip the
  -- head's two GEMMs: the mean over the labelled rows is the same
  local keep = lfl.nonzero(lab:ne(-100))
  local n = keep:numel()
  local sel = n > 0 and n < 0.9 * lab:numel()
  if sel then hf, lab = hf:index_select(1, keep), lab:index_select(1, keep) end
  if tw and tw.kind == "asft" and not tw.ref_rows then
    -- the reference's head input at the same rows: its forward over the same
    -- ids (a separate model, a frozen copy, or this one with the adapter off)
    local ref, o = tw.reference, {position_ids = opts.position_ids, segments = opts.segments}
    if not ref then error("use_asft_loss: no reference model", 0) end
    local function rows(rm)
      local hr = M.head_input(rm, M.hidden(rm, ids, o))
      hr = hr:reshape(-1, hr:size(3))
      if sel then hr = hr:index_select(1, keep) end
      return hr, M.lm_head(rm)
    end
    local t2 = {}
    for k, v in pairs(tw) do t2[k] = v end
    t2.ref_rows = function()
      if ref.kind == "adapter_off" then return m:with_adapter(false, rows, m) end
      return rows(ref.model)
    end
    tw = t2
  end
  if tw then return weighted_ce(hf, M.lm_head(m), lab, tw, opts.ce_chunk) end
  return lfl.linear_cross_entropy(hf, M.lm_head(m), lab, {chunk = opts.ce_chunk})
end

return M
