-- Writes adapters with lfl.peft.save_adapter (tests/golden/peft/lfl_adapter_<model>_<method>/)
-- that tests/ref/make_peft_goldens.py loads with PEFT to record PEFT's logits for
-- them; tests/lua/test_peft_goldens.lua then checks lfl's logits against those.
-- Run by make_peft_goldens.py as ./build/lfl tests/ref/lfl_save_adapter.lua.
local root = lfl.home .. "/tests/golden/"
local CASES = {
  {model = "llama", method = "lora", opts = {rank = 4, alpha = 8, target = "all"}},
  {model = "qwen2", method = "dora", opts = {rank = 4, alpha = 8, target = "all", use_dora = true}},
  {model = "qwen2", method = "rslora", opts = {rank = 8, alpha = 4, target = {"q_proj", "v_proj", "down_proj"},
                                               use_rslora = true}},
}

lfl.manual_seed(2024)
for _, c in ipairs(CASES) do
  local m = lfl.model.load(root .. "models/" .. c.model)
  lfl.peft.add_lora(m, c.opts)
  lfl.no_grad(function()
    -- a trained-looking adapter: B non-zero, DoRA magnitude away from ||W||
    for _, e in pairs(m.adapters) do
      e.B:normal_(0, 0.05)
      if e.magnitude then e.magnitude:copy_(e.magnitude * (lfl.rand(e.magnitude:size()) * 0.4 + 0.8)) end
    end
  end)
  local dir = root .. "peft/lfl_adapter_" .. c.model .. "_" .. c.method
  os.execute("rm -rf '" .. dir .. "'")
  lfl.peft.save_adapter(m, dir, "tests/golden/models/" .. c.model)
  print("wrote " .. dir)
end
