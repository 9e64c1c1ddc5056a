-- lfl.tokenizer: Hugging Face-compatible tokenizers (BPE, byte-level or
-- SentencePiece-style) loaded from a tokenizer.json, a model folder or a GGUF.
--
--   local tok = lfl.tokenizer.load("path/to/model")     -- folder, tokenizer.json or .gguf
--   local ids, offsets = tok:encode("Hello world")       -- offsets: {{start, stop}, ...}
--   tok:encode(text, {add_special_tokens = false, parse_special = false, offsets = false})
--   tok:decode(ids, {skip_special_tokens = true})
--   tok:encode_batch({"a", "b"})                         -- parallel over texts
--   tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id       -- nil when unknown
--
-- Ids keep their Hugging Face values (0-based). Offsets are byte offsets into
-- the text, 0-based with an exclusive end, so string.sub(text, s + 1, e) is the
-- span. Text that is not valid UTF-8 is tokenized as if each invalid sequence
-- were U+FFFD (Python's errors="replace").
local C = assert(lfl._tokenizer, "lfl.tokenizer: the C bridge is missing")
local methods, mt = C.methods, C.mt
local fmt = string.format

local M = {}

local fields = {
  bos_id = function(t) return (t:special_ids()) end,
  eos_id = function(t) local _, e = t:special_ids(); return e end,
  pad_id = function(t) local _, _, p = t:special_ids(); return p end,
  unk_id = function(t) local _, _, _, u = t:special_ids(); return u end,
}

mt.__index = function(t, k)
  local f = fields[k]
  if f then return f(t) end
  return methods[k]
end

-- {{id =, content =}, ...} of the special added tokens, in id order
function methods.special_tokens(t)
  local out = {}
  for _, a in ipairs(t:added_tokens()) do
    if a.special then out[#out + 1] = {id = a.id, content = a.content} end
  end
  return out
end

-- the token strings of a list of ids
function methods.convert_ids_to_tokens(t, ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = t:id_to_token(id) end
  return out
end

mt.__tostring = function(t)
  local bos, eos, pad = t:special_ids()
  local function name(id) return id and fmt("%d %q", id, t:id_to_token(id) or "?") or "none" end
  return fmt("Tokenizer(%s; bos %s, eos %s, pad %s)", t:describe(), name(bos), name(eos), name(pad))
end

-- path: a folder with tokenizer.json, a tokenizer.json file, or a .gguf file
function M.load(path)
  assert(type(path) == "string", "lfl.tokenizer.load: expected a path")
  return C.load(path)
end

function M.is_tokenizer(x) return getmetatable(x) == mt end

return M
