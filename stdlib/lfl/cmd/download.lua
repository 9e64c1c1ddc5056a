-- `lfl download org/name [files...] [options]`: fetch a model or dataset from the
-- Hugging Face Hub into the shared cache (or --local-dir) and print its path.
local fmt = string.format

local usage = [[
usage: lfl download REPO_ID [FILE...] [options]
  Downloads a repo snapshot (or only the FILEs named) from the Hugging Face Hub into
  the huggingface_hub cache ($HF_HUB_CACHE, default $HF_HOME/hub = ~/.cache/huggingface/hub)
  and prints the local path.
options:
  --revision REV         branch, tag or commit (default main)
  --include PAT...       only files matching these glob patterns (repeatable)
  --exclude PAT...       skip files matching these patterns (repeatable)
  --local-dir DIR        also copy the files into DIR and print DIR
  --repo-type TYPE       model (default), dataset or space
  --token TOKEN          instead of HF_TOKEN / $HF_HOME/token
  --cache-dir DIR        instead of HF_HUB_CACHE
  --max-workers N        parallel file downloads (default 8)
  --force                download again even when cached
  --quiet                no progress bar
  --list                 list the repo's files with sizes instead of downloading
environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 (cache only)]]

local function parse(args)
  local o = {include = {}, exclude = {}, files = {}}
  local i = 1
  local function value(flag)
    i = i + 1
    local v = args[i]
    if v == nil or v:sub(1, 2) == "--" then error(fmt("lfl download: %s needs a value\n%s", flag, usage), 0) end
    return v
  end
  -- --include/--exclude take every following value up to the next option (like huggingface-cli)
  local function values(flag, into)
    into[#into + 1] = value(flag)
    while args[i + 1] and args[i + 1]:sub(1, 2) ~= "--" do i = i + 1; into[#into + 1] = args[i] end
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    if flag then a = flag; table.insert(args, i + 1, inline) end
    if a == "--help" or a == "-h" then o.help = true
    elseif a == "--revision" then o.revision = value(a)
    elseif a == "--include" then values(a, o.include)
    elseif a == "--exclude" then values(a, o.exclude)
    elseif a == "--local-dir" then o.local_dir = value(a)
    elseif a == "--repo-type" then o.repo_type = value(a)
    elseif a == "--token" then o.token = value(a)
    elseif a == "--cache-dir" then o.cache_dir = value(a)
    elseif a == "--max-workers" then
      o.max_workers = tonumber(value(a))
      if not o.max_workers or o.max_workers < 1 then error("lfl download: --max-workers needs a positive number", 0) end
    elseif a == "--force" then o.force = true
    elseif a == "--quiet" then o.quiet = true
    elseif a == "--list" then o.list = true
    elseif a:sub(1, 2) == "--" then error(fmt("lfl download: unknown option %s\n%s", a, usage), 0)
    elseif not o.repo then o.repo = a
    else o.files[#o.files + 1] = a end
    i = i + 1
  end
  return o
end

local function run(args)
  local copy = {}
  for k, v in ipairs(args) do copy[k] = v end
  local o = parse(copy)
  if o.help then print(usage); return end
  if not o.repo then error("lfl download: which repo? (e.g. lfl download Qwen/Qwen2.5-0.5B)\n" .. usage, 0) end
  local hub = require("lfl.hub")
  local opts = {
    revision = o.revision, repo_type = o.repo_type, token = o.token, cache_dir = o.cache_dir,
    local_dir = o.local_dir, max_workers = o.max_workers, force = o.force or nil,
    progress = o.quiet and false or nil,
    allow_patterns = #o.include > 0 and o.include or nil,
    ignore_patterns = #o.exclude > 0 and o.exclude or nil,
  }
  local ok, err = pcall(function()
    if o.list then
      hub.ls(o.repo, {revision = o.revision, repo_type = o.repo_type, token = o.token})
    elseif #o.files > 0 then
      for _, f in ipairs(o.files) do
        opts.filename = f
        print(hub.download(o.repo, opts))
      end
    else
      print(hub.download(o.repo, opts))
    end
  end)
  -- the C client's messages are complete: drop the Lua position prefix
  if not ok then error("lfl download: " .. tostring(err):gsub("^[^:]*:%d+: ", ""), 0) end
end

return {help = "download a model or dataset from the Hugging Face Hub", usage = usage, run = run}
