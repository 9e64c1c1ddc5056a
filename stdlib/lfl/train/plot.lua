-- Loss curves as PNG, as LlamaFactory's plot_loss draws them: the raw curve
-- faded and an exponentially smoothed one on top.
local lfl = lfl
local exp = math.exp

local M = {}

-- LlamaFactory's smoothing: EMA whose weight grows with the number of points
function M.smooth(ys)
  if #ys == 0 then return {} end
  local w = 1.8 * (1 / (1 + exp(-0.05 * #ys)) - 0.5)
  local out, last = {}, ys[1]
  for i, y in ipairs(ys) do last = last * w + (1 - w) * y; out[i] = last end
  return out
end

function M.lines(path, opts, series) return lfl._plot.lines(path, opts or {}, series) end

-- training_<key>.png in out_dir for each key of the log history that has
-- points ("/" in a key becomes "_": rewards/accuracies ->
-- training_rewards_accuracies.png), as LlamaFactory's plot_loss(keys) names them
function M.training_curves(out_dir, history, keys)
  local written = {}
  for _, key in ipairs(keys) do
    local xs, ys = {}, {}
    for _, h in ipairs(history) do
      if h[key] and h.step then xs[#xs + 1] = h.step; ys[#ys + 1] = h[key] end
    end
    if #xs > 0 then
      local path = out_dir .. "/training_" .. key:gsub("/", "_") .. ".png"
      M.lines(path, {title = "training " .. key .. " of " .. out_dir, xlabel = "step", ylabel = key}, {
        {x = xs, y = ys, label = "original", color = {0.12, 0.47, 0.71}, alpha = 0.4},
        {x = xs, y = M.smooth(ys), label = "smoothed", color = {0.12, 0.47, 0.71}, width = 2},
      })
      written[#written + 1] = path
    end
  end
  return written
end

-- training_loss.png (and training_eval_loss.png when evaluated) in out_dir
function M.training_loss(out_dir, history) return M.training_curves(out_dir, history, {"loss", "eval_loss"}) end

return M
