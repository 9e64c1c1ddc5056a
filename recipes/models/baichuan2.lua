-- Baichuan2 (Baichuan Inc.): config model_type "baichuan", fused W_pack
-- (q/k/v) and llama-style o_proj/gate/up/down. LlamaFactory's "baichuan2"
-- template is not bundled yet: "default" stands in.
return {
  family = "baichuan2",
  title = "Baichuan2",
  model_type = "baichuan",
  template = "default",
  lf_template = "baichuan2",
  -- lfl splits the fused layout into llama's names at load (stdlib/lfl/model/convert.lua),
  -- so LoRA targets (and saved adapters) use those names
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "Baichuan2-7B-Base", hub = "baichuan-inc/Baichuan2-7B-Base", size = "7B"},
    {name = "Baichuan2-13B-Base", hub = "baichuan-inc/Baichuan2-13B-Base", size = "13B"},
    {name = "Baichuan2-7B-Chat", hub = "baichuan-inc/Baichuan2-7B-Chat", size = "7B"},
    {name = "Baichuan2-13B-Chat", hub = "baichuan-inc/Baichuan2-13B-Chat", size = "13B"},
  },
}
