-- Baichuan2 (Baichuan Inc.): config model_type "baichuan", fused W_pack
-- (q/k/v) and llama-style o_proj/gate/up/down. LlamaFactory's "baichuan2"
-- template is not bundled yet: "default" stands in.

-- The weight layout (trust_remote_code on the Hub): self_attn.W_pack =
-- [q; k; v] (no GQA), the rest has llama names. to_decoder splits W_pack at
-- load, from_decoder packs it back when a model is saved.
local fmt = string.format

local function to_decoder(cfg, params)
  return require("lfl.model.convert").remap(params, function(name, t, put)
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if mod == "self_attn.W_pack" then
      -- [3H, H] -> row blocks q, k, v: views, no copy
      local H = cfg.hidden_size
      if t:size(1) ~= 3 * H then
        error(fmt("model: %s '%s' has %d rows, expected %d ([q; k; v] of hidden_size rows each)",
          t:dim() == 1 and "bias" or "weight", name, t:size(1), 3 * H), 0)
      end
      put(p .. "self_attn.q_proj." .. suffix, t:narrow(1, 1, H), name)
      put(p .. "self_attn.k_proj." .. suffix, t:narrow(1, H + 1, H), name)
      put(p .. "self_attn.v_proj." .. suffix, t:narrow(1, 2 * H + 1, H), name)
    elseif not name:match("rotary_emb%.inv_freq$") then
      put(name, t, name)
    end
  end)
end

local function from_decoder(cfg, names, params)
  local out = {}
  for _, name in ipairs(names) do
    local t = params[name]
    local l, mod, suffix = name:match("^model%.layers%.(%d+)%.(.+)%.(%a+)$")
    local p = l and ("model.layers." .. l .. ".") or nil
    if mod == "self_attn.q_proj" then
      local k, v = params[p .. "self_attn.k_proj." .. suffix], params[p .. "self_attn.v_proj." .. suffix]
      if not (k and v) then error(fmt("model: '%s' has no k_proj/v_proj to pack it with", name), 0) end
      out[p .. "self_attn.W_pack." .. suffix] = lfl.cat({t, k, v}, 1)
    elseif mod == "self_attn.k_proj" or mod == "self_attn.v_proj" then -- packed with q
    else
      out[name] = t
    end
  end
  local onames = {}
  for n in pairs(out) do onames[#onames + 1] = n end
  table.sort(onames)
  return onames, out
end

-- Baichuan-13B and Baichuan2-13B use ALiBi, which the decoder does not build;
-- the 7B models use RoPE. Baichuan2 (architectures BaichuanForCausalLM)
-- normalises the lm_head rows (NormHead); Baichuan-7B (BaiChuanForCausalLM) does not.
local function resolve(cfg, a)
  -- the 13B configs have 40 layers of width 5120 and no max_position_embeddings (only model_max_length)
  if cfg.num_hidden_layers == 40 or cfg.hidden_size == 5120 or cfg.max_position_embeddings == nil then
    error("config.json: this Baichuan model is a 13B one (40 layers / hidden 5120 / no " ..
      "max_position_embeddings), which uses ALiBi position biases: not supported (Baichuan-7B and " ..
      "Baichuan2-7B, with RoPE, are)", 0)
  end
  local arch1 = type(cfg.architectures) == "table" and cfg.architectures[1]
  a.norm_head = arch1 ~= "BaiChuanForCausalLM"
end

return {
  family = "baichuan2",
  title = "Baichuan2",
  model_type = "baichuan",
  arch = {model_type = "baichuan", traits = {}, resolve = resolve, to_decoder = to_decoder, from_decoder = from_decoder},
  template = "default",
  lf_template = "baichuan2",
  -- lfl splits the fused layout into llama's names at load (arch.to_decoder above),
  -- so LoRA targets (and saved adapters) use those names
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Baichuan2-7B-Base", hub = "baichuan-inc/Baichuan2-7B-Base", size = "7B"},
    {name = "Baichuan2-13B-Base", hub = "baichuan-inc/Baichuan2-13B-Base", size = "13B"},
    {name = "Baichuan2-7B-Chat", hub = "baichuan-inc/Baichuan2-7B-Chat", size = "7B"},
    {name = "Baichuan2-13B-Chat", hub = "baichuan-inc/Baichuan2-13B-Chat", size = "13B"},
  },
}
