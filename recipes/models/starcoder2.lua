-- StarCoder2 (BigCode): model_type starcoder2 (LayerNorm with biases, a
-- two-linear c_fc/c_proj MLP). Code base models: LlamaFactory registers no
-- template for them, so "default".
return {
  family = "starcoder2",
  title = "StarCoder2",
  model_type = "starcoder2",
  arch = {
    model_type = "starcoder2",
    traits = {norm = "layer", mlp = "plain", act = "gelu_tanh", window_all = true, tied = true},
    resolve = function(cfg, a)
      a.eps = cfg.norm_epsilon or 1e-5 -- its LayerNorm eps key
      -- use_bias (default true) puts a bias on every linear
      if cfg.use_bias ~= false then a.qkv_bias, a.o_bias, a.mlp_bias = true, true, true end
    end,
    gguf = {
      arch = "starcoder2", hf_class = "Starcoder2ForCausalLM",
      names = {ffn_up = "mlp.c_fc", ffn_down = "mlp.c_proj"},
      -- LayerNorm eps; convert writes no sliding window, and llama.cpp attends over everything
      config = function(cfg, meta, key, k)
        cfg.norm_epsilon = k("attention.layer_norm_epsilon", 1e-5)
        cfg.rms_norm_eps = nil
      end,
    },
  },
  template = "default",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"},
  checkpoints = {
    {name = "StarCoder2-3B", hub = "bigcode/starcoder2-3b", size = "3B"},
    {name = "StarCoder2-7B", hub = "bigcode/starcoder2-7b", size = "7B"},
    {name = "StarCoder2-15B", hub = "bigcode/starcoder2-15b", size = "15B"},
  },
}
