-- badam sft of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/badam_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({finetuning_type = "full", use_badam = true, badam_mode = "layer", badam_switch_mode = "ascending", badam_switch_interval = 10, learning_rate = 1e-5, output_dir = "saves/smollm2-135m/badam/sft"}) do r[k] = v end
return r
