-- Ministral 3 and the text decoder of Mistral Small / Medium 3.x (Mistral AI):
-- model_type ministral3 (a text-only Ministral3ForCausalLM, or the text_config
-- of a Mistral3 checkpoint saved on its own). Mistral's layout with YaRN rotary
-- and Llama 4's query scale 1 + llama_4_scaling_beta * log(1 + floor(pos /
-- original_max_position_embeddings)) past the original context.
local fmt = string.format

return {
  family = "ministral3",
  title = "Ministral 3 (text)",
  model_type = "ministral3",
  arch = {
    model_type = "ministral3",
    traits = {window_all = true},
    resolve = function(cfg, a)
      local rp = cfg.rope_parameters
      if rp == nil or rp == lfl.json.null then rp = cfg.rope_scaling end
      if type(rp) ~= "table" then
        error("config.json: rope_parameters is missing (Ministral 3 sets its YaRN parameters there)", 0)
      end
      local beta = rp.llama_4_scaling_beta
      if beta ~= nil and beta ~= lfl.json.null then
        local omax = rp.original_max_position_embeddings
        if type(beta) ~= "number" or type(omax) ~= "number" or omax < 1 then
          error(fmt("config.json: rope_parameters.llama_4_scaling_beta %s needs a number and " ..
            "original_max_position_embeddings >= 1 (got %s)", tostring(beta), tostring(omax)), 0)
        end
        a.q_pos_scale = {beta = beta, omax = omax}
      end
    end,
  },
  template = "ministral3",
  lora_target = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
  checkpoints = {},
  no_checkpoints = "the Hub's Ministral 3 checkpoints are Mistral3 (vision + text) folders whose language model lfl " ..
    "loads (lfl.model.wrapper), but none was tried here, so none is listed; a text-only Ministral3ForCausalLM " ..
    "folder loads too",
}
