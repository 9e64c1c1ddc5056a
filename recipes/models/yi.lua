-- Yi and Yi-1.5 (01.AI): the llama layout (model_type llama).
local ck = {}
local function add(name, hub, size) ck[#ck + 1] = {name = name, hub = hub, size = size} end
for _, s in ipairs({"6B", "9B", "34B"}) do add("Yi-" .. s, "01-ai/Yi-" .. s, s) end
for _, s in ipairs({"6B", "34B"}) do add("Yi-" .. s .. "-Chat", "01-ai/Yi-" .. s .. "-Chat", s) end
for _, s in ipairs({"6B", "9B", "34B"}) do
  add("Yi-1.5-" .. s, "01-ai/Yi-1.5-" .. s, s)
  add("Yi-1.5-" .. s .. "-Chat", "01-ai/Yi-1.5-" .. s .. "-Chat", s)
end
return {
  family = "yi",
  title = "Yi / Yi-1.5",
  model_type = "llama",
  template = "yi",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
