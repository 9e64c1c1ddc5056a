-- "yuan": Yuan 2.0 (IEIT): <sep> after the query, <eod> after the answer.
local T = require "lfl.text.template"
return {
  format_user = {"{{content}}", T.token("<sep>")},
  format_assistant = {"{{content}}<eod>\n"},
  stop_words = {"<eod>"},
}
