-- Weight layouts of remote-code families (trust_remote_code on the Hub) that
-- are a llama underneath: their tensors are renamed and their fused q/k/v
-- split into the llama layout at load (to_decoder), and packed back into the
-- family's own layout when a model is saved (from_decoder), so a saved folder
-- loads wherever the original did.
--   internlm2: model.tok_embeddings, attention.wqkv/wo, feed_forward.w1/w3/w2,
--              attention_norm/ffn_norm, output; wqkv rows are grouped per kv
--              head as [kv_heads, q_per_kv + 2, head_dim]: the group's queries,
--              then its key, then its value.
--   baichuan:  self_attn.W_pack = [q; k; v] (no GQA); the rest has llama names.
local lfl = lfl
local fmt = string.format

local M = {}

local INTERNLM2_LAYER = {
  ["attention.wo"] = "self_attn.o_proj", ["feed_forward.w1"] = "mlp.gate_proj",
  ["feed_forward.w3"] = "mlp.up_proj", ["feed_forward.w2"] = "mlp.down_proj",
  ["attention_norm"] = "input_layernorm", ["ffn_norm"] = "post_attention_layernorm",
}
local INTERNLM2_TOP = {
  ["model.tok_embeddings.weight"] = "model.embed_tokens.weight", ["output.weight"] = "lm_head.weight",
  ["model.norm.weight"] = "model.norm.weight",
}

-- true when cfg's family keeps its weights in another layout than the decoder's
function M.needed(cfg) return cfg.model_type == "internlm2" or cfg.model_type == "baichuan" end

local function dims(cfg)
  local H, Hq = cfg.hidden_size, cfg.num_attention_heads
  local Hk = cfg.num_key_value_heads or Hq
  local D = math.floor(H / Hq)
  return H, Hq, Hk, D
end

local function expect_rows(name, t, rows, what)
  if t:size(1) ~= rows then
    error(fmt("model: %s '%s' has %d rows, expected %d (%s)", t:dim() == 1 and "bias" or "weight", name,
      t:size(1), rows, what), 0)
  end
end

-- InternLM2's wqkv (weight [N, H] or bias [N]) -> q, k, v in llama order.
-- The queries of one kv group are strided over the groups, so q, k and v are
-- copies; the per-group query order is the llama head order (head h*g + j uses
-- kv head h, as repeat_kv pairs them).
local function split_wqkv(name, t, cfg)
  local _, Hq, Hk, D = dims(cfg)
  local g = Hq / Hk
  expect_rows(name, t, Hk * (g + 2) * D, fmt("[kv_heads %d x (q_per_kv %d + 2) x head_dim %d]", Hk, g, D))
  local rest = t:dim() == 2 and t:size(2) or nil
  local grouped = rest and t:view(Hk, g + 2, D, rest) or t:view(Hk, g + 2, D)
  local function part(first, n)
    local s = grouped:narrow(2, first, n)
    return rest and s:reshape(Hk * n * D, rest):contiguous() or s:reshape(Hk * n * D):contiguous()
  end
  return part(1, g), part(g + 1, 1), part(g + 2, 1)
end

local function pack_wqkv(q, k, v, cfg)
  local _, Hq, Hk, D = dims(cfg)
  local g = Hq / Hk
  if q:dim() == 2 then
    local H = q:size(2)
    return lfl.cat({q:reshape(Hk, g, D, H), k:reshape(Hk, 1, D, H), v:reshape(Hk, 1, D, H)}, 2)
      :reshape(Hk * (g + 2) * D, H)
  end
  return lfl.cat({q:reshape(Hk, g, D), k:reshape(Hk, 1, D), v:reshape(Hk, 1, D)}, 2):reshape(Hk * (g + 2) * D)
end

-- Baichuan's W_pack [3H, H] -> row blocks q, k, v: views, no copy
local function split_wpack(name, t, cfg)
  local H = cfg.hidden_size
  expect_rows(name, t, 3 * H, "[q; k; v] of hidden_size rows each")
  return t:narrow(1, 1, H), t:narrow(1, H + 1, H), t:narrow(1, 2 * H + 1, H)
end

-- {original name = tensor} -> {decoder name = tensor}; other families pass through
function M.to_decoder(cfg, params)
  local mt = cfg.model_type
  if not M.needed(cfg) then return params end
  local out = {}
  local function put(name, t, from)
    if out[name] then error(fmt("model: tensors '%s' and another both map to '%s'", from, name), 0) end
    out[name] = t
  end
  for name, t in pairs(params) do
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if mt == "internlm2" then
      if INTERNLM2_TOP[name] then
        put(INTERNLM2_TOP[name], t, name)
      elseif mod == "attention.wqkv" then
        local q, k, v = split_wqkv(name, t, cfg)
        put(p .. "self_attn.q_proj." .. suffix, q, name)
        put(p .. "self_attn.k_proj." .. suffix, k, name)
        put(p .. "self_attn.v_proj." .. suffix, v, name)
      elseif mod and INTERNLM2_LAYER[mod] then
        put(p .. INTERNLM2_LAYER[mod] .. "." .. suffix, t, name)
      elseif name:match("rotary_emb%.inv_freq$") then -- a buffer some checkpoints carry
      else
        error(fmt("model: InternLM2 tensor '%s' has no counterpart in the llama layout", name), 0)
      end
    else -- baichuan
      if mod == "self_attn.W_pack" then
        local q, k, v = split_wpack(name, t, cfg)
        put(p .. "self_attn.q_proj." .. suffix, q, name)
        put(p .. "self_attn.k_proj." .. suffix, k, name)
        put(p .. "self_attn.v_proj." .. suffix, v, name)
      elseif not name:match("rotary_emb%.inv_freq$") then
        put(name, t, name)
      end
    end
  end
  return out
end

-- The inverse for saving: (sorted names, {decoder name = tensor}) -> the same
-- in the family's layout (new tensors for the packed q/k/v, the others shared).
function M.from_decoder(cfg, names, params)
  local mt = cfg.model_type
  if not M.needed(cfg) then return names, params end
  local rev = {}
  for k, v in pairs(INTERNLM2_LAYER) do rev[v] = k end
  local out = {}
  for _, name in ipairs(names) do
    local t = params[name]
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if mod == "self_attn.q_proj" then
      local k, v = params[p .. "self_attn.k_proj." .. suffix], params[p .. "self_attn.v_proj." .. suffix]
      if not (k and v) then error(fmt("model: '%s' has no k_proj/v_proj to pack it with", name), 0) end
      if mt == "internlm2" then out[p .. "attention.wqkv." .. suffix] = pack_wqkv(t, k, v, cfg)
      else out[p .. "self_attn.W_pack." .. suffix] = lfl.cat({t, k, v}, 1) end
    elseif mod == "self_attn.k_proj" or mod == "self_attn.v_proj" then -- packed with q
    elseif mt == "internlm2" then
      local top
      for k, v in pairs(INTERNLM2_TOP) do if v == name then top = k end end
      if top then out[top] = t
      elseif mod and rev[mod] then out[p .. rev[mod] .. "." .. suffix] = t
      else error(fmt("model: '%s' has no InternLM2 counterpart", name), 0) end
    else
      out[name] = t
    end
  end
  local onames = {}
  for n in pairs(out) do onames[#onames + 1] = n end
  table.sort(onames)
  return onames, out
end

return M
