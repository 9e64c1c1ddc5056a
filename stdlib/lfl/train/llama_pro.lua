-- LLaMA Pro block expansion (Wu et al. 2024), as LlamaFactory's
-- scripts/llama_pro.py writes it: after every `split = L / num_expand`-th
-- decoder layer a copy of that layer is inserted whose o_proj and down_proj
-- are zero, so the new block adds nothing to the residual stream and the
-- expanded model computes what the original did. `use_llama_pro: true` then
-- trains only those blocks (freeze) or puts LoRA only on them
-- (peft.llama_pro_layers).
local fmt = string.format

local M = {}

local function zeroed(name)
  return name:find("down_proj", 1, true) ~= nil or name:find("o_proj", 1, true) ~= nil
end

-- expand(model, num_expand) -> a new Model with L + num_expand layers (the
-- original's tensors shared, the copies cloned), and the list of inserted
-- layer ids.
function M.expand(model, num_expand)
  local L = model.arch.layers
  if type(num_expand) ~= "number" or num_expand < 1 or num_expand % 1 ~= 0 then
    error(fmt("llama_pro: num_expand must be an integer >= 1, got %s", tostring(num_expand)), 0)
  end
  if L % num_expand ~= 0 then
    error(fmt("llama_pro: `num_layers` %d should be divisible by `num_expand` %d.", L, num_expand), 0)
  end
  local split = math.floor(L / num_expand)
  local by_layer, other = {}, {}
  for _, name in ipairs(model.names) do
    local l, rest = name:match("^model%.layers%.(%d+)%.(.+)$")
    if l then
      l = tonumber(l)
      by_layer[l] = by_layer[l] or {}
      by_layer[l][#by_layer[l] + 1] = rest
    else
      other[#other + 1] = name
    end
  end
  local out = lfl.model.new()
  local function plain(t)
    -- block-quantized weights are not copied into new layers as blocks
    local dt = t:dtype()
    if dt ~= "f32" and dt ~= "bf16" and dt ~= "f16" and dt ~= "f64" then
      error(fmt("llama_pro: a %s weight cannot be expanded; load the model dequantized", dt), 0)
    end
    return t
  end
  local inserted, cnt = {}, 0
  for i = 0, L - 1 do
    for _, rest in ipairs(by_layer[i] or {}) do
      out.params[fmt("model.layers.%d.%s", cnt, rest)] = plain(model.params[fmt("model.layers.%d.%s", i, rest)])
    end
    cnt = cnt + 1
    if (i + 1) % split == 0 then
      lfl.no_grad(function()
        for _, rest in ipairs(by_layer[i] or {}) do
          local src = plain(model.params[fmt("model.layers.%d.%s", i, rest)])
          out.params[fmt("model.layers.%d.%s", cnt, rest)] = zeroed(rest) and lfl.zeros(src:size()):to(src:dtype())
            or src:clone()
        end
      end)
      inserted[#inserted + 1] = cnt
      cnt = cnt + 1
    end
  end
  for _, name in ipairs(other) do out.params[name] = model.params[name] end
  local cfg = {}
  for k, v in pairs(model.config) do cfg[k] = v end
  cfg.num_hidden_layers = L + num_expand
  -- per-layer lists in the config (layer_types of sliding/full attention) grow with the copies
  if type(cfg.layer_types) == "table" and #cfg.layer_types == L then
    local lt = {}
    for i = 0, L - 1 do
      lt[#lt + 1] = cfg.layer_types[i + 1]
      if (i + 1) % split == 0 then lt[#lt + 1] = cfg.layer_types[i + 1] end
    end
    cfg.layer_types = lt
  end
  out.config = cfg
  out.arch = require("lfl.model.decoder").resolve(cfg, "llama_pro")
  out.dtype = model.dtype
  out.path = model.path
  out.gguf_metadata = model.gguf_metadata
  out.generation_config = model.generation_config
  return out, inserted
end

return M
