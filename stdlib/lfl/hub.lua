-- lfl.hub: the Hugging Face Hub client. Downloads files and repo snapshots into
-- huggingface_hub's cache (HF_HOME / HF_HUB_CACHE, shared with Python tools),
-- lists repo files, and resolves a recipe's `model_name_or_path` or a dataset's
-- `hf_hub_url` to a local path, fetching it on first use.
--
--   lfl.hub.download("org/name", {revision=, filename=, allow_patterns=, ignore_patterns=,
--                     repo_type="model"|"dataset"|"space", token=, local_dir=, offline=,
--                     progress=, force=, max_workers=, retries=, endpoint=, cache_dir=})
--   lfl.hub.info("org/name", {revision=, repo_type=})  -> {id, sha, size, files = {{name, size, lfs, sha256}}}
--   lfl.hub.resolve(name_or_path, opts)                -> a local path
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
    error(fmt("hub.resolve: '%s' is neither an existing local path nor a Hub repo id ('org/name')", name_or_path), 2)
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
