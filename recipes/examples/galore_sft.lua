-- galore sft of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/galore_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({finetuning_type = "full", use_galore = true, galore_rank = 16, galore_target = "all", learning_rate = 1e-5, output_dir = "saves/smollm2-135m/galore/sft"}) do r[k] = v end
return r
