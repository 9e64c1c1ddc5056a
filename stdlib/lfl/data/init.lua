-- Datasets: descriptions (LlamaFactory's dataset_info.json, or Lua modules in
-- recipes/datasets/ with optional mapper functions), loading of JSON/JSONL/CSV/
-- text files and folders, aligning alpaca/sharegpt/openai/preference/KTO records
-- to the canonical form, validation (skipped rows counted by reason, or an
-- error naming file and row in strict mode), merging, max_samples, val_size.
--
-- Canonical example:
--   {prompt = {{role=, content=}, ...} (odd length, ends with user/observation),
--    response = {{role="assistant", content=}} (2 for ranking: chosen, rejected;
--               2 for KTO: {answer, ""} desirable / {"", answer} undesirable),
--    system = "...", tools = "...", kto_tag = true|false|nil, src = "file:row"}
local lfl = lfl
local fmt, concat = string.format, table.concat

local M = {}

local ROLE = {user = "user", assistant = "assistant", system = "system", function_ = "function",
              observation = "observation"}
M.ROLE = ROLE

-- ---------------------------------------------------------------- files

local function read_file(path)
  local s, err = lfl.read_file(path)
  if not s then error(fmt("%s: cannot read: %s", path, tostring(err)), 0) end
  return s
end

local function is_dir(path) return lfl.fs.isdir(path) end

local function list_dir(path)
  if not lfl.fs.isdir(path) then return {} end
  return lfl.fs.list(path)
end

local function ext_of(path) return (path:match("%.([%w]+)$") or ""):lower() end

-- RFC 4180 CSV: header row gives the column names
local function parse_csv(text, path)
  local rows, row, field, i, n = {}, {}, {}, 1, #text
  local in_quotes = false
  local line = 1
  while i <= n do
    local c = text:sub(i, i)
    if in_quotes then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
        else in_quotes = false end
      else
        if c == "\n" then line = line + 1 end
        field[#field + 1] = c
      end
    elseif c == '"' then
      in_quotes = true
    elseif c == "," then
      row[#row + 1] = concat(field); field = {}
    elseif c == "\n" or c == "\r" then
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      row[#row + 1] = concat(field); field = {}
      rows[#rows + 1] = row; row = {}
      line = line + 1
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if in_quotes then error(fmt("%s: line %d: unterminated quoted field", path, line), 0) end
  if #field > 0 or #row > 0 then row[#row + 1] = concat(field); rows[#rows + 1] = row end
  local header = rows[1]
  if not header then return {} end
  local out = {}
  for r = 2, #rows do
    local rec = {}
    if not (#rows[r] == 1 and rows[r][1] == "") then
      if #rows[r] ~= #header then
        error(fmt("%s: row %d has %d fields, the header has %d", path, r, #rows[r], #header), 0)
      end
      for k = 1, #header do rec[header[k]] = rows[r][k] end
      out[#out + 1] = rec
    end
  end
  return out
end
M.parse_csv = parse_csv

-- Records of one file: a list of tables, each with .__row (1-based) for messages.
function M.read_records(path, text_column)
  local ext = ext_of(path)
  local recs = {}
  if ext == "json" then
    local v = lfl.json.decode(read_file(path), path)
    if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
      error(fmt("%s: expected a JSON array of records", path), 0)
    end
    recs = v
  elseif ext == "jsonl" then
    local n = 0
    for line in io.lines(path) do
      n = n + 1
      if line:match("%S") then
        local ok, v = pcall(lfl.json.decode, line, path .. ":" .. n)
        if not ok then error(fmt("%s: line %d: invalid JSON", path, n), 0) end
        recs[#recs + 1] = v
      end
    end
  elseif ext == "csv" then
    recs = parse_csv(read_file(path), path)
  elseif ext == "txt" then
    local col = text_column or "text"
    for line in io.lines(path) do
      if line:match("%S") then recs[#recs + 1] = {[col] = line} end
    end
  else
    error(fmt("%s: unsupported file type '.%s' (json, jsonl, csv, txt)", path, ext), 0)
  end
  return recs
end

-- ---------------------------------------------------------------- descriptions

local DEFAULT_TAGS = {role_tag = "from", content_tag = "value", user_tag = "human", assistant_tag = "gpt",
                      observation_tag = "observation", function_tag = "function_call", system_tag = "system"}

-- Normalises a dataset_info.json entry (or a Lua description) into an attr table.
function M.attr(name, info, where)
  if type(info) ~= "table" then error(fmt("%s: dataset '%s' is not an object", where, name), 0) end
  local a = {name = name, where = where}
  for _, k in ipairs({"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name"}) do
    if info[k] then a.load_from, a.source = k, info[k]; break end
  end
  if info.mapper then a.mapper = info.mapper end
  if info.records then a.load_from, a.records = "records", info.records end
  if not a.load_from and not a.mapper then
    error(fmt("%s: dataset '%s' has no file_name, hf_hub_url, ... to load from", where, name), 0)
  end
  a.formatting = info.formatting or "alpaca"
  if a.formatting ~= "alpaca" and a.formatting ~= "sharegpt" and a.formatting ~= "openai" then
    error(fmt("%s: dataset '%s': formatting '%s' (alpaca, sharegpt or openai)", where, name, tostring(a.formatting)), 0)
  end
  a.ranking = info.ranking == true
  a.subset, a.split, a.folder, a.num_samples = info.subset, info.split or "train", info.folder, info.num_samples
  a.revision = info.revision
  local cols = info.columns or {}
  a.columns = {}
  if a.formatting == "alpaca" then
    a.columns.prompt = cols.prompt or "instruction"
    a.columns.query = cols.query or "input"
    a.columns.response = cols.response or "output"
    a.columns.history = cols.history
  else
    a.columns.messages = cols.messages or "conversations"
  end
  for _, k in ipairs({"system", "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag"}) do
    a.columns[k] = cols[k]
  end
  a.tags = {}
  local tags = info.tags or {}
  for k, v in pairs(DEFAULT_TAGS) do a.tags[k] = tags[k] or v end
  if a.formatting == "openai" and not info.tags then
    a.tags = {role_tag = "role", content_tag = "content", user_tag = "user", assistant_tag = "assistant",
              observation_tag = "tool", function_tag = "function_call", system_tag = "system"}
  end
  return a
end

-- Lua descriptions recipes/datasets/<name>.lua found by lfl.recipes (LFL_PATH
-- entries, ~/.lfl/recipes, bundled) win over dataset_info.json entries of the
-- same name; their files are relative to their `dir` (default recipes/data/).
function M.describe(name, dataset_dir, inline)
  if inline and inline[name] then return M.attr(name, inline[name], "recipe") end
  local R = require("lfl.recipes")
  local path = R.valid_name(name) and R.find("datasets", name)
  if path then
    local mod = R.run(path)
    local a = M.attr(name, mod, path)
    a.dir = mod.dir or (lfl.home .. "/recipes/data")
    return a
  end
  local dir = dataset_dir or (lfl.home .. "/recipes/data")
  local info_path = dir .. "/dataset_info.json"
  local f = io.open(info_path, "rb")
  if not f then
    error(fmt("dataset '%s': no recipes/datasets/%s.lua (lfl recipes datasets lists them) and no %s", name, name,
      info_path), 0)
  end
  f:close()
  local info = lfl.json.decode(read_file(info_path), info_path)
  if not info[name] then
    local names = {}
    for k in pairs(info) do names[#names + 1] = k end
    table.sort(names)
    error(fmt("%s: no dataset named '%s' (it has: %s)", info_path, name, concat(names, ", ")), 0)
  end
  local a = M.attr(name, info[name], info_path)
  a.dir = dir
  return a
end

-- ---------------------------------------------------------------- aligning

local Skip = {} -- error object marker for skipped rows
local function skip(reason) error(setmetatable({reason = reason}, Skip), 0) end

-- A field of the wrong type is refused, not skipped: LlamaFactory's
-- converters hand such a value to "\n".join / the template formatters, which
-- raise (TypeError, "Expected a string"), and lfl would otherwise train on
-- "table: 0x..." or a stringified number. align_record adds the file:row.
local Refuse = {}
local function refuse(msg) error(setmetatable({msg = msg}, Refuse), 0) end

-- a JSON value's kind, as the refusal names it
local function kind_of(v)
  local tv = type(v)
  if tv == "table" then
    if getmetatable(v) == lfl.json.Int then return "a number (" .. tostring(v) .. ")" end
    return (v[1] ~= nil or next(v) == nil) and "a list (JSON array)" or "an object (JSON object)"
  end
  if tv == "number" then return fmt("a number (%s)", require("lfl.text.pyjson").number_repr(v)) end
  if tv == "boolean" then return "a boolean (" .. tostring(v) .. ")" end
  return "a " .. tv
end

-- a text field: the string, or nil when absent or null; anything else is refused
local function text_field(v, what)
  if v == nil or v == lfl.json.null then return nil end
  if type(v) ~= "string" then refuse(fmt("%s is %s where a string is expected", what, kind_of(v))) end
  return v
end
M.text_field = text_field

-- the kto_tag of a row for stage kto: a boolean, or the load stops
local function kto_tag_of(r, col)
  local tag = r[col]
  if type(tag) ~= "boolean" then
    refuse(fmt("stage kto needs column '%s' (kto_tag) to be true (desirable) or false (undesirable), got %s",
      col, tag == nil and "no value" or type(tag) .. " " .. tostring(tag)))
  end
  return tag
end

local function col(name) return fmt("column '%s'", name) end

local function tools_text(v)
  if v == nil or v == lfl.json.null then return "" end
  if type(v) == "table" then return lfl.json.encode(v) end
  return tostring(v)
end

local function align_alpaca(a, r)
  local c = a.columns
  local prompt = {}
  local hist = c.history and r[c.history]
  if hist and hist ~= lfl.json.null then
    if type(hist) ~= "table" then skip("history is not a list") end
    for k, pair in ipairs(hist) do
      if type(pair) ~= "table" or #pair ~= 2 then skip("history entries must be [query, answer] pairs") end
      local what = fmt("%s entry %d", col(c.history), k)
      prompt[#prompt + 1] = {role = "user", content = text_field(pair[1], what .. " (query)") or ""}
      prompt[#prompt + 1] = {role = "assistant", content = text_field(pair[2], what .. " (answer)") or ""}
    end
  end
  local parts = {}
  local p, q = text_field(r[c.prompt], col(c.prompt)), text_field(r[c.query], col(c.query))
  if p and p ~= "" then parts[#parts + 1] = p end
  if q and q ~= "" then parts[#parts + 1] = q end
  prompt[#prompt + 1] = {role = "user", content = concat(parts, "\n")}
  local response
  if a.kto and c.kto_tag then
    local ans = text_field(r[c.response], col(c.response)) or ""
    local tag = kto_tag_of(r, c.kto_tag)
    response = tag and {{role = "assistant", content = ans}, {role = "assistant", content = ""}}
                    or {{role = "assistant", content = ""}, {role = "assistant", content = ans}}
  elseif a.ranking then
    local ch, rj = text_field(r[c.chosen], col(c.chosen)), text_field(r[c.rejected], col(c.rejected))
    if not ch or not rj then skip("chosen/rejected must be strings") end
    response = {{role = "assistant", content = ch}, {role = "assistant", content = rj}}
  else
    local o = text_field(r[c.response], col(c.response))
    response = o and {{role = "assistant", content = o}} or {}
  end
  return {prompt = prompt, response = response, system = text_field(c.system and r[c.system], col(c.system)) or "",
          tools = tools_text(c.tools and r[c.tools]), kto_tag = c.kto_tag and r[c.kto_tag] or nil}
end

local function align_sharegpt(a, r)
  local c, tg = a.columns, a.tags
  local msgs = r[c.messages]
  if type(msgs) ~= "table" then skip(fmt("column '%s' is not a list of messages", c.messages)) end
  local odd = {[tg.user_tag] = "user", [tg.observation_tag] = "observation"}
  local even = {[tg.assistant_tag] = "assistant", [tg.function_tag] = "function"}
  local function content_of(m, k)
    return text_field(m[tg.content_tag], fmt("message %d of %s: '%s'", k, col(c.messages), tg.content_tag))
  end
  local start, system = 1, text_field(c.system and r[c.system], col(c.system)) or ""
  if #msgs > 0 and type(msgs[1]) == "table" and msgs[1][tg.role_tag] == tg.system_tag then
    system = content_of(msgs[1], 1) or ""
    start = 2
  end
  local out = {}
  local openai = a.formatting == "openai"
  local i = start
  while i <= #msgs do
    local m = msgs[i]
    if type(m) ~= "table" then skip("a message is not an object") end
    local role, content = m[tg.role_tag], m[tg.content_tag]
    if openai and role == tg.observation_tag then
      -- consecutive tool results merge into one observation
      local parts = {content_of(m, i) or ""}
      while type(msgs[i + 1]) == "table" and msgs[i + 1][tg.role_tag] == tg.observation_tag do
        i = i + 1
        parts[#parts + 1] = content_of(msgs[i], i) or ""
      end
      content = concat(parts, "\n</tool_response>\n<tool_response>\n")
    elseif openai and role == tg.assistant_tag and type(m.tool_calls) == "table" and #m.tool_calls > 0 then
      local calls = {}
      for k, tc in ipairs(m.tool_calls) do
        local fn = tc["function"] or tc
        local args = fn.arguments
        if type(args) == "string" then
          local ok, dec = pcall(lfl.json.decode, args)
          if ok then args = dec end
        end
        calls[k] = {name = fn.name, arguments = args}
      end
      role, content = tg.function_tag, lfl.json.encode(calls)
    end
    local pos = #out + 1
    local r2
    if pos % 2 == 1 then r2 = odd[role] else r2 = even[role] end
    if not r2 then skip(fmt("message %d has role '%s' where %s was expected", i, tostring(role),
      pos % 2 == 1 and "a user/observation turn" or "an assistant/function turn")) end
    if type(content) ~= "string" then content = content_of(m, i) or "" end
    out[pos] = {role = r2, content = content}
    i = i + 1
  end
  local prompt, response
  if a.kto and c.kto_tag then
    if #out % 2 ~= 0 or #out == 0 then skip("a KTO conversation must end with an assistant turn") end
    local ans = table.remove(out)
    local tag = kto_tag_of(r, c.kto_tag)
    prompt = out
    response = tag and {ans, {role = "assistant", content = ""}} or {{role = "assistant", content = ""}, ans}
  elseif a.ranking then
    if #out % 2 ~= 1 then skip("a preference conversation must end with a user turn") end
    local ch, rj = r[c.chosen], r[c.rejected]
    if type(ch) ~= "table" or type(rj) ~= "table" then skip("chosen/rejected must be message objects") end
    local function msg(m, which)
      local role = even[m[tg.role_tag]]
      if not role then skip("chosen/rejected must be assistant or function messages") end
      return {role = role, content = text_field(m[tg.content_tag], fmt("%s: '%s'", col(which), tg.content_tag)) or ""}
    end
    prompt, response = out, {msg(ch, c.chosen), msg(rj, c.rejected)}
  else
    if #out % 2 ~= 0 then skip("a conversation must have an even number of turns (user first, assistant last)") end
    if #out == 0 then skip("empty conversation") end
    response = {table.remove(out)}
    prompt = out
  end
  if openai and (not c.tools or tools_text(r[c.tools]) == "") then
    system = system ~= "" and (system .. "\ndetailed thinking off") or system
  end
  return {prompt = prompt, response = response, system = system, tools = tools_text(c.tools and r[c.tools]),
          kto_tag = c.kto_tag and r[c.kto_tag] or nil}
end

-- The images / videos / audios columns (a path or a list of paths, as in
-- LlamaFactory's converter) go on the example as lists when non-empty; the
-- template refuses them when it encodes (lfl has no multimodal plugin).
local function attach_media(a, rec, ex)
  if type(rec) ~= "table" then return end
  for _, k in ipairs({"images", "videos", "audios"}) do
    local col = a.columns and a.columns[k]
    local v = col and rec[col]
    if type(v) == "string" then v = {v} end
    if type(v) == "table" and #v > 0 then ex[k] = v end
  end
end

-- Checks an aligned example; returns nil or the reason it is invalid.
local function validate(ex)
  if type(ex) ~= "table" or type(ex.prompt) ~= "table" or type(ex.response) ~= "table" then
    return "the mapper must return {prompt = {...}, response = {...}}"
  end
  if #ex.prompt % 2 ~= 1 then return "the prompt must have an odd number of messages (ending with a user turn)" end
  for i, m in ipairs(ex.prompt) do
    if type(m) ~= "table" or type(m.content) ~= "string" then return fmt("prompt message %d has no string content", i) end
    local ok = (i % 2 == 1) and (m.role == "user" or m.role == "observation")
            or (i % 2 == 0) and (m.role == "assistant" or m.role == "function")
    if not ok then return fmt("prompt message %d has role '%s' out of order", i, tostring(m.role)) end
  end
  for i, m in ipairs(ex.response) do
    if type(m) ~= "table" or type(m.content) ~= "string" then return fmt("response message %d has no string content", i) end
  end
  return nil
end
M.validate = validate

-- ---------------------------------------------------------------- loading

function M.files_of(a)
  if a.load_from == "records" then return nil end
  if a.load_from == "hf_hub_url" then
    local hub = lfl.hub
    if not hub then error(fmt("dataset '%s': hf_hub_url needs the hub client", a.name), 0) end
    -- the data files of the split (and subset) LlamaFactory's load_dataset would read
    return hub.dataset_files({hf_hub_url = a.source, folder = a.folder, subset = a.subset, split = a.split,
      revision = a.revision}, {token = a.hf_hub_token})
  end
  if a.load_from ~= "file_name" then
    error(fmt("dataset '%s': loading from %s is not supported (use file_name or hf_hub_url)", a.name, a.load_from), 0)
  end
  local path = a.source:sub(1, 1) == "/" and a.source or (a.dir .. "/" .. a.source)
  return M.collect_files(path, a)
end

function M.collect_files(path, a)
  if is_dir(path) then
    local out, ext = {}, nil
    for _, f in ipairs(list_dir(path)) do
      local e = ext_of(f)
      if e == "json" or e == "jsonl" or e == "csv" or e == "txt" then
        if ext and e ~= ext then error(fmt("%s: files of different types (%s and %s) in one dataset folder", path, ext, e), 0) end
        ext = e
        out[#out + 1] = path .. "/" .. f
      end
    end
    if #out == 0 then error(fmt("%s: no json/jsonl/csv/txt files", path), 0) end
    return out
  end
  local f = io.open(path, "rb")
  if not f then error(fmt("dataset '%s': %s does not exist", a and a.name or "?", path), 0) end
  f:close()
  return {path}
end

-- Aligns one raw record of dataset a: the canonical example, or nil when the
-- record is invalid (counted in stats.skipped[reason]; an error naming src in
-- strict mode). Shared by the in-memory and the streaming loaders.
function M.align_record(a, rec, src, opts, stats)
  stats.total = stats.total + 1
  local ok, ex = pcall(function()
    if a.mapper then return a.mapper(rec) end
    if type(rec) ~= "table" then skip("the record is not a JSON object") end
    if a.formatting == "alpaca" then return align_alpaca(a, rec) end
    return align_sharegpt(a, rec)
  end)
  local reason
  if not ok then
    if getmetatable(ex) == Refuse then error(fmt("%s: %s (dataset '%s')", src, ex.msg, a.name), 0) end
    if getmetatable(ex) == Skip then reason = ex.reason
    elseif a.mapper then reason = "mapper error: " .. tostring(ex)
    else error(ex, 0) end
  else
    reason = validate(ex)
  end
  if reason then
    if opts.strict then error(fmt("%s: %s (dataset '%s')", src, reason, a.name), 0) end
    stats.skipped[reason] = (stats.skipped[reason] or 0) + 1
    return nil
  end
  ex.system = ex.system or ""
  ex.tools = ex.tools or ""
  attach_media(a, rec, ex)
  ex.src = src
  stats.kept = stats.kept + 1
  return ex
end

-- Aligns the records of one dataset. stats.skipped[reason] counts dropped rows.
function M.align(a, opts, stats)
  opts = opts or {}
  stats = stats or {skipped = {}, total = 0, kept = 0}
  local out = {}
  local function one(rec, src)
    local ex = M.align_record(a, rec, src, opts, stats)
    if ex then out[#out + 1] = ex end
  end
  if a.records then
    for i, rec in ipairs(a.records) do one(rec, a.name .. ":" .. i) end
  else
    for _, path in ipairs(M.files_of(a)) do
      local recs = M.read_records(path, a.columns.prompt)
      for i, rec in ipairs(recs) do one(rec, path .. ":" .. i) end
    end
  end
  return out, stats
end

-- ---------------------------------------------------------------- sampling

-- a small deterministic generator (xorshift) so splits do not depend on lfl's RNG state
local function rng(seed)
  local s = (seed or 42) % 2147483647
  if s <= 0 then s = s + 2147483646 end
  return function(n) s = (s * 48271) % 2147483647; return s % n + 1 end
end

local function shuffle(list, seed)
  local r = rng(seed)
  for i = #list, 2, -1 do
    local j = r(i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end
M.shuffle = shuffle
M.rng = rng

local function sample(list, n, seed)
  local r = rng(seed)
  local idx = {}
  for i = 1, #list do idx[i] = i end
  shuffle(idx, seed)
  local out = {}
  for i = 1, math.min(n, #list) do out[i] = list[idx[i]] end
  for i = #list + 1, n do out[i] = list[r(#list)] end -- with replacement past the size, as LlamaFactory
  return out
end

-- one draw of the interleaving: the index of the source to take from next
function M.pick(r, probs, total)
  local x = (r(1000000) - 1) / 1000000 * total
  for i, p in ipairs(probs) do if x < p then return i end x = x - p end
  return #probs
end

-- interleave with probabilities: "under" stops when the first source runs out,
-- "over" when the last does (restarting exhausted ones)
local function interleave(lists, probs, over, seed)
  local r = rng(seed)
  local pos, done, out = {}, {}, {}
  for i = 1, #lists do pos[i] = 0 end
  local ndone = 0
  local total = 0
  for _, p in ipairs(probs) do total = total + p end
  while true do
    local k = M.pick(r, probs, total)
    pos[k] = pos[k] + 1
    if pos[k] > #lists[k] then
      if not over then break end
      if not done[k] then done[k] = true; ndone = ndone + 1 end
      if ndone == #lists then break end
      pos[k] = 1
    end
    if #lists[k] > 0 then out[#out + 1] = lists[k][pos[k]] end
  end
  return out
end

-- Loads and merges the datasets named in args.dataset (comma-separated string
-- or list). args: dataset_dir, stage, max_samples, val_size, seed, strict,
-- mix_strategy (concat | interleave_under | interleave_over), interleave_probs,
-- datasets (inline descriptions), eval_dataset.
-- "a, b" or {"a", "b"} -> {"a", "b"}
function M.names_of(v)
  if type(v) == "table" then return v end
  local t = {}
  if v then for n in tostring(v):gmatch("[^,%s]+") do t[#t + 1] = n end end
  return t
end

-- the description of a dataset checked against the training stage
function M.describe_for(name, args)
  local stage = args.stage or "sft"
  local a = M.describe(name, args.dataset_dir, args.datasets)
  local needs_ranking = stage == "rm" or stage == "dpo" or stage == "orpo" or stage == "simpo"
  if a.ranking ~= needs_ranking then
    error(fmt("dataset '%s' is not applicable in the current training stage '%s' (ranking = %s): %s", name, stage,
      tostring(a.ranking), needs_ranking
        and "the stage trains on preference pairs, a dataset described with \"ranking\": true and chosen/rejected columns"
        or "a preference dataset (ranking) trains with stage rm, dpo, orpo or simpo"), 0)
  end
  if a.ranking and (not a.columns.chosen or not a.columns.rejected) then
    error(fmt("%s: dataset '%s' is a preference dataset (ranking) but its columns name no %s; add \"columns\": "
      .. "{\"chosen\": ..., \"rejected\": ...}", a.where, name,
      not a.columns.chosen and (not a.columns.rejected and "chosen and rejected column" or "chosen column")
        or "rejected column"), 0)
  end
  a.kto = stage == "kto"
  if a.kto and not a.columns.kto_tag then
    error(fmt("%s: dataset '%s' has no kto_tag column, which stage kto needs (each row desirable or not); add "
      .. "\"columns\": {\"kto_tag\": \"<column of true/false>\"} to its dataset_info entry", a.where, name), 0)
  end
  a.hf_hub_token = args.hf_hub_token
  return a
end

-- interleave_probs for n datasets (equal when not given)
function M.probs_of(args, n)
  local probs = args.interleave_probs
  if type(probs) == "string" then
    local t = {}
    for p in probs:gmatch("[^,%s]+") do t[#t + 1] = tonumber(p) end
    probs = t
  end
  if not probs then probs = {}; for i = 1, n do probs[i] = 1 / n end end
  if #probs ~= n then error(fmt("data: %d interleave_probs for %d datasets", #probs, n), 0) end
  return probs
end

-- the examples of the named datasets, each cut to max_samples, merged by mix_strategy
function M.load_mixed(names, args, stats)
  local lists = {}
  for _, name in ipairs(names) do
    local a = M.describe_for(name, args)
    local before = stats.kept
    local exs = M.align(a, args, stats)
    if a.num_samples then exs = sample(exs, a.num_samples, args.seed) end
    if args.max_samples then
      local cut = {}
      for i = 1, math.min(#exs, args.max_samples) do cut[i] = exs[i] end
      exs = cut
    end
    stats.per_dataset[name] = {kept = stats.kept - before, used = #exs}
    lists[#lists + 1] = exs
  end
  local strategy = args.mix_strategy or "concat"
  if strategy == "concat" then
    local merged = {}
    for _, l in ipairs(lists) do for _, e in ipairs(l) do merged[#merged + 1] = e end end
    return merged
  elseif strategy == "interleave_under" or strategy == "interleave_over" then
    return interleave(lists, M.probs_of(args, #lists), strategy == "interleave_over", args.seed)
  end
  error(fmt("data: mix_strategy '%s' (concat, interleave_under, interleave_over)", tostring(strategy)), 0)
end

function M.load(args)
  local names = M.names_of(args.dataset)
  if #names == 0 then error("data: no dataset given", 0) end
  local stats = {skipped = {}, total = 0, kept = 0, per_dataset = {}}
  local merged = M.load_mixed(names, args, stats)
  local train, eval = merged, nil
  local vs = args.val_size
  if args.eval_dataset then
    -- the eval set is eval_dataset, mixed the same way (LlamaFactory takes no val_size with it)
    eval = M.load_mixed(M.names_of(args.eval_dataset), args, {skipped = {}, total = 0, kept = 0, per_dataset = {}})
  elseif vs and vs > 0 then
    local idx = {}
    for i = 1, #merged do idx[i] = i end
    shuffle(idx, args.seed)
    local n_eval = vs < 1 and math.floor(#merged * vs + 0.5) or math.floor(vs)
    n_eval = math.max(1, math.min(n_eval, #merged - 1))
    train, eval = {}, {}
    for k, i in ipairs(idx) do
      if k <= n_eval then eval[#eval + 1] = merged[i] else train[#train + 1] = merged[i] end
    end
  end
  if #train == 0 then
    error("data: cannot find valid samples (" .. M.summary(stats) .. ")", 0)
  end
  return {train = train, eval = eval, stats = stats}
end

function M.summary(stats)
  local parts = {fmt("%d records, %d kept", stats.total, stats.kept)}
  local reasons = {}
  for r, n in pairs(stats.skipped) do reasons[#reasons + 1] = fmt("%d skipped: %s", n, r) end
  table.sort(reasons)
  for _, r in ipairs(reasons) do parts[#parts + 1] = r end
  return concat(parts, "; ")
end

return M
