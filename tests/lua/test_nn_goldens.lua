-- The NN block ops against PyTorch / transformers goldens (tests/ref/make_nn_goldens.py):
-- outputs and gradients of sum(out * gout), for our f32 path and for our f64
-- path fed the same (f32) inputs. Tolerance: |ours - torch| <= 1e-5 + 1e-4 * |torch|
-- elementwise (torch itself computed in f32). LFL_TEST_VERBOSE=1 prints the
-- largest absolute difference of each comparison.
local t = lfl.test
local dir = lfl.home .. "/tests/golden/nn/"
local ATOL, RTOL = 1e-5, 1e-4
local verbose = os.getenv("LFL_TEST_VERBOSE")

local function load(name)
  local ts, meta = lfl.safetensors.load(dir .. name)
  return ts, meta
end

local function close(got, want, what)
  if verbose then print(string.format("      %-28s max |diff| %.3g", what, t.max_abs_diff(got:float(), want))) end
  t.assert_tensor_close(got:float(), want, ATOL, RTOL, what)
end

-- runs fn on fresh leaf copies of `inputs` (cast to dt) and backward(gout);
-- returns the output and the gradient of each input
local function run(dt, fn, inputs, gout)
  local xs = {}
  for i, x in ipairs(inputs) do xs[i] = x:to(dt):clone():requires_grad() end
  local out = fn(unpack(xs))
  out:backward(gout:to(dt))
  local gs = {}
  for i, x in ipairs(xs) do gs[i] = x.grad end
  return out, gs
end

local function both(f) for _, dt in ipairs({"f32", "f64"}) do f(dt) end end

t.suite("nn_goldens", {
  rmsnorm = function()
    local g = load("norms.safetensors")
    both(function(dt)
      local out, gr = run(dt, function(x, w) return lfl.rmsnorm(x, w, 1e-6) end, {g.rms_x, g.rms_w}, g.rms_gout)
      close(out, g.rms_out, dt .. " rmsnorm out")
      close(gr[1], g.rms_gx, dt .. " rmsnorm dx")
      close(gr[2], g.rms_gw, dt .. " rmsnorm dw")
    end)
  end,

  layernorm = function()
    local g = load("norms.safetensors")
    both(function(dt)
      local out, gr = run(dt, function(x, w, b) return lfl.layernorm(x, w, b, 1e-5) end,
                          {g.rms_x, g.rms_w, g.ln_b}, g.ln_gout)
      close(out, g.ln_out, dt .. " layernorm out")
      close(gr[1], g.ln_gx, dt .. " layernorm dx")
      close(gr[2], g.ln_gw, dt .. " layernorm dw")
      close(gr[3], g.ln_gb, dt .. " layernorm db")
      out, gr = run(dt, function(x) return lfl.layernorm(x, nil, nil, 1e-5) end, {g.rms_x}, g.ln0_gout)
      close(out, g.ln0_out, dt .. " layernorm (no affine) out")
      close(gr[1], g.ln0_gx, dt .. " layernorm (no affine) dx")
    end)
  end,

  rope_cos_sin = function()
    local g = load("rope.safetensors")
    local c, s = lfl.rope_cos_sin(g.pos, g.inv_freq)
    close(c, g.cos, "rope cos")
    close(s, g.sin, "rope sin")
    t.assert_eq(c:dtype(), "f32")
    local c64 = lfl.rope_cos_sin(g.pos, g.inv_freq, "f64")
    t.assert_eq(c64:dtype(), "f64")
    t.assert_tensor_close(c64, c:double(), 0, 0, "f64 cos is the f32 value cast, as HF casts")
  end,

  rope = function()
    local g = load("rope.safetensors")
    both(function(dt)
      for _, which in ipairs({"q", "k"}) do
        local out, gr = run(dt, function(x) return lfl.rope(x, g.cos:to(dt), g.sin:to(dt)) end,
                            {g[which]}, g[which .. "_gout"])
        close(out, g[which .. "_out"], dt .. " rope " .. which)
        close(gr[1], g["g" .. which], dt .. " rope d" .. which)
      end
    end)
  end,

  glu = function()
    local g = load("glu.safetensors")
    local fns = {
      swiglu = function(a, u) return lfl.swiglu(a, u) end,
      geglu = function(a, u) return lfl.geglu(a, u, false) end,
      geglu_tanh = function(a, u) return lfl.geglu(a, u, "tanh") end,
    }
    both(function(dt)
      for name, fn in pairs(fns) do
        local out, gr = run(dt, fn, {g.gate, g.up}, g[name .. "_gout"])
        close(out, g[name .. "_out"], dt .. " " .. name .. " out")
        close(gr[1], g[name .. "_ggate"], dt .. " " .. name .. " dgate")
        close(gr[2], g[name .. "_gup"], dt .. " " .. name .. " dup")
      end
    end)
  end,

  attention = function()
    local g, meta = load("attention.safetensors")
    local cases = lfl.json.decode(meta.cases)
    local n = 0
    for name, c in pairs(cases) do
      n = n + 1
      local q, k, v = g[c.q or "q"], g[c.k or "k"], g[c.v or "v"]
      local gout = g[c.gout or "gout"]
      t.assert(q and k and v and gout and g[name .. "_out"], "golden case " .. name .. " incomplete")
      both(function(dt)
        local opts = {causal = c.causal, window = c.window, softcap = c.softcap, scale = c.scale,
                      segments = c.seg and g[c.seg] or nil}
        local out, gr = run(dt, function(a, b, cc) return lfl.attention(a, b, cc, opts) end, {q, k, v}, gout)
        local what = dt .. " attention " .. name
        close(out, g[name .. "_out"], what .. " out")
        close(gr[1], g[name .. "_gq"], what .. " dq")
        close(gr[2], g[name .. "_gk"], what .. " dk")
        close(gr[3], g[name .. "_gv"], what .. " dv")
      end)
    end
    t.assert_eq(n, 9, "attention golden cases")
  end,
})

t.run()
