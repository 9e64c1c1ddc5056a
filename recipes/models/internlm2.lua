-- InternLM2 / InternLM2.5 (Shanghai AI Lab): model_type internlm2, fused
-- wqkv, wo, feed_forward w1/w2/w3; the head is "output" (not a LoRA target).
-- LlamaFactory's "intern2" template is not bundled yet: "default" stands in.
local ck = {}
local function add(name, hub, size) ck[#ck + 1] = {name = name, hub = hub, size = size} end
for _, s in ipairs({"7B", "20B"}) do
  add("InternLM2-" .. s, "internlm/internlm2-" .. s:lower(), s)
  add("InternLM2-" .. s .. "-Chat", "internlm/internlm2-chat-" .. s:lower(), s)
end
for _, s in ipairs({"1.8B", "7B", "20B"}) do
  local l = s:lower():gsub("%.", "_")
  add("InternLM2.5-" .. s, "internlm/internlm2_5-" .. l, s)
  add("InternLM2.5-" .. s .. "-Chat", "internlm/internlm2_5-" .. l .. "-chat", s)
end
add("InternLM2.5-7B-1M-Chat", "internlm/internlm2_5-7b-chat-1m", "7B")
return {
  family = "internlm2",
  title = "InternLM2 / InternLM2.5",
  model_type = "internlm2",
  template = "default",
  lf_template = "intern2",
  -- lfl splits the fused layout into llama's names at load (stdlib/lfl/model/convert.lua),
  -- so LoRA targets (and saved adapters) use those names
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
