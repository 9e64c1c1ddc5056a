-- Vocabulary growth as LlamaFactory does it (model/model_utils/embedding.py):
-- tokens added to the tokenizer (add_tokens / add_special_tokens), then the
-- input embedding and the untied output head resized to len(tokenizer)
-- rounded up to a multiple of 64 (transformers' resize_token_embeddings with
-- pad_to_multiple_of=64, mean_resizing=False), the new rows initialised as
-- the mean of the existing rows plus N(0, 1/sqrt(hidden)) noise
-- (_noisy_mean_initialization, "noise_init"). A tied head shares the
-- embedding, so it follows.
--
--   local R = require "lfl.model.resize"
--   R.embeddings(model, tok:vocab_size(), {seed = 42})  -- {old =, new =, added =}
--   local dir, ids = R.add_tokens("path/to/model", "out/dir", {"<a>"}, {"<tool>"})
local lfl = lfl
local fmt, concat, ceil, sqrt = string.format, table.concat, math.ceil, math.sqrt

local M = {}

M.PAD_TO_MULTIPLE_OF = 64

-- the first present name of the input embedding / output head (HF names of
-- the llama family, internlm2's tok_embeddings / output, GPT-style wte)
local EMBED_NAMES = {"model.embed_tokens.weight", "model.tok_embeddings.weight", "transformer.wte.weight"}
local HEAD_NAMES = {"lm_head.weight", "output.weight"}

local function first_param(model, names)
  for _, n in ipairs(names) do if model.params[n] then return n end end
  return nil
end

local FLOAT = {f32 = true, f64 = true, bf16 = true, f16 = true}

-- rows = mean(existing rows of w) + noise, as a [n, H] tensor of w's compute dtype.
-- skip: 0-based row ids (inside w) that are being initialised, left out of the mean
local function noisy_mean_rows(w, n, skip)
  local H = w:size()[2]
  local base
  if skip and #skip > 0 then
    local drop, keep = {}, {}
    for _, id in ipairs(skip) do drop[id] = true end
    for r = 0, w:size()[1] - 1 do if not drop[r] then keep[#keep + 1] = r end end
    base = lfl.index_select(w, 1, lfl.tensor(keep, "i64"))
  else
    base = w
  end
  local mean = lfl.mean(base, 1, true) -- [1, H]
  local noise = lfl.zeros({n, H}, w:dtype()):normal_(0, 1 / sqrt(H))
  return noise + mean
end

-- resized copy of w [V, H] with N rows: old rows as they were, rows V..N-1
-- and the in-range rows of init_ids set to the noisy mean
local function grow(w, N, init_ids)
  local dt = w:dtype()
  local x = w:detach()
  if dt ~= "f32" and dt ~= "f64" then x = x:to("f32") end
  x = x:contiguous()
  local V = x:size()[1]
  local inside = {}
  for _, id in ipairs(init_ids or {}) do if id < V then inside[#inside + 1] = id end end
  local out = x
  if N > V then out = lfl.cat({x, noisy_mean_rows(x, N - V, inside)}, 1)
  else out = x:clone() end
  if #inside > 0 then
    -- tokens that landed in rows the checkpoint already padded: initialised in place
    local rows = noisy_mean_rows(x, #inside, inside)
    for i, id in ipairs(inside) do out:narrow(1, id + 1, 1):copy_(rows:narrow(1, i, 1)) end
  end
  if out:dtype() ~= dt then out = out:to(dt) end
  return out
end

-- embeddings(model, new_len, opts): grows the vocabulary to hold new_len
-- tokens. Nothing happens when the embedding already has new_len rows or
-- more (apart from opts.token_ids rows inside it, which are initialised).
-- opts: seed (noise from its own stream; the global one is left as it was),
-- pad_to_multiple_of (64), token_ids (0-based ids of the added tokens).
-- Updates model.params, model.config.vocab_size and model.arch.vocab.
-- Returns {old =, new =, added =}.
function M.embeddings(model, new_len, opts)
  opts = opts or {}
  if type(new_len) ~= "number" or new_len < 1 or new_len ~= math.floor(new_len) then
    error(fmt("resize.embeddings: new_len must be a positive integer, got %s", tostring(new_len)), 2)
  end
  local ename = first_param(model, EMBED_NAMES)
  if not ename then
    error(fmt("resize.embeddings: no input embedding (%s) in this %s model", concat(EMBED_NAMES, ", "),
      tostring(model.arch and model.arch.name)), 0)
  end
  local E = model.params[ename]
  local V = E:size()[1]
  if not FLOAT[E:dtype()] then
    error(fmt("resize.embeddings: cannot resize the embeddings of a quantized model (%s is %s)", ename, E:dtype()), 0)
  end
  local pad = opts.pad_to_multiple_of or M.PAD_TO_MULTIPLE_OF
  local N = V
  if new_len > V then N = pad > 1 and ceil(new_len / pad) * pad or new_len end
  local ids = opts.token_ids or {}
  if N == V and #ids == 0 then return {old = V, new = V, added = 0} end
  local tied = model.arch and model.arch.tied
  local hname = first_param(model, HEAD_NAMES)
  if hname and not tied and not FLOAT[model.params[hname]:dtype()] then
    error(fmt("resize.embeddings: cannot resize the quantized output head %s", hname), 0)
  end
  local saved_a, saved_b
  if opts.seed then saved_a, saved_b = lfl.rng_state(); lfl.manual_seed(opts.seed) end
  local ok, err = pcall(function()
    local newE = grow(E, N, ids)
    local newH
    if hname and not tied then newH = grow(model.params[hname], N, ids) end
    model.params[ename] = newE
    if hname then model.params[hname] = tied and newE or newH end
  end)
  if opts.seed then lfl.rng_state(saved_a, saved_b) end
  if not ok then error(err, 0) end
  if model.config then model.config.vocab_size = N end
  if model.arch then model.arch.vocab = N end
  return {old = V, new = N, added = N - V}
end

-- ---- adding tokens to a tokenizer.json ----

local read_file = lfl.read_file

local function write_atomic(path, text) require("lfl.model").write_atomic(path, text) end

-- the position of the "]" closing the JSON array that opens at s[i] == "["
local function array_end(s, i)
  local depth, n = 0, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' then
      i = i + 1
      while i <= n do
        local d = s:sub(i, i)
        if d == "\\" then i = i + 1 elseif d == '"' then break end
        i = i + 1
      end
    elseif c == "[" or c == "{" then depth = depth + 1
    elseif c == "]" or c == "}" then
      depth = depth - 1
      if depth == 0 then return i end
    end
    i = i + 1
  end
  return nil
end

local function split_list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  local out = {}
  for t in tostring(v):gmatch("[^,]+") do
    t = t:match("^%s*(.-)%s*$")
    if t ~= "" then out[#out + 1] = t end
  end
  return out
end
M.split_list = split_list

-- add_tokens(src, out_dir, tokens, special_tokens): writes out_dir/tokenizer.json
-- (src's, a model folder, a tokenizer.json or a GGUF file, with the tokens appended to
-- added_tokens as HF's add_tokens / add_special_tokens do: ids from
-- len(tokenizer) up, tokens already known skipped) and copies
-- tokenizer_config.json / special_tokens_map.json. Returns out_dir, the new
-- token ids (0-based, in order) and the tokenizer loaded from out_dir.
function M.add_tokens(src, out_dir, tokens, special_tokens)
  local hf_files = require("lfl.model.hf_files")
  if hf_files.is_gguf(src) then
    -- a GGUF's vocabulary becomes tokenizer.json & co. in out_dir first, then grows there
    hf_files.write_tokenizer(src, out_dir)
    src = out_dir
  end
  local tj = src:match("%.json$") and src or (src .. "/tokenizer.json")
  local text = read_file(tj)
  if not text then
    error(fmt("add_tokens: %s: cannot read (adding tokens needs a Hugging Face tokenizer.json)", tj), 0)
  end
  local tok = lfl.tokenizer.load(tj)
  local next_id = tok:vocab_size()
  local entries, ids, added, seen = {}, {}, {}, {}
  local function add(list, special)
    for _, t in ipairs(split_list(list)) do
      if type(t) ~= "string" or t == "" then error("add_tokens: tokens must be non-empty strings", 0) end
      if not seen[t] and tok:token_to_id(t) == nil then
        seen[t] = true
        entries[#entries + 1] = fmt('{"id":%d,"content":%s,"single_word":false,"lstrip":false,"rstrip":false,'
          .. '"normalized":%s,"special":%s}', next_id, lfl.json.encode(t), special and "false" or "true",
          special and "true" or "false")
        ids[#ids + 1] = next_id
        added[#added + 1] = t
        next_id = next_id + 1
      end
    end
  end
  add(tokens, false)
  add(special_tokens, true)
  lfl.fs.mkdir(out_dir)
  local dir = src:match("%.json$") and src:match("^(.*)/[^/]*$") or src
  if #entries > 0 then
    local a, b = text:find('"added_tokens"%s*:%s*%[')
    if not a then error(fmt("add_tokens: %s: no \"added_tokens\" array", tj), 0) end
    local close = array_end(text, b)
    if not close then error(fmt("add_tokens: %s: the added_tokens array is not closed", tj), 0) end
    local empty = not text:sub(b + 1, close - 1):find("%S")
    text = text:sub(1, close - 1) .. (empty and "" or ",") .. concat(entries, ",") .. text:sub(close)
  end
  write_atomic(out_dir .. "/tokenizer.json", text)
  for _, f in ipairs({"tokenizer_config.json", "special_tokens_map.json"}) do
    local s = dir and read_file(dir .. "/" .. f)
    if s and dir ~= out_dir then write_atomic(out_dir .. "/" .. f, s) end
  end
  local newtok = lfl.tokenizer.load(out_dir)
  for i, t in ipairs(added) do
    if newtok:token_to_id(t) ~= ids[i] then
      error(fmt("add_tokens: %s/tokenizer.json: token %q should have id %d, the tokenizer gives %s", out_dir, t,
        ids[i], tostring(newtok:token_to_id(t))), 0)
    end
  end
  return out_dir, ids, newtok
end

-- The trainer's step (LlamaFactory's patch_tokenizer + resize_embedding_layer):
-- add a.add_tokens / a.add_special_tokens (comma lists) to the tokenizer,
-- written to a.output_dir, and with them or a.resize_vocab grow the model's
-- embeddings to the tokenizer. Returns the tokenizer and the path it was
-- loaded from.
function M.from_args(model, tok, a)
  local tok_path = model.path
  local ids = {}
  if a.add_tokens or a.add_special_tokens then
    if not model.path then error("add_tokens: the model has no folder to read tokenizer.json from", 0) end
    local out = a.output_dir or "saves/lfl-run"
    tok_path, ids, tok = M.add_tokens(model.path, out, a.add_tokens, a.add_special_tokens)
    print(fmt("[lfl] added %d token(s) to the tokenizer (now %d); saved to %s/tokenizer.json", #ids,
      tok:vocab_size(), out))
  end
  local E = first_param(model, EMBED_NAMES)
  local rows = E and model.params[E]:size()[1] or 0
  local len = tok:vocab_size()
  if len > rows and a.finetuning_type == "lora" then
    error(fmt("resize_vocab: the tokenizer has %d tokens and the embedding %d rows; LlamaFactory trains the "
      .. "resized embed_tokens/lm_head as modules_to_save, which lfl's LoRA does not support yet: use "
      .. "finetuning_type full (or freeze with freeze_extra_modules: embed_tokens,lm_head)", len, rows), 0)
  end
  local r = M.embeddings(model, len, {seed = a.seed, token_ids = ids})
  if r.added > 0 then
    print(fmt("[lfl] resized the token embeddings %d -> %d (len(tokenizer) %d rounded up to a multiple of %d; "
      .. "new rows = mean + N(0, 1/sqrt(hidden)))", r.old, r.new, len, M.PAD_TO_MULTIPLE_OF))
  end
  return tok, tok_path
end

return M
