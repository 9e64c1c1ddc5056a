-- Granite 3.x (IBM): model_type granite, a llama with four scalars from
-- config.json: embedding_multiplier (embeddings times it), residual_multiplier
-- (each sublayer's output times it before the residual add),
-- attention_multiplier (the attention scaling, instead of 1/sqrt(head_dim))
-- and logits_scaling (the logits divided by it).
local fmt = string.format

local function scalar(cfg, key, default)
  local v = cfg[key]
  if v == nil or v == lfl.json.null then return default end
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    error(fmt("config.json: %s is %s, expected a finite number", key, tostring(v)), 0)
  end
  return v
end

local ck = {}
local function add(v, s, base)
  local kind = base and "base" or "instruct"
  ck[#ck + 1] = {name = fmt("Granite-%s-%s-%s", v, s, base and "Base" or "Instruct"),
                 hub = fmt("ibm-granite/granite-%s-%s-%s", v, s:lower(), kind), size = s}
end
for _, v in ipairs({"3.0", "3.1", "3.3"}) do
  for _, s in ipairs({"2B", "8B"}) do add(v, s, true); add(v, s, false) end
end
add("3.2", "2B", false); add("3.2", "8B", false)

return {
  family = "granite",
  title = "Granite 3",
  model_type = "granite",
  arch = {
    model_type = "granite",
    traits = {},
    resolve = function(cfg, a)
      a.embed_mult = scalar(cfg, "embedding_multiplier", 1.0)
      a.residual_mult = scalar(cfg, "residual_multiplier", 1.0)
      a.scale = scalar(cfg, "attention_multiplier", 1.0)
      local ls = scalar(cfg, "logits_scaling", 1.0)
      if ls == 0 then error("config.json: logits_scaling is 0, expected a non-zero number (the logits are divided by it)", 0) end
      a.logit_scale = 1 / ls
    end,
    -- convert_hf_to_gguf's GraniteModel (conversion/granite.py): a LlamaModel
    -- (q/k rows permuted) writing the multipliers as attention.scale,
    -- embedding_scale, residual_scale and logit_scale (each only when non-zero)
    gguf = {
      arch = "granite", hf_class = "GraniteForCausalLM", permuted = true,
      config = function(cfg, meta, key)
        cfg.attention_multiplier = meta[key("attention.scale")]
        cfg.embedding_multiplier = meta[key("embedding_scale")]
        cfg.residual_multiplier = meta[key("residual_scale")]
        cfg.logits_scaling = meta[key("logit_scale")]
      end,
    },
  },
  template = "granite3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
