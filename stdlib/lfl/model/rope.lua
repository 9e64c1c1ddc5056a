-- Rotary position embeddings: inverse frequencies for every HF rope type
-- (default, linear, dynamic, llama3, yarn) and cos/sin tables from position ids,
-- computed with float32 products the way transformers does.
local lfl = lfl
local fmt = string.format
local floor, max, min, log, pi = math.floor, math.max, math.min, math.log, math.pi

local M = {}

-- Normalises HF's two spellings (rope_scaling + rope_theta, or transformers 5's
-- rope_parameters) into {type=, theta=, factor=, ...}.
function M.params(cfg)
  -- "rope_scaling": null (transformers 4's configs without scaling) is no table
  local function tbl(v) return type(v) == "table" and v or nil end
  local p = tbl(cfg.rope_parameters) or tbl(cfg.rope_scaling) or {}
  local r = {}
  for k, v in pairs(p) do r[k] = v end
  r.type = p.rope_type or p.type or "default"
  r.theta = p.rope_theta or cfg.rope_theta or 10000.0
  r.partial = p.partial_rotary_factor or cfg.partial_rotary_factor or 1.0
  return r
end

local function f32(x) -- round a double to the nearest float32
  return lfl.tensor({x}):_at(1)
end

-- inv_freq (Lua array of D/2 numbers, already float32-rounded) and the
-- attention factor that multiplies cos/sin.
function M.inv_freq(cfg, head_dim, seq_len)
  local p = M.params(cfg)
  local dim = floor(head_dim * p.partial)
  local base = p.theta
  local inv, att = {}, 1.0
  local ty = p.type
  if ty == "dynamic" and seq_len and seq_len > cfg.max_position_embeddings then
    base = base * ((p.factor * seq_len / cfg.max_position_embeddings) - (p.factor - 1)) ^ (dim / (dim - 2))
  end
  for i = 1, dim / 2 do inv[i] = f32(1.0 / f32(base ^ f32((2 * (i - 1)) / dim))) end
  if ty == "linear" then
    for i = 1, #inv do inv[i] = f32(inv[i] / p.factor) end
  elseif ty == "llama3" then
    local old = p.original_max_position_embeddings
    local lo_wl, hi_wl = old / p.low_freq_factor, old / p.high_freq_factor
    for i = 1, #inv do
      local f = inv[i]
      local wl = 2 * pi / f
      local g = wl > lo_wl and f / p.factor or f
      if not (wl < hi_wl) and not (wl > lo_wl) then
        local s = (old / wl - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor)
        g = (1 - s) * g / p.factor + s * g
      end
      inv[i] = f32(g)
    end
  elseif ty == "yarn" then
    local factor = p.factor or cfg.max_position_embeddings / p.original_max_position_embeddings
    local function mscale(s, m) if s <= 1 then return 1.0 end return 0.1 * (m or 1) * log(s) + 1.0 end
    att = p.attention_factor
    if not att then
      if p.mscale and p.mscale_all_dim then att = mscale(factor, p.mscale) / mscale(factor, p.mscale_all_dim)
      else att = mscale(factor) end
    end
    local bf, bs = p.beta_fast or 32, p.beta_slow or 1
    local omax = p.original_max_position_embeddings
    local function corr(rot) return (dim * log(omax / (rot * 2 * pi))) / (2 * log(base)) end
    local lo, hi = corr(bf), corr(bs)
    if p.truncate ~= false then lo, hi = floor(lo), math.ceil(hi) end
    lo, hi = max(lo, 0), min(hi, dim - 1)
    if lo == hi then hi = hi + 0.001 end
    for i = 1, #inv do
      local pf = f32(base ^ f32((2 * (i - 1)) / dim))
      local extra, inter = f32(1 / pf), f32(1 / (factor * pf))
      local ramp = min(max(((i - 1) - lo) / (hi - lo), 0), 1)
      local ef = 1 - ramp
      inv[i] = f32(inter * (1 - ef) + extra * ef)
    end
  elseif ty ~= "default" and ty ~= "dynamic" then
    error("rope: rope_type '" .. tostring(ty) .. "' is not supported (default, linear, dynamic, llama3, yarn)", 2)
  end
  return inv, att, dim
end

-- cos, sin: [B, T, head_dim] f32 tensors for position ids pos (a [B, T] i64
-- tensor or a Lua array of arrays), as HF's rotary embedding computes them.
-- A partial rotary embedding (fewer frequencies than head_dim / 2) fills the
-- rest of each half with cos 1, sin 0: those dims pass through rope.c
-- unchanged (the decoder permutes the head dims so the rotated pairs sit at
-- the start of each half).
function M.cos_sin(inv, att, pos, head_dim)
  local rows = {}
  if lfl.is_tensor(pos) then
    local sz = pos:size()
    for b = 1, sz[1] do
      local r = {}
      for t = 1, sz[2] do r[t] = pos[{b, t}] end
      rows[b] = r
    end
  else
    rows = pos
  end
  local B, T, half = #rows, #rows[1], #inv
  local D = head_dim
  local hd = D / 2
  assert(half <= hd and hd == floor(hd), "rope: more frequencies than head_dim / 2")
  -- float32 products pos * inv_freq, then cos/sin of those float32 angles
  local invt = lfl.tensor(inv)
  local cos, sin = lfl.zeros(B, T, D), lfl.zeros(B, T, D)
  local cosf, sinf = math.cos, math.sin
  for b = 1, B do
    local posb = lfl.tensor(rows[b]):view(T, 1)
    local ang = lfl.mul(posb, invt:view(1, half)) -- [T, half], float32 rounding like torch
    local cb, sb = {}, {}
    for t = 1, T do
      local rc, rs = {}, {}
      for i = 1, half do
        local a = ang[{t, i}]
        local c, s = cosf(a) * att, sinf(a) * att
        rc[i], rc[i + hd], rs[i], rs[i + hd] = c, c, s, s
      end
      for i = half + 1, hd do rc[i], rc[i + hd], rs[i], rs[i + hd] = 1, 1, 0, 0 end
      cb[t], sb[t] = rc, rs
    end
    cos[b] = lfl.tensor(cb)
    sin[b] = lfl.tensor(sb)
  end
  return cos, sin
end

-- A recipe's rope_scaling (LlamaFactory's configure_rope): the positions the
-- model was made for, L (rope's original_max_position_embeddings or
-- max_position_embeddings), are stretched by ceil(max_length / L) when the run's
-- length (cutoff_len in training) is longer, by 2 when max_length is nil
-- (inference, export); a run that fits L keeps the config as it is (with a
-- note, LlamaFactory's warning). cfg is changed in place: rope_parameters
-- {rope_type, factor, rope_theta [, original_max_position_embeddings,
-- llama3's low/high_freq_factor 1 / 4]} and max_position_embeddings L * factor.
-- Returns the note to print. where names the config in errors.
function M.apply_recipe_scaling(cfg, kind, max_length, where)
  where = where or "config.json"
  local rp = cfg.rope_parameters
  if rp == lfl.json.null then rp = nil end
  if type(rp) == "table" and (type(rp.full_attention) == "table" or type(rp.sliding_attention) == "table") then
    error(fmt("rope_scaling: %s: model_type %s keeps rope parameters per layer type; scaling them from the recipe "
      .. "is not supported", where, tostring(cfg.model_type)), 0)
  end
  local cur = M.params(cfg)
  local L = cur.original_max_position_embeddings or cfg.max_position_embeddings
  if type(L) ~= "number" or L < 1 then
    error(fmt("rope_scaling: %s has no max_position_embeddings to scale from", where), 0)
  end
  local factor
  if max_length then
    if max_length <= L then
      return fmt("rope_scaling %s: cutoff_len %d fits the model's %d positions, so the rotary embedding is left as it "
        .. "is (LlamaFactory: \"Input length is smaller than max length. Disabling rope scaling.\")", kind, max_length, L)
    end
    factor = math.ceil(max_length / L)
  else
    factor = 2.0
  end
  local new = {rope_type = kind, factor = factor, rope_theta = cur.theta}
  if kind == "dynamic" or kind == "yarn" or kind == "llama3" then new.original_max_position_embeddings = L end
  if kind == "llama3" then new.low_freq_factor, new.high_freq_factor = 1.0, 4.0 end
  if cur.partial ~= 1.0 then new.partial_rotary_factor = cur.partial end
  cfg.rope_parameters, cfg.rope_scaling = new, nil
  cfg.max_position_embeddings = L * factor
  return fmt("rope_scaling %s: factor %g over the model's %d positions (max_position_embeddings %d)", kind, factor, L,
    L * factor)
end

return M
