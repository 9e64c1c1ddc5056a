-- LoRA reward model of SmolLM2-135M-Instruct on the preference demo pairs: a
-- value head (v_head.summary, hidden -> 1) scores each answer at its last
-- token; saved as value_head.safetensors next to the adapter. Everything else
-- as recipes/examples/lora_dpo.lua. Mirrors LlamaFactory's
-- examples/train_lora/qwen3_lora_reward.yaml. Run: lfl recipes/examples/lora_rm.lua
local r = dofile(lfl.home .. "/recipes/examples/lora_dpo.lua")
r.pref_beta, r.pref_loss = nil, nil
for k, v in pairs({stage = "rm", learning_rate = 1e-3, output_dir = "saves/smollm2-135m/lora/reward"}) do r[k] = v end
return r
