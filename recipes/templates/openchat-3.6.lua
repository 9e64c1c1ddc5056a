-- "openchat-3.6": OpenChat 3.6: GPT4 Correct roles in Llama 3 headers.
local T = require "lfl.text.template"
return {
  format_user = {"<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n"
    .. "{{content}}<|eot_id|><|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n"},
  format_prefix = {T.BOS},
  stop_words = {"<|eot_id|>"},
}
