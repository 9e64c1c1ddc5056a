-- Loss ops against torch goldens (tests/ref/make_loss_goldens.py, f32):
-- F.cross_entropy with ignore_index=-100 values and gradients, the fused
-- linear + CE through hidden/w, and per-token log-probs.
-- Tolerances: values and gradients within atol 2e-6 + rtol 2e-5 (f32 rounding
-- of a different summation order and exp; a 1-ulp exp error stays below this).
local t = lfl.test
local dir = lfl.home .. "/tests/golden/loss/"
local ATOL, RTOL = 2e-6, 2e-5

local function load(name)
  local ts, meta = lfl.safetensors.load(dir .. name .. ".safetensors")
  return ts, meta
end

local function is_nan(x) return x ~= x end

local ce = load("ce")
local lce, lce_meta = load("lce")
local tlp = load("tlp")

local function check_ce(name)
  local x, lab = ce[name .. ".logits"], ce[name .. ".labels"]
  t.assert_eq(lab:dtype(), "i64")
  for _, red in ipairs({"mean", "sum", "none"}) do
    local want = ce[name .. ".loss_" .. red]
    local xg = x:clone():requires_grad()
    local got = lfl.cross_entropy(xg, lab, {reduction = red})
    if red == "none" then
      t.assert_tensor_close(got, want, ATOL, RTOL, name .. " none")
      ;(got * ce[name .. ".gnone"]):sum():backward()
    else
      local w = want:item()
      if is_nan(w) then
        t.assert(is_nan(got:item()), name .. " " .. red .. ": expected NaN like torch, got " .. got:item())
      else
        t.assert_close(got:item(), w, 2e-6, name .. " " .. red)
      end
      got:backward()
    end
    t.assert_tensor_close(xg.grad, ce[name .. ".grad_" .. red], ATOL, RTOL, name .. " grad " .. red)
  end
end

local function check_lce(name)
  local h, w, lab = lce[name .. ".hidden"], lce[name .. ".w"], lce[name .. ".labels"]
  local chunk = tonumber(lce_meta[name .. ".chunk"])
  t.assert(w:size()[1] % chunk ~= 0, "golden V should not be a multiple of the chunk")
  for _, c in ipairs({chunk, 0}) do   -- the stated chunk, then the default (one chunk)
    for _, red in ipairs({"mean", "sum", "none"}) do
      local hg, wg = h:clone():requires_grad(), w:clone():requires_grad()
      local got = lfl.linear_cross_entropy(hg, wg, lab, {reduction = red, chunk = c})
      local want = lce[name .. ".loss_" .. red]
      if red == "none" then
        t.assert_tensor_close(got, want, ATOL, RTOL, name .. " none")
        ;(got * lce[name .. ".gnone"]):sum():backward()
      else
        t.assert_close(got:item(), want:item(), 2e-6, name .. " " .. red)
        got:backward()
      end
      local what = name .. " chunk " .. c .. " " .. red
      t.assert_tensor_close(hg.grad, lce[name .. ".dhidden_" .. red], ATOL, RTOL, what .. " dhidden")
      t.assert_tensor_close(wg.grad, lce[name .. ".dw_" .. red], ATOL, RTOL, what .. " dw")
    end
  end
end

t.suite("loss_goldens", {
  ce_2d = function() check_ce("ce_2d") end,
  ce_3d = function() check_ce("ce_3d") end,
  ce_all_ignored = function() check_ce("ce_allignored") end,
  lce_2d = function() check_lce("lce_2d") end,
  lce_3d = function() check_lce("lce_3d") end,

  token_logprobs = function()
    local x = tlp["tlp.logits"]:clone():requires_grad()
    local lp = lfl.token_logprobs(x, tlp["tlp.labels"])
    t.assert_tensor_close(lp, tlp["tlp.logp"], ATOL, RTOL, "logp")
    ;(lp * tlp["tlp.g"]):sum():backward()
    t.assert_tensor_close(x.grad, tlp["tlp.grad"], ATOL, RTOL, "grad")
  end,
})

t.run()
