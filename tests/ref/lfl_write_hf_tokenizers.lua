-- Writes the Hugging Face tokenizer files lfl makes from GGUF vocabularies
-- (lfl.model.hf_files.write_tokenizer: tokenizer.json, tokenizer_config.json,
-- special_tokens_map.json) into OUT/<name>/, for tests/ref/make_hf_export_goldens.py
-- to load with transformers. Run by that script as
--   ./build/lfl tests/ref/lfl_write_hf_tokenizers.lua OUT
-- tests/lua/test_hf_save.lua writes the same files and checks lfl's encoding of
-- them against the goldens.
local out = assert(arg[1], "usage: lfl tests/ref/lfl_write_hf_tokenizers.lua OUT")
local hf_files = require("lfl.model.hf_files")
local V = lfl.home .. "/../shared/data/tokenizer-vectors/"
local cache = os.getenv("LFL_CACHE") or (os.getenv("HOME") .. "/.cache/lfl")

local sources = {smollm2 = cache .. "/models/SmolLM2-135M-Instruct.Q4_1.gguf"}
for _, name in ipairs{"llama-spm", "phi-3", "gpt-2", "mpt", "falcon", "deepseek-llm", "deepseek-coder",
                      "starcoder", "refact", "baichuan", "gpt-neox"} do
  sources[name] = V .. "ggml-vocab-" .. name .. ".gguf"
end
for name, src in pairs(sources) do
  local files = hf_files.write_tokenizer(src, out .. "/" .. name)
  print(string.format("%s: %s", name, table.concat(files, ", ")))
end
