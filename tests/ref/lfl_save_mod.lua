-- Writes a mixture-of-depths model with lfl (tests/golden/mod/lfl_saved/): the
-- golden plain llama converted by lfl.model.mod.convert (routers from lfl's
-- generator, scaled x8 as make_mod_goldens.py scales the MoD package's) and
-- saved by Model:save, the trainer's final save of a full run; that script
-- then loads it with the MoD package's AutoMoDModelForCausalLM.from_pretrained
-- (LlamaFactory's `load`) and records its logits; tests/lua/test_mod.lua
-- checks lfl's logits against those.
-- Run as ./build/lfl tests/ref/lfl_save_mod.lua, then the python script.
local root = lfl.home .. "/tests/golden/mod/"
lfl.manual_seed(2026)
local m = lfl.model.load(root .. "llama_plain")
require("lfl.model.mod").convert(m)
lfl.no_grad(function()
  for _, l in ipairs({1, 3}) do
    local w = m.params[("model.layers.%d.router.weight_predictor.weight"):format(l)]
    w:copy_(w * 8)
  end
end)
local dir = root .. "lfl_saved"
lfl.fs.remove(dir)
m:save(dir, {tokenizer = false})
print("wrote " .. dir)
