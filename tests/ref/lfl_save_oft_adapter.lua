-- Writes an OFT adapter with lfl.oft.save (tests/golden/peft/lfl_adapter_llama_oft/:
-- oft_rank 2 on q_proj, v_proj, down_proj of the tiny llama, parameters ~ N(0, 0.1))
-- that tests/ref/make_oft_goldens.py loads with PEFT to record PEFT's logits for
-- it; tests/lua/test_oft.lua checks lfl's logits against those.
-- Run as ./build/lfl tests/ref/lfl_save_oft_adapter.lua, then the python script.
local root = lfl.home .. "/tests/golden/"
lfl.manual_seed(2025)
local m = lfl.model.load(root .. "models/llama")
local ad = lfl.oft.add(m, {rank = 2, block_size = 0, target = {"q_proj", "v_proj", "down_proj"}})
lfl.no_grad(function()
  for _, mod in ipairs(ad.modules) do ad.weights[mod]:normal_(0, 0.1) end
end)
local dir = root .. "peft/lfl_adapter_llama_oft"
lfl.fs.remove(dir)
lfl.oft.save(m, dir, "tests/golden/models/llama")
print("wrote " .. dir)
