-- pissa sft of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/pissa_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({pissa_init = true, pissa_iter = 16, pissa_convert = true, output_dir = "saves/smollm2-135m/pissa/sft"}) do r[k] = v end
return r
