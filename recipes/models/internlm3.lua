-- InternLM3 (Shanghai AI Lab): model_type internlm3, which transformers runs
-- as a llama; its qkv_bias / bias config keys name the biases (attention_bias,
-- mlp_bias). LlamaFactory's "intern3" template is not bundled yet: "default"
-- stands in.
return {
  family = "internlm3",
  title = "InternLM3",
  model_type = "internlm3",
  arch = {model_type = "internlm3", traits = {}},
  template = "default",
  lf_template = "intern3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "InternLM3-8B-Chat", hub = "internlm/internlm3-8b-instruct", size = "8B"},
  },
}
