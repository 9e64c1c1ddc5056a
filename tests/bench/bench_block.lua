-- Forward and forward+backward time of one SmolLM2-shaped decoder block
-- (hidden 576, 9/3 heads, head_dim 64, MLP 1536) at seq 512, batch 1.
-- Figures only. Run: build/lfl tests/bench/bench_block.lua [seq] [reps]
local T = tonumber(arg[1]) or 512
local reps = tonumber(arg[2]) or 5
local H, F, Hq, Hk, D, V = 576, 1536, 9, 3, 64, 49152

lfl.manual_seed(0)
local cfg = {model_type = "llama", hidden_size = H, intermediate_size = F, num_hidden_layers = 1,
             num_attention_heads = Hq, num_key_value_heads = Hk, vocab_size = V, rms_norm_eps = 1e-5,
             max_position_embeddings = 8192, rope_theta = 100000.0, tie_word_embeddings = true}
local function rnd(...) return (lfl.randn(...) * 0.02):requires_grad() end
local p = {["model.embed_tokens.weight"] = rnd(V, H), ["model.norm.weight"] = lfl.ones(H):requires_grad()}
local pre = "model.layers.0."
p[pre .. "input_layernorm.weight"] = lfl.ones(H):requires_grad()
p[pre .. "post_attention_layernorm.weight"] = lfl.ones(H):requires_grad()
p[pre .. "self_attn.q_proj.weight"] = rnd(Hq * D, H)
p[pre .. "self_attn.k_proj.weight"] = rnd(Hk * D, H)
p[pre .. "self_attn.v_proj.weight"] = rnd(Hk * D, H)
p[pre .. "self_attn.o_proj.weight"] = rnd(H, Hq * D)
p[pre .. "mlp.gate_proj.weight"] = rnd(F, H)
p[pre .. "mlp.up_proj.weight"] = rnd(F, H)
p[pre .. "mlp.down_proj.weight"] = rnd(H, F)
local m = lfl.model.from_params(cfg, p)
local decoder = require("lfl.model.decoder")

local x = (lfl.randn(1, T, H) * 0.5):requires_grad()
local pos = lfl.arange(T, "i64"):view(1, T)
local rope = require("lfl.model.rope")
local inv, att = rope.inv_freq(cfg, D, T)
local cos, sin = rope.cos_sin(inv, att, pos, D)

-- the block alone, as decoder.hidden runs it
local layer_fn = debug.getupvalue and nil
local function block(h)
  local saved = m.arch.layers
  return decoder.layer_for_bench(m, 1, h, cos, sin)
end

local function median(t) table.sort(t) return t[math.ceil(#t / 2)] end
local fwd, fb = {}, {}
for r = 1, reps + 1 do
  local t0 = lfl.sys.clock()
  local y = lfl.no_grad(block, x)
  local t1 = lfl.sys.clock()
  local y2 = block(x)
  y2:sum():backward()
  local t2 = lfl.sys.clock()
  if r > 1 then fwd[#fwd + 1] = t1 - t0; fb[#fb + 1] = t2 - t1 end
  x.grad = nil
  for _, t in pairs(p) do t.grad = nil end
end
-- matmul FLOPs of the block: 2*T*H*(Hq*D + 2*Hk*D) + 2*T*Hq*D*H + 3*2*T*H*F, attention 2*2*T*T*Hq*D/2 (causal)
local mm = 2 * T * H * (Hq * D + 2 * Hk * D) + 2 * T * Hq * D * H + 3 * 2 * T * H * F
local attn = 2 * T * T * Hq * D -- QK^T and PV, halved by causality
local flops = mm + attn
local f, b = median(fwd), median(fb)
print(string.format("decoder block (SmolLM2 shape) seq %d, %s", T, lfl.sys.blas()))
print(string.format("  forward          %7.1f ms  %6.1f GFLOP/s", f * 1e3, flops / f / 1e9))
print(string.format("  forward+backward %7.1f ms  %6.1f GFLOP/s (3x forward FLOPs)", b * 1e3, 3 * flops / b / 1e9))
print(string.format("  tokens/s (fwd+bwd, one block) %.0f", T / b))
