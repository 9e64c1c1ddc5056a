-- "telechat2": TeleChat2 (China Telecom): <_user> / <_bot> turns.
local T = require "lfl.text.template"
return {
  format_user = {"<_user>{{content}}<_bot>"},
  format_system = {"<_system>{{content}}"},
  default_system = "你是中国电信星辰语义大模型，英文名是TeleChat，你是由中电信人工智能科技有限公司和中国电信人工智能研究院（TeleAI）研发的人工智能助手。",
}
