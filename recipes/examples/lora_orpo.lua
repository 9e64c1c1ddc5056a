-- LoRA ORPO of SmolLM2-135M-Instruct (reference-free: an SFT term on the
-- chosen answer plus pref_beta times the odds-ratio loss), everything else as
-- recipes/examples/lora_dpo.lua. LlamaFactory spells it stage dpo + pref_loss
-- orpo, which lfl accepts too. Run: lfl recipes/examples/lora_orpo.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_dpo.lua")
for k, v in pairs({stage = "orpo", pref_loss = "orpo", output_dir = "saves/smollm2-135m/lora/orpo"}) do r[k] = v end
return r
