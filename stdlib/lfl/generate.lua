-- Text generation, first cut: greedy or sampled decoding that reruns the
-- forward over the whole sequence each step (no KV cache yet), stopping at
-- EOS or the template's stop words. Enough for demos and tests on short replies.
local lfl = lfl

local M = {}

-- prompt ids for a conversation, ending with the assistant opener
function M.prompt_ids(tok, tpl, messages, system, tools)
  local msgs = {}
  for _, m in ipairs(messages) do msgs[#msgs + 1] = m end
  msgs[#msgs + 1] = {role = "assistant", content = ""}
  local pairs = tpl:encode_ids(tok, msgs, system, tools)
  local ids = {}
  for i, p in ipairs(pairs) do
    for _, id in ipairs(p[1]) do ids[#ids + 1] = id end
    if i < #pairs then for _, id in ipairs(p[2]) do ids[#ids + 1] = id end end
  end
  return ids
end

local function stop_ids(tok, tpl)
  local s = {}
  if tok.eos_id then s[tok.eos_id] = true end
  for _, w in ipairs(tpl.stop_words or {}) do
    local id = tok:token_to_id(w)
    if id then s[id] = true end
  end
  return s
end

-- opts: max_new_tokens (64), temperature (0 = greedy), top_k, top_p, seed
function M.generate(model, tok, ids, opts, stops)
  opts = opts or {}
  local out = {}
  local seq = {}
  for i, id in ipairs(ids) do seq[i] = id end
  local temp = opts.temperature or 0
  if opts.seed then lfl.manual_seed(opts.seed) end
  for _ = 1, opts.max_new_tokens or 64 do
    local logits = lfl.no_grad(function() return model:forward(lfl.tensor({seq}, "i64")) end)
    local last = logits[1][#seq]
    local nxt
    if temp <= 0 then
      nxt = lfl.argmax(last, 1):item()
    else
      local p = (last * (1 / temp)):softmax(1)
      local r, acc = lfl.rand(1)[1], 0
      nxt = p:numel() - 1
      for i = 1, p:numel() do acc = acc + p[i]; if acc > r then nxt = i - 1; break end end
    end
    if stops and stops[nxt] then break end
    out[#out + 1] = nxt
    seq[#seq + 1] = nxt
  end
  return out
end

-- a reply to `messages` as text
function M.chat(model, tok, tpl, messages, opts)
  opts = opts or {}
  local ids = M.prompt_ids(tok, tpl, messages, opts.system, opts.tools)
  local out = M.generate(model, tok, ids, opts, stop_ids(tok, tpl))
  return tok:decode(out, {skip_special_tokens = true})
end

return M
