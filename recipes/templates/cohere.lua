-- "cohere": Command-R turn tokens.
local T = require "lfl.text.template"
return {
  format_user = {"<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>"
    .. "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
  format_system = {"<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>"},
  format_prefix = {T.BOS},
}
