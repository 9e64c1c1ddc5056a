-- lora pretrain of SmolLM2-135M-Instruct, as LlamaFactory's examples; everything
-- else as recipes/examples/lora_sft.lua. Run: lfl recipes/examples/lora_pretrain.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({stage = "pt", dataset = "pretrain_demo", template = nil, cutoff_len = 128, output_dir = "saves/smollm2-135m/lora/pretrain"}) do r[k] = v end
return r
