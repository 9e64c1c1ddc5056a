-- OFT sft of SmolLM2-135M-Instruct, as LlamaFactory's
-- examples/extras/oft/llama3_oft_sft.yaml (oft_block_size 32 on every linear,
-- learning rate 1e-4); everything else as recipes/examples/lora_sft.lua.
-- Run: lfl recipes/examples/oft_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
r.lora_rank = nil -- a LoRA setting: refused with finetuning_type oft
for k, v in pairs({finetuning_type = "oft", oft_block_size = 32, learning_rate = 1.0e-4,
                   output_dir = "saves/smollm2-135m/oft/sft"}) do r[k] = v end
return r
