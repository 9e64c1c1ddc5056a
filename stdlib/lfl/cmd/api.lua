-- `lfl api`: llamafactory-cli api's name for `lfl serve` (the OpenAI-compatible
-- server), with the same options, recipe form (`lfl api recipe.yaml [key=value]`)
-- and LlamaFactory's variables API_HOST, API_PORT, API_KEY, API_MODEL_NAME.
local serve = require("lfl.cmd.serve")

return {
  help = "the OpenAI-compatible API server under llamafactory-cli's name (the same as serve)",
  usage = (serve.usage:gsub("lfl serve", "lfl api")),
  run = function(args) return serve.run(args) end,
}
