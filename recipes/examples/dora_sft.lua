-- dora sft of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/dora_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({use_dora = true, output_dir = "saves/smollm2-135m/dora/sft"}) do r[k] = v end
return r
