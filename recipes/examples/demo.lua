-- The main job: LoRA SFT of SmolLM2-135M-Instruct on identity + alpaca-style
-- demo data (recipes/examples/lora_sft.lua), then asks the tuned model who it
-- is. Run: lfl recipes/examples/demo.lua [key=value ...]
local recipe = dofile(lfl.home .. "/recipes/examples/lora_sft.lua")
local overrides = {}
for i = 1, #arg do overrides[#overrides + 1] = arg[i] end
local run = require("lfl.cmd.train").run_table(recipe, overrides, "recipes/examples/demo.lua")

print("\n[lfl] adapter saved in " .. run.state.args.output_dir)
for _, q in ipairs({"Who are you?", "What is your name?"}) do
  local answer = lfl.generate.chat(run.model, run.tokenizer, run.template, {{role = "user", content = q}},
                                   {max_new_tokens = 40})
  print(string.format("User: %s\nAssistant: %s\n", q, answer))
end
