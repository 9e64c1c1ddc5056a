-- Gemma 2 (Google): model_type gemma2 (gemma plus post-norms, soft-capping
-- and alternating sliding-window layers).
local ck = {}
for _, s in ipairs({"2B", "9B", "27B"}) do
  local l = s:lower()
  ck[#ck + 1] = {name = "Gemma-2-" .. s, hub = "google/gemma-2-" .. l, size = s}
  ck[#ck + 1] = {name = "Gemma-2-" .. s .. "-Instruct", hub = "google/gemma-2-" .. l .. "-it", size = s}
end
return {
  family = "gemma2",
  title = "Gemma 2",
  model_type = "gemma2",
  template = "gemma2",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = ck,
}
