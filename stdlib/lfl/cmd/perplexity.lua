-- `lfl perplexity --model <path|gguf|hub id> [--adapter DIR] --file text.txt
-- [--cutoff_len 1024] [--stride 512]`: sliding-window perplexity of a text
-- file (transformers' perplexity guide; lfl.predict.perplexity).
local fmt = string.format

local M = {help = "perplexity of a model (+ adapter) on a text file, with a sliding window"}

M.usage = [[
usage: lfl perplexity --model PATH|HUB_ID --file TEXT_FILE [options]
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder)
  --merge               merge the adapter into the weights instead of applying it live
  --file FILE           the text (read whole; tokenized with the tokenizer's special tokens, e.g. BOS)
  --cutoff_len N        window length in tokens (1024)
  --stride N            window step (512); each window scores only the tokens the previous one did not
Prints tokens, scored tokens, windows, nll (mean per scored token) and ppl = exp(nll).]]

local SPEC = {name = "lfl perplexity", usage = M.usage, flags = {"merge"},
  whole = {"cutoff_len", "stride"}, strings = {"model", "adapter", "device", "file"},
  rules = {stride = {type = "int", min = 1}}}

function M.parse(args)
  return require("lfl.cmd").parse_options(SPEC, args)
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  if not o.model or not o.file then error("lfl perplexity: --model and --file are required\n" .. M.usage, 0) end
  if (o.stride or 512) > (o.cutoff_len or 1024) then
    error(fmt("lfl perplexity: --stride (%d) must not exceed --cutoff_len (%d)", o.stride or 512, o.cutoff_len or 1024), 0)
  end
  local f, err = io.open(o.file, "rb")
  if not f then error(fmt("lfl perplexity: cannot read %s: %s", o.file, tostring(err)), 0) end
  local text = f:read("*a")
  f:close()
  local model = require("lfl.cmd.chat").load(o)
  local tok = lfl.chat.tokenizer(model)
  local t0 = lfl.sys.clock()
  local r = require("lfl.infer.predict").perplexity(model, tok, text, {cutoff_len = o.cutoff_len, stride = o.stride})
  print(fmt("tokens: %d", r.tokens))
  print(fmt("scored: %d", r.scored))
  print(fmt("windows: %d", r.windows))
  print(fmt("nll: %.6f", r.nll))
  print(fmt("ppl: %.4f", r.ppl))
  io.stderr:write(fmt("[lfl] %.1fs, %.0f tokens/s\n", lfl.sys.clock() - t0, r.tokens / math.max(1e-9, lfl.sys.clock() - t0)))
  return 0
end

return M
