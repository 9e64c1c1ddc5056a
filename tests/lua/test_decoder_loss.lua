-- The decoder's training loss (lfl.decoder.loss): rows without a label skip
-- the fused head, and the loss and gradients still equal cross-entropy over
-- the full logits with -100 ignored (transformers' loss), for SFT-style labels
-- (masked prompts), a row with every label, and a row with none.
local t = require("lfl.test")
local dec = require("lfl.model.decoder")

local model_dir = lfl.home .. "/tests/golden/models/llama"

-- loss and the gradients of the head and the final norm, through the
-- decoder's loss or through full logits and lfl.cross_entropy
local function run(labels, ids, full_logits)
  local m = lfl.model.load(model_dir)
  local head, normw = m.params["lm_head.weight"], m.params["model.norm.weight"]
  head:requires_grad(); normw:requires_grad()
  local loss
  if full_logits then
    local logits = dec.forward(m, ids, {})
    loss = lfl.cross_entropy(logits:reshape(-1, logits:size(3)), dec.shift_labels(labels):reshape(-1))
  else
    loss = dec.loss(m, ids, labels, {})
  end
  loss:backward()
  return loss:item(), head.grad, normw.grad
end

t.suite("decoder_loss", {
  labelled_rows_only = function()
    local ids = lfl.tensor({{1, 5, 9, 3, 7, 2, 8, 4, 6, 10}, {3, 3, 9, 1, 7, 2, 6, 4, 11, 12}}, "i64")
    local prompt = lfl.tensor({{-100, -100, -100, -100, -100, -100, 8, 4, 6, 10},
                               {-100, -100, -100, -100, -100, 2, 6, 4, 11, 12}}, "i64")
    for name, labels in pairs({prompt_masked = prompt, all_labelled = ids}) do
      local l1, h1, n1 = run(labels, ids, false)
      local l2, h2, n2 = run(labels, ids, true)
      t.assert_close(l1, l2, 1e-6, name .. ": loss")
      t.assert_tensor_close(h1, h2, 1e-6, 1e-5, name .. ": head gradient")
      t.assert_tensor_close(n1, n2, 1e-6, 1e-5, name .. ": norm gradient")
    end
    -- no label at all: the mean over nothing, as the full logits give it
    local none = lfl.full({2, 10}, -100, "i64")
    local l1 = run(none, ids, false)
    local l2 = run(none, ids, true)
    t.assert(l1 ~= l1 and l2 ~= l2, "no labels: NaN both ways, got " .. l1 .. " and " .. l2)
  end,
})

t.run()
