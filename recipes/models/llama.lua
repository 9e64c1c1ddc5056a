-- Llama 1/2/3/3.1/3.2 (Meta): the llama decoder layout. Checkpoint names and
-- hub ids follow LlamaFactory's registry (extras/constants.py); Llama 2 chat
-- models use the llama2 template, LLaMA 1 has none (default).
local L3 = "llama3"
return {
  family = "llama",
  title = "Llama 1/2/3/3.1/3.2",
  model_type = "llama",
  -- the decoder's architecture for config.json model_type "llama" (the base
  -- layout: no traits); llama.cpp permuted the q/k rows of its GGUF files
  arch = {
    model_type = "llama",
    traits = {},
    -- Mixtral comes as a llama file too (convert_hf_to_gguf's LlamaModel,
    -- conversion/llama.py): {arch}.expert_count > 0, each layer's experts
    -- stacked into ffn_{gate,up,down}_exps [n_expert, rows, cols] (w1, w3, w2),
    -- the router as ffn_gate_inp; it loads as model_type mixtral
    gguf = {
      arch = "llama", hf_class = "LlamaForCausalLM", permuted = true,
      names = {ffn_gate_inp = "block_sparse_moe.gate", ffn_gate_exps = "block_sparse_moe.experts.*.w1",
               ffn_up_exps = "block_sparse_moe.experts.*.w3", ffn_down_exps = "block_sparse_moe.experts.*.w2"},
      config = function(cfg, meta, key, k)
        local n = meta[key("expert_count")]
        if n and n > 0 then
          cfg.model_type, cfg.architectures = "mixtral", {"MixtralForCausalLM"}
          cfg.num_local_experts, cfg.num_experts_per_tok = n, k("expert_used_count")
        end
      end,
    },
  },
  template = L3,
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {
    {name = "LLaMA-7B", hub = "huggyllama/llama-7b", size = "7B", template = "default"},
    {name = "LLaMA-13B", hub = "huggyllama/llama-13b", size = "13B", template = "default"},
    {name = "Llama-2-7B", hub = "meta-llama/Llama-2-7b-hf", size = "7B", template = "llama2"},
    {name = "Llama-2-13B", hub = "meta-llama/Llama-2-13b-hf", size = "13B", template = "llama2"},
    {name = "Llama-2-70B", hub = "meta-llama/Llama-2-70b-hf", size = "70B", template = "llama2"},
    {name = "Llama-2-7B-Chat", hub = "meta-llama/Llama-2-7b-chat-hf", size = "7B", template = "llama2"},
    {name = "Llama-2-13B-Chat", hub = "meta-llama/Llama-2-13b-chat-hf", size = "13B", template = "llama2"},
    {name = "Llama-2-70B-Chat", hub = "meta-llama/Llama-2-70b-chat-hf", size = "70B", template = "llama2"},
    {name = "Llama-3-8B", hub = "meta-llama/Meta-Llama-3-8B", size = "8B"},
    {name = "Llama-3-70B", hub = "meta-llama/Meta-Llama-3-70B", size = "70B"},
    {name = "Llama-3-8B-Instruct", hub = "meta-llama/Meta-Llama-3-8B-Instruct", size = "8B"},
    {name = "Llama-3-70B-Instruct", hub = "meta-llama/Meta-Llama-3-70B-Instruct", size = "70B"},
    {name = "Llama-3.1-8B", hub = "meta-llama/Meta-Llama-3.1-8B", size = "8B"},
    {name = "Llama-3.1-70B", hub = "meta-llama/Meta-Llama-3.1-70B", size = "70B"},
    {name = "Llama-3.1-8B-Instruct", hub = "meta-llama/Meta-Llama-3.1-8B-Instruct", size = "8B"},
    {name = "Llama-3.1-70B-Instruct", hub = "meta-llama/Meta-Llama-3.1-70B-Instruct", size = "70B"},
    {name = "Llama-3.2-1B", hub = "meta-llama/Llama-3.2-1B", size = "1B"},
    {name = "Llama-3.2-3B", hub = "meta-llama/Llama-3.2-3B", size = "3B"},
    {name = "Llama-3.2-1B-Instruct", hub = "meta-llama/Llama-3.2-1B-Instruct", size = "1B"},
    {name = "Llama-3.2-3B-Instruct", hub = "meta-llama/Llama-3.2-3B-Instruct", size = "3B"},
  },
}
