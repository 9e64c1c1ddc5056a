-- lfl.hub: the Hugging Face Hub client. Downloads files and repo snapshots into
-- huggingface_hub's cache (HF_HOME / HF_HUB_CACHE, shared with Python tools),
-- lists repo files, uploads folders (one commit), and resolves a recipe's
-- `model_name_or_path` or a dataset's `hf_hub_url` to a local path, fetching
-- it on first use.
--
--   lfl.hub.download("org/name", {revision=, filename=, allow_patterns=, ignore_patterns=,
--                     repo_type="model"|"dataset"|"space", token=, local_dir=, offline=,
--                     progress=, force=, max_workers=, retries=, endpoint=, cache_dir=})
--   lfl.hub.info("org/name", {revision=, repo_type=})  -> {id, sha, size, files = {{name, size, lfs, sha256}}}
--   lfl.hub.resolve(name_or_path, opts)                -> a local path
--   lfl.hub.upload_folder("org/name", folder, {create_repo=, private=, path_in_repo=, commit_message=,
--                         commit_description=, revision=, repo_type=, token=, allow_patterns=,
--                         ignore_patterns=, endpoint=, retries=, progress=})
--       -> {repo_id, commit_oid, commit_url, files, lfs_files, uploaded, bytes_uploaded}
--     commits the folder's files as huggingface_hub's upload_folder does (LFS files streamed
--     from disk, multipart when the Hub asks); create_repo=true creates the repo first (an
--     existing one is fine), as push_to_hub does. The token: token=, else HF_TOKEN.
local C = lfl._hub
local fmt = string.format

local M = {}
for k, v in pairs(C) do M[k] = v end

-- Weight formats that a safetensors checkpoint makes redundant: resolve() skips
-- them for model repos that have *.safetensors (transformers loads those first).
M.redundant_weights = {
  "*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.onnx_data",
  "*.ot", "*.tflite", "*.gguf", "*.mlmodel", "*.mlpackage/*", "original/", "onnx/", "openvino/", "coreml/",
}

local function copy(t)
  local r = {}
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

local function env_offline()
  local function yes(v) v = v and v:lower(); return v == "1" or v == "on" or v == "yes" or v == "true" end
  return yes(os.getenv("HF_HUB_OFFLINE")) or yes(os.getenv("TRANSFORMERS_OFFLINE"))
end

-- "org/name" or "name": what a Hub repo id may look like (C checks the details)
function M.is_repo_id(s)
  if type(s) ~= "string" or s == "" or s:find("^[%./~]") or s:find("//", 1, true) then return false end
  local n = select(2, s:gsub("/", ""))
  return n <= 1 and s:match("^[%w_%.%-/]+$") ~= nil and not s:find("%.%.") and not s:find("%-%-")
end

-- A local path as it is; otherwise a Hub repo id, downloaded (or found in the
-- cache) and returned as the local snapshot folder, or file with opts.filename.
-- For models without allow/ignore patterns, other weight formats are skipped
-- when the repo has safetensors.
function M.resolve(name_or_path, opts)
  if type(name_or_path) ~= "string" or name_or_path == "" then
    error("hub.resolve: expected a local path or a Hub repo id ('org/name'), got " .. tostring(name_or_path), 2)
  end
  if C.path_kind(name_or_path) then return name_or_path end
  if not M.is_repo_id(name_or_path) then
    error(fmt("hub.resolve: '%s' is neither an existing local path nor a Hub repo id ('org/name')", name_or_path), 0)
  end
  local o = copy(opts)
  local offline = o.offline
  if offline == nil then offline = env_offline() end
  if (o.repo_type == nil or o.repo_type == "model") and o.filename == nil and o.allow_patterns == nil
    and o.ignore_patterns == nil and not offline then
    local ok, info = pcall(C.info, name_or_path, {revision = o.revision, repo_type = o.repo_type, token = o.token,
                                                  endpoint = o.endpoint, retries = o.retries})
    if ok then
      local has_st = false
      for _, f in ipairs(info.files) do
        if f.name:match("%.safetensors$") then has_st = true; break end
      end
      if has_st then o.ignore_patterns = M.redundant_weights end
    end
    -- on failure the download itself reports the error, or answers from the cache
  end
  local ok, res = pcall(C.download, name_or_path, o)
  if not ok then
    error(fmt("%s\n('%s' is not an existing local path either)", tostring(res), name_or_path), 2)
  end
  return res
end

-- A LlamaFactory dataset_info entry with `hf_hub_url` (plus optional `folder`,
-- `revision`): the local folder of the dataset repo (or its `folder`).
function M.resolve_dataset(entry, opts)
  if type(entry) == "string" then entry = {hf_hub_url = entry} end
  if type(entry) ~= "table" or type(entry.hf_hub_url) ~= "string" then
    error("hub.resolve_dataset: expected a dataset entry with hf_hub_url", 2)
  end
  local o = copy(opts)
  o.repo_type = "dataset"
  o.revision = o.revision or entry.revision
  if entry.folder and o.allow_patterns == nil then o.allow_patterns = {entry.folder .. "/"} end
  local path = M.resolve(entry.hf_hub_url, o)
  if entry.folder and C.path_kind(path) == "directory" then return path .. "/" .. entry.folder end
  return path
end

-- ---------------------------------------------------------------- dataset repos

-- The `configs:` block of a dataset card's YAML front matter (README.md), as
-- Lua tables (read by lfl.yaml as huggingface_hub's yaml.safe_load reads it).
-- Nil when there is none; a front matter that is not valid YAML is an error
-- naming the card, its line and column.
function M.card_configs(text, where)
  where = where or "README.md"
  local body = text:match("^%-%-%-\r?\n(.-\r?\n)%-%-%-")
  if not body then return nil end
  -- the front matter starts on the card's line 2: pad so errors give card lines
  local meta = lfl.yaml.decode("\n" .. body, where)
  if type(meta) ~= "table" then return nil end
  local cfgs = meta.configs
  if type(cfgs) ~= "table" then return nil end
  return cfgs
end

-- file extensions the loaders read, and data formats they do not
local READABLE = {json = true, jsonl = true, csv = true, txt = true}
local UNREADABLE = {parquet = true, arrow = true, gz = true, zst = true, bz2 = true, xz = true, zip = true, tsv = true}

local function ext_of(name) return (name:match("%.([%w]+)$") or ""):lower() end

-- glob as huggingface_hub's fnmatch (through lfl.hub.match)
local function glob(name, pat) return C.match(name, pat) end

-- the split keywords of datasets' default patterns (a keyword between
-- separators - . _ space digits / in a file or folder name)
local SPLIT_WORDS = {train = {"train", "training"}, validation = {"validation", "valid", "dev", "val"},
                     test = {"test", "testing", "eval", "evaluation"}}

local function names_split(rel, split)
  local words = SPLIT_WORDS[split] or {split}
  local s = rel:lower()
  for _, w in ipairs(words) do
    local from = 1
    while true do
      local a, b = s:find(w, from, true)
      if not a then break end
      local before, after = s:sub(a - 1, a - 1), s:sub(b + 1, b + 1)
      if (a == 1 or before:match("[%-%._ %d/]")) and (after == "" or after:match("[%-%._ %d/]")) then return true end
      from = a + 1
    end
  end
  return false
end

-- the data files of one split: datasets' rules for a repo without a loading
-- script. entry: {hf_hub_url, subset, split, folder}; names: the repo's files
function M.select_dataset_files(entry, names, configs)
  local repo, split = entry.hf_hub_url, entry.split or "train"
  local base, patterns = nil, nil
  if configs then
    local cfg
    local avail = {}
    for _, c in ipairs(configs) do avail[#avail + 1] = tostring(c.config_name) end
    if entry.subset then
      for _, c in ipairs(configs) do if c.config_name == entry.subset then cfg = c end end
      if not cfg then
        error(fmt("dataset %s has no config '%s' (its configs: %s)", repo, entry.subset, table.concat(avail, ", ")), 0)
      end
    else
      for _, c in ipairs(configs) do if c.default == true then cfg = c end end
      if not cfg then for _, c in ipairs(configs) do if c.config_name == "default" then cfg = c end end end
      if not cfg and #configs == 1 then cfg = configs[1] end
      if not cfg then
        error(fmt("dataset %s has several configs (%s): set `subset` to one of them", repo, table.concat(avail, ", ")), 0)
      end
    end
    base = entry.folder or cfg.data_dir
    local df = cfg.data_files
    if df ~= nil then
      local by_split = {}
      if type(df) == "string" then by_split.train = {df}
      elseif type(df) == "table" and (df[1] == nil or type(df[1]) == "string") then by_split.train = df
      else
        for _, item in ipairs(df) do
          if type(item) ~= "table" or not item.split or not item.path then
            error(fmt("dataset %s: config '%s' has a data_files entry without split and path", repo, tostring(cfg.config_name)), 0)
          end
          by_split[item.split] = type(item.path) == "table" and item.path or {item.path}
        end
      end
      patterns = by_split[split]
      if not patterns then
        local have = {}
        for k in pairs(by_split) do have[#have + 1] = k end
        table.sort(have)
        error(fmt("dataset %s (config '%s') has no split '%s' (its splits: %s)", repo, tostring(cfg.config_name), split,
          table.concat(have, ", ")), 0)
      end
    end
  else
    base = entry.folder
    if not base and entry.subset then
      -- without a card, a subset names a folder of the repo
      for _, n in ipairs(names) do if n:sub(1, #entry.subset + 1) == entry.subset .. "/" then base = entry.subset; break end end
      if not base then error(fmt("dataset %s has no config or folder '%s'", repo, entry.subset), 0) end
    end
  end
  local prefix = base and (base:gsub("/+$", "") .. "/") or ""
  local cands = {}
  for _, n in ipairs(names) do
    local rel = n:sub(#prefix + 1)
    if n:sub(1, #prefix) == prefix and not rel:match("^%.") and not rel:match("/%.") and rel ~= "README.md"
      and n ~= ".gitattributes" then
      cands[#cands + 1] = {name = n, rel = rel}
    end
  end
  local chosen = {}
  if patterns then
    for _, c in ipairs(cands) do
      for _, p in ipairs(patterns) do if glob(c.rel, p) then chosen[#chosen + 1] = c.name; break end end
    end
  else
    local data, any_split = {}, false
    for _, c in ipairs(cands) do
      local e = ext_of(c.name)
      if READABLE[e] or UNREADABLE[e] then
        data[#data + 1] = c
        for w in pairs(SPLIT_WORDS) do if names_split(c.rel, w) then any_split = true end end
      end
    end
    for _, c in ipairs(data) do
      if not any_split and split == "train" or names_split(c.rel, split) then chosen[#chosen + 1] = c.name end
    end
  end
  table.sort(chosen)
  local readable, other = {}, {}
  for _, n in ipairs(chosen) do
    if READABLE[ext_of(n)] then readable[#readable + 1] = n else other[#other + 1] = n end
  end
  if #readable == 0 then
    if #other > 0 then
      error(fmt("dataset %s, split '%s': lfl reads json, jsonl, csv and txt files; these are not: %s", repo, split,
        table.concat(other, ", ")), 0)
    end
    error(fmt("dataset %s has no data files for split '%s'%s", repo, split, base and (" under " .. base) or ""), 0)
  end
  return readable
end

local read_text = lfl.read_file

-- The local paths of a LlamaFactory dataset entry's data files ({hf_hub_url,
-- subset, split, folder, revision}): the dataset card's configs (or the
-- default split patterns) pick the files, and only those are downloaded.
-- Offline or unreachable, the cached snapshot answers.
function M.dataset_files(entry, opts)
  local repo = entry.hf_hub_url
  local o = {repo_type = "dataset", revision = entry.revision}
  for k, v in pairs(opts or {}) do o[k] = v end
  local names, root
  local offline = o.offline
  if offline == nil then offline = env_offline() end
  local ok, info = false, nil
  if not offline then ok, info = pcall(C.info, repo, {repo_type = "dataset", revision = o.revision, token = o.token,
    endpoint = o.endpoint, retries = o.retries}) end
  if ok then
    names = {}
    for _, f in ipairs(info.files) do names[#names + 1] = f.name end
  else
    -- the cached snapshot (C.download answers from the cache offline or when the Hub cannot be reached)
    local okd, snap = pcall(C.download, repo, o)
    if not okd then error(fmt("%s%s", tostring(snap), info and ("\n(listing the repo failed: " .. tostring(info) .. ")") or ""), 0) end
    root = snap
    names = {}
    names = lfl.fs.walk(root)
  end
  local configs
  for _, n in ipairs(names) do
    if n == "README.md" then
      local path = root and (root .. "/README.md") or C.download(repo, (function()
        local x = {}; for k, v in pairs(o) do x[k] = v end; x.filename = "README.md"; return x end)())
      configs = M.card_configs(read_text(path) or "", repo .. "/README.md")
    end
  end
  local chosen = M.select_dataset_files(entry, names, configs)
  if not root then
    local x = {}
    for k, v in pairs(o) do x[k] = v end
    x.allow_patterns = chosen
    root = C.download(repo, x)
  end
  local out = {}
  for i, n in ipairs(chosen) do out[i] = root .. "/" .. n end
  return out
end

-- 1234567 -> "1.2 MB"
function M.format_size(n)
  if not n then return "?" end
  local units, i = {"B", "kB", "MB", "GB", "TB"}, 1
  while n >= 1000 and i < #units do n = n / 1000; i = i + 1 end
  return i == 1 and fmt("%d B", n) or fmt("%.1f %s", n, units[i])
end

-- prints the files of a repo with their sizes (REPL convenience)
function M.ls(repo_id, opts)
  local info = C.info(repo_id, opts)
  print(fmt("%s @ %s", info.id, info.sha))
  for _, f in ipairs(info.files) do
    print(fmt("  %10s  %s%s", M.format_size(f.size), f.name, f.lfs and "  (lfs)" or ""))
  end
  print(fmt("  %10s  total, %d files", M.format_size(info.size), #info.files))
  return info
end

return M
