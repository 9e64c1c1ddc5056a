-- QLoRA sft of SmolLM2-135M-Instruct, as LlamaFactory's
-- examples/train_qlora/*_otfq.yaml (on-the-fly bitsandbytes quantization: 4-bit
-- NF4 with double quantization, its defaults); everything else as
-- recipes/examples/lora_sft.lua. Run: lfl recipes/examples/qlora_sft.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
for k, v in pairs({quantization_bit = 4, quantization_method = "bnb", quantization_type = "nf4",
                   double_quantization = true, output_dir = "saves/smollm2-135m/qlora/sft"}) do r[k] = v end
return r
