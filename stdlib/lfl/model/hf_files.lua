-- The files of a Hugging Face model folder besides config.json and the weights:
-- the tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
-- and whatever else the source folder holds of it) and generation_config.json.
-- From an HF folder they are copied; from a GGUF file they are written from its
-- metadata, as transformers' save_pretrained would write them: tokenizer.json
-- is the pipeline lfl runs for the GGUF vocabulary (core/tokenizer/tok_save.c),
-- tokenizer_config.json carries the special tokens, chat_template, add_bos /
-- add_eos and model_max_length, generation_config.json the bos / eos ids.
--
--   hf_files.write_tokenizer(src, dir [, meta]) -> {file names written}
--   hf_files.write_generation_config(model, dir) -> "generation_config.json" or nil
--   hf_files.gguf_tokenizer_files(path [, meta]) -> {name = text} (nothing written)
local lfl = lfl
local fmt = string.format

local M = {}

-- what save_pretrained leaves of a tokenizer in a folder
M.TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                     "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"}

local function json(v) return lfl.json.encode(v, {indent = true}) .. "\n" end
local function write(path, text) lfl.fs.write(path, text) end

local function is_gguf(path)
  if path:match("%.gguf$") then return true end
  local f = io.open(path, "rb")
  if not f then return false end
  local magic = f:read(4)
  f:close()
  return magic == "GGUF"
end
M.is_gguf = is_gguf

-- metadata of a GGUF file; only its scalars are used here
local function gguf_meta(path) return lfl.gguf.read(path).metadata end

local function id_of(meta, key, n)
  local v = meta[key]
  if type(v) == "number" and v >= 0 and v < n then return v end
  return nil
end

-- The tokenizer files of a GGUF as {name = text}. The tokenizer.ggml.model must
-- be one lfl tokenizes (gpt2: byte-level BPE, llama: SentencePiece-style BPE).
function M.gguf_tokenizer_files(path, meta)
  meta = meta or gguf_meta(path)
  local kind = meta["tokenizer.ggml.model"]
  if kind == nil then
    error(fmt("%s: cannot write Hugging Face tokenizer files: the GGUF has no tokenizer (tokenizer.ggml.model); "
      .. "m:save(dir, {tokenizer = false}) saves the model without", path), 0)
  end
  if kind ~= "gpt2" and kind ~= "llama" then
    error(fmt("%s: cannot write Hugging Face tokenizer files: tokenizer.ggml.model '%s' is not supported "
      .. "(gpt2: byte-level BPE and llama: SentencePiece-style BPE are)", path, tostring(kind)), 0)
  end
  local ok, tok = pcall(lfl.tokenizer.load, path)
  if not ok then error(fmt("%s: cannot write Hugging Face tokenizer files: %s", path, tostring(tok)), 0) end
  local files = {["tokenizer.json"] = tok:to_json()}
  local n = tok:vocab_size()
  local added, by_id = {}, {}
  for _, a in ipairs(tok:added_tokens()) do
    local e = {content = a.content, lstrip = a.lstrip, normalized = a.normalized, rstrip = a.rstrip,
               single_word = a.single_word, special = a.special}
    added[tostring(a.id)], by_id[a.id] = e, e
  end
  -- the defaults are llama.cpp's: SentencePiece vocabularies add BOS, byte-level ones do not
  local function flag(key, default)
    local v = meta[key]
    if v == nil then return default end
    return v == true
  end
  local add_bos = flag("tokenizer.ggml.add_bos_token", kind == "llama")
  local add_eos = flag("tokenizer.ggml.add_eos_token", false)
  local cfg = {add_bos_token = add_bos, add_eos_token = add_eos, added_tokens_decoder = added,
    clean_up_tokenization_spaces = false, tokenizer_class = "PreTrainedTokenizerFast",
    chat_template = meta["tokenizer.chat_template"]}
  local arch = meta["general.architecture"]
  local ctx = arch and meta[arch .. ".context_length"]
  if type(ctx) == "number" then cfg.model_max_length = ctx end
  local map = {}
  for _, k in ipairs({"bos", "eos", "unk", "pad"}) do
    local key = ({bos = "bos_token_id", eos = "eos_token_id", unk = "unknown_token_id",
                  pad = "padding_token_id"})[k]
    local id = id_of(meta, "tokenizer.ggml." .. key, n)
    local s = id and tok:id_to_token(id)
    if s then
      cfg[k .. "_token"] = s
      local a = by_id[id]
      map[k .. "_token"] = a and {content = s, lstrip = a.lstrip, normalized = a.normalized, rstrip = a.rstrip,
                                  single_word = a.single_word} or s
    end
  end
  files["tokenizer_config.json"] = json(cfg)
  files["special_tokens_map.json"] = json(map)
  return files
end

-- generation_config.json of a GGUF: bos / eos (with the end-of-turn tokens
-- llama.cpp also stops at, as HF lists them) / pad ids
function M.gguf_generation_config(meta)
  local g = {bos_token_id = meta["tokenizer.ggml.bos_token_id"], pad_token_id = meta["tokenizer.ggml.padding_token_id"]}
  local eos, seen = {}, {}
  for _, k in ipairs({"eos_token_id", "eot_token_id", "eom_token_id"}) do
    local id = meta["tokenizer.ggml." .. k]
    if type(id) == "number" and not seen[id] then seen[id] = true; eos[#eos + 1] = id end
  end
  g.eos_token_id = #eos > 1 and eos or eos[1]
  if next(g) == nil then return nil end
  g._from_model_config = true
  return g
end

-- Writes the tokenizer files of src (an HF folder, a tokenizer.json with its
-- siblings, or a GGUF file) into dir; returns the names written.
function M.write_tokenizer(src, dir, meta)
  lfl.fs.mkdir(dir)
  local written = {}
  if is_gguf(src) then
    local files = M.gguf_tokenizer_files(src, meta)
    for _, name in ipairs(M.TOKENIZER_FILES) do
      if files[name] then write(dir .. "/" .. name, files[name]); written[#written + 1] = name end
    end
    return written
  end
  local folder = lfl.fs.isdir(src) and src or src:match("^(.*)/[^/]*$") or "."
  for _, name in ipairs(M.TOKENIZER_FILES) do
    local p = folder .. "/" .. name
    if lfl.fs.exists(p) then
      lfl.fs.copy(p, dir .. "/" .. name)
      written[#written + 1] = name
    end
  end
  return written
end

-- generation_config.json for a model saved into dir: the base folder's, the
-- GGUF's ids, or (a folder without one) the config's bos / eos / pad ids, as
-- transformers derives it from config.json
function M.write_generation_config(model, dir)
  local name = "generation_config.json"
  local src = model.path
  if src and not is_gguf(src) and lfl.fs.exists(src .. "/" .. name) then
    lfl.fs.copy(src .. "/" .. name, dir .. "/" .. name)
    return name
  end
  local g
  if src and is_gguf(src) then g = M.gguf_generation_config(model.gguf_metadata or gguf_meta(src)) end
  if not g then
    local c = model.config or {}
    g = {bos_token_id = c.bos_token_id, eos_token_id = c.eos_token_id, pad_token_id = c.pad_token_id}
    if next(g) == nil then return nil end
    g._from_model_config = true
  end
  write(dir .. "/" .. name, json(g))
  return name
end

return M
