-- Weight layouts other than the decoder's: a model family module whose
-- checkpoints keep their tensors in another layout (InternLM2's fused wqkv,
-- Baichuan's W_pack: recipes/models/internlm2.lua, baichuan2.lua) gives its
-- arch table to_decoder / from_decoder; these route a model's tensors through
-- the family of its model_type at load and at save.
local M = {}

local function arch(cfg) return require("lfl.model.registry").arch(cfg.model_type) end

-- true when cfg's family keeps its weights in another layout than the decoder's
function M.needed(cfg) return arch(cfg).to_decoder ~= nil end

-- {original name = tensor} -> {decoder name = tensor}; other families pass through
function M.to_decoder(cfg, params)
  local a = arch(cfg)
  if not a.to_decoder then return params end
  return a.to_decoder(cfg, params)
end

-- remap(params, each) -> {new name = tensor}: each(name, t, put) calls
-- put(new_name, tensor, name) for what `name` becomes (none, one or several
-- tensors); two tensors mapping to one name is an error naming both. The
-- skeleton of a family's to_decoder.
function M.remap(params, each)
  local out = {}
  local function put(name, t, from)
    if out[name] then error(string.format("model: tensors '%s' and another both map to '%s'", from, name), 0) end
    out[name] = t
  end
  for name, t in pairs(params) do each(name, t, put) end
  return out
end

-- The inverse for saving: (sorted names, {decoder name = tensor}) -> the same
-- in the family's layout
function M.from_decoder(cfg, names, params)
  local a = arch(cfg)
  if not a.from_decoder then return names, params end
  return a.from_decoder(cfg, names, params)
end

return M
