-- freeze sft of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/freeze_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({finetuning_type = "freeze", freeze_trainable_layers = 2, learning_rate = 1e-4, output_dir = "saves/smollm2-135m/freeze/sft"}) do r[k] = v end
return r
