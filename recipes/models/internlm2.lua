-- InternLM2 / InternLM2.5 (Shanghai AI Lab): model_type internlm2, fused
-- wqkv, wo, feed_forward w1/w2/w3; the head is "output" (not a LoRA target).
-- LlamaFactory's "intern2" template is not bundled yet: "default" stands in.
local ck = {}
local function add(name, hub, size) ck[#ck + 1] = {name = name, hub = hub, size = size} end
for _, s in ipairs({"7B", "20B"}) do
  add("InternLM2-" .. s, "internlm/internlm2-" .. s:lower(), s)
  add("InternLM2-" .. s .. "-Chat", "internlm/internlm2-chat-" .. s:lower(), s)
end
for _, s in ipairs({"1.8B", "7B", "20B"}) do
  local l = s:lower():gsub("%.", "_")
  add("InternLM2.5-" .. s, "internlm/internlm2_5-" .. l, s)
  add("InternLM2.5-" .. s .. "-Chat", "internlm/internlm2_5-" .. l .. "-chat", s)
end
add("InternLM2.5-7B-1M-Chat", "internlm/internlm2_5-7b-chat-1m", "7B")

-- The weight layout (trust_remote_code on the Hub): model.tok_embeddings,
-- attention.wqkv/wo, feed_forward.w1/w3/w2, attention_norm/ffn_norm, output.
-- wqkv rows are grouped per kv head as [kv_heads, q_per_kv + 2, head_dim]: the
-- group's queries, then its key, then its value. It is a llama underneath:
-- to_decoder renames and splits it into the llama layout at load,
-- from_decoder packs it back when a model is saved, so a saved folder loads
-- wherever the original did.
local fmt = string.format

local LAYER = {
  ["attention.wo"] = "self_attn.o_proj", ["feed_forward.w1"] = "mlp.gate_proj",
  ["feed_forward.w3"] = "mlp.up_proj", ["feed_forward.w2"] = "mlp.down_proj",
  ["attention_norm"] = "input_layernorm", ["ffn_norm"] = "post_attention_layernorm",
}
local TOP = {
  ["model.tok_embeddings.weight"] = "model.embed_tokens.weight", ["output.weight"] = "lm_head.weight",
  ["model.norm.weight"] = "model.norm.weight",
}

local function dims(cfg)
  local H, Hq = cfg.hidden_size, cfg.num_attention_heads
  local Hk = cfg.num_key_value_heads or Hq
  local D = math.floor(H / Hq)
  return H, Hq, Hk, D
end

-- wqkv (weight [N, H] or bias [N]) -> q, k, v in llama order. The queries of
-- one kv group are strided over the groups, so q, k and v are copies; the
-- per-group query order is the llama head order (head h*g + j uses kv head h,
-- as repeat_kv pairs them).
local function split_wqkv(name, t, cfg)
  local _, Hq, Hk, D = dims(cfg)
  local g = Hq / Hk
  local rows = Hk * (g + 2) * D
  if t:size(1) ~= rows then
    error(fmt("model: %s '%s' has %d rows, expected %d ([kv_heads %d x (q_per_kv %d + 2) x head_dim %d])",
      t:dim() == 1 and "bias" or "weight", name, t:size(1), rows, Hk, g, D), 0)
  end
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

-- {InternLM2 name = tensor} -> {llama name = tensor}
local function to_decoder(cfg, params)
  return require("lfl.model.convert").remap(params, function(name, t, put)
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if TOP[name] then
      put(TOP[name], t, name)
    elseif mod == "attention.wqkv" then
      local q, k, v = split_wqkv(name, t, cfg)
      put(p .. "self_attn.q_proj." .. suffix, q, name)
      put(p .. "self_attn.k_proj." .. suffix, k, name)
      put(p .. "self_attn.v_proj." .. suffix, v, name)
    elseif mod and LAYER[mod] then
      put(p .. LAYER[mod] .. "." .. suffix, t, name)
    elseif name:match("rotary_emb%.inv_freq$") then -- a buffer some checkpoints carry
    else
      error(fmt("model: InternLM2 tensor '%s' has no counterpart in the llama layout", name), 0)
    end
  end)
end

-- (sorted llama names, {llama name = tensor}) -> the same in InternLM2's layout
-- (new tensors for the packed wqkv, the others shared)
local function from_decoder(cfg, names, params)
  local rev = {}
  for k, v in pairs(LAYER) do rev[v] = k end
  local out = {}
  for _, name in ipairs(names) do
    local t = params[name]
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if mod == "self_attn.q_proj" then
      local k, v = params[p .. "self_attn.k_proj." .. suffix], params[p .. "self_attn.v_proj." .. suffix]
      if not (k and v) then error(fmt("model: '%s' has no k_proj/v_proj to pack it with", name), 0) end
      out[p .. "attention.wqkv." .. suffix] = pack_wqkv(t, k, v, cfg)
    elseif mod == "self_attn.k_proj" or mod == "self_attn.v_proj" then -- packed with q
    else
      local top
      for k, v in pairs(TOP) do if v == name then top = k end end
      if top then out[top] = t
      elseif mod and rev[mod] then out[p .. rev[mod] .. "." .. suffix] = t
      else error(fmt("model: '%s' has no InternLM2 counterpart", name), 0) end
    end
  end
  local onames = {}
  for n in pairs(out) do onames[#onames + 1] = n end
  table.sort(onames)
  return onames, out
end

return {
  family = "internlm2",
  title = "InternLM2 / InternLM2.5",
  model_type = "internlm2",
  arch = {model_type = "internlm2", traits = {}, to_decoder = to_decoder, from_decoder = from_decoder},
  template = "default",
  lf_template = "intern2",
  -- lfl splits the fused layout into llama's names at load (arch.to_decoder above),
  -- so LoRA targets (and saved adapters) use those names
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
