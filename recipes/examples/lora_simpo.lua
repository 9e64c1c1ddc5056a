-- LoRA SimPO of SmolLM2-135M-Instruct (reference-free, length-normalised
-- log-probs, margin simpo_gamma), everything else as recipes/examples/lora_dpo.lua.
-- LlamaFactory spells it stage dpo + pref_loss simpo. Run: lfl recipes/examples/lora_simpo.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_dpo.lua")
for k, v in pairs({stage = "simpo", pref_loss = "simpo", pref_beta = 2.0, simpo_gamma = 0.5,
                   output_dir = "saves/smollm2-135m/lora/simpo"}) do r[k] = v end
return r
