-- StarCoder2 (BigCode): model_type starcoder2 (LayerNorm with biases, a
-- two-linear c_fc/c_proj MLP). Code base models: LlamaFactory registers no
-- template for them, so "default".
return {
  family = "starcoder2",
  title = "StarCoder2",
  model_type = "starcoder2",
  template = "default",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"},
  checkpoints = {
    {name = "StarCoder2-3B", hub = "bigcode/starcoder2-3b", size = "3B"},
    {name = "StarCoder2-7B", hub = "bigcode/starcoder2-7b", size = "7B"},
    {name = "StarCoder2-15B", hub = "bigcode/starcoder2-15b", size = "15B"},
  },
}
