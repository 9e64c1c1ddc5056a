-- lfl export <recipe.lua|yaml> [key=value ...] (or only key=value arguments):
-- merges the adapters of adapter_name_or_path (comma list, in order) into the
-- base model and writes an HF folder to export_dir in shards of export_size GB,
-- with the tokenizer and generation files (the base folder's, or written from
-- the metadata of a GGUF base). export_format=gguf writes one GGUF file for
-- llama.cpp instead (export_quantization f32 | f16 | bf16 | q8_0 | q4_k,
-- lfl.model.gguf_export): export_dir itself when it ends in .gguf, else
-- export_dir/ggml-model-<quantization>.gguf. export_quantization_bit (2/4/8)
-- quantizes the model with GPTQ on export_quantization_dataset
-- (lfl.model.gptq_export) and writes a GPTQ checkpoint. export_hub_model_id
-- (LlamaFactory's) then pushes what was written to that Hub repo (created if
-- missing) with hf_hub_token or HF_TOKEN: the model and tokenizer files of the
-- folder (not the Modelfile, as LlamaFactory's push_to_hub), or the GGUF file.
local lfl = lfl
local fmt = string.format

local M = {help = "merge LoRA adapters into the base model and write an HF folder (export_dir, export_size) " ..
             "or a GGUF file (export_format=gguf, export_quantization)",
           usage = "lfl export [recipe.lua|recipe.yaml] model_name_or_path=... adapter_name_or_path=... export_dir=... " ..
             "[export_format=gguf export_quantization=f16|q8_0|q4_k|bf16|f32] " ..
             "[export_quantization_bit=4 export_quantization_dataset=data/c4_demo.jsonl] " ..
             "[export_hub_model_id=namespace/name hf_hub_token=...]"}

-- the local export; r.push = {dir, files}: what a push sends
local function write(a)
  if not a.export_dir then error("export: export_dir is required", 0) end
  if a.export_dir == "" then error("export: export_dir is empty (give the folder the exported model goes to)", 0) end
  -- infer_dtype bfloat16 / float16 merges into (and writes) a 16-bit base; auto keeps f32
  local dt = ({bfloat16 = "bf16", bf16 = "bf16", float16 = "f16", fp16 = "f16"})[a.infer_dtype]
  -- a mixture-of-depths model (mixture_of_depths: load) is written in the MoD
  -- package's layout, as it was read; converting at export would write random routers
  if a.mixture_of_depths == "convert" then
    error("export: mixture_of_depths: convert would write a model whose new routers are untrained; export a "
      .. "trained MoD model with mixture_of_depths: load", 0)
  end
  if a.mixture_of_depths and a.export_format == "gguf" then
    error("export: a mixture-of-depths model has no GGUF form (llama.cpp runs no routed layers); export_format gguf "
      .. "is not supported with mixture_of_depths", 0)
  end
  local model = lfl.model.load(a.model_name_or_path, {dtype = dt, hub = lfl.args.hub_options(a),
                                                      rope_scaling = lfl.args.rope_option(a, false),
                                                      mixture_of_depths = a.mixture_of_depths,
                                                      -- a saved bitsandbytes base merges and is written as float
                                                      dequantize = true})
  local peft = require("lfl.train.peft")
  local merged = {}
  if a.adapter_name_or_path then
    for dir in tostring(a.adapter_name_or_path):gmatch("[^,]+") do
      peft.load_adapter(model, dir)
      peft.merge(model)
      merged[#merged + 1] = dir
    end
  end
  if a.export_format == "gguf" then
    local q = a.export_quantization or "f16"
    local path = a.export_dir
    if not path:match("%.gguf$") then
      lfl.fs.mkdir(path)
      path = path .. "/ggml-model-" .. q .. ".gguf"
    end
    local r = require("lfl.model.gguf_export").write(model, path, {quantization = q})
    local parent, base = path:match("^(.*)/[^/]+$") or ".", path:match("[^/]+$")
    local mf = M.write_modelfile(model, a, parent, "./" .. base)
    return {dir = path, merged = merged, tokenizer_files = {}, gguf = r, modelfile = mf,
      push = {dir = parent, files = {base}}}
  end
  if a.export_quantization_bit then
    local gq = require("lfl.model.gptq_export")
    local tok = lfl.chat.tokenizer(model)
    local t0 = lfl.sys.clock()
    local samples = gq.calibration(a.export_quantization_dataset, tok, a.export_quantization_nsamples,
      a.export_quantization_maxlen, a.seed)
    local packed, order = gq.quantize(model, samples, {bits = a.export_quantization_bit,
      log = function(msg) io.stderr:write("[lfl] ", msg, "\n") end})
    local qcfg = gq.quantization_config(a.export_quantization_bit, gq.DEFAULTS.group_size, gq.DEFAULTS.damp_percent,
      a.export_quantization_maxlen)
    local dir, files, written = gq.save(model, a.export_dir, packed, qcfg, {shard_size = (a.export_size or 5) * 1e9})
    return {dir = dir, merged = merged, tokenizer_files = files, modelfile = M.write_modelfile(model, a, dir, "."),
      push = {dir = dir, files = written},
      gptq = {bits = a.export_quantization_bit, linears = #order, samples = #samples, seconds = lfl.sys.clock() - t0}}
  end
  -- the tokenizer and generation files come with it: copied from an HF folder,
  -- written from the metadata of a GGUF base (lfl.model.hf_files)
  local dir, files, written = model:save(a.export_dir, {shard_size = (a.export_size or 5) * 1e9})
  return {dir = dir, merged = merged, tokenizer_files = files, modelfile = M.write_modelfile(model, a, dir, "."),
    push = {dir = dir, files = written}}
end

-- LlamaFactory's export_hub_model_id: model.push_to_hub / tokenizer.push_to_hub
-- after the local export. The repo is created when missing (an existing one is
-- fine); only the files this export wrote go, in one commit.
function M.push(a, r)
  local hub = require("lfl.hub")
  local pats = {}
  for i, f in ipairs(r.push.files) do pats[i] = (f:gsub("[%[%]%*%?]", "[%0]")) end -- literal names
  local ok, res = pcall(hub.upload_folder, a.export_hub_model_id, r.push.dir, {token = a.hf_hub_token,
    create_repo = true, allow_patterns = pats, commit_message = "Upload model and tokenizer (lfl export)"})
  if not ok then
    error(fmt("export: the model was written to %s, but pushing it to %s failed: %s", r.dir, a.export_hub_model_id,
      tostring(res)), 0)
  end
  return res
end

function M.export(a)
  if a.export_hub_model_id and not a.export_dir then
    -- LlamaFactory: the model is saved locally before it is pushed
    error("export: export_hub_model_id needs export_dir (the model is written there first, then pushed)", 0)
  end
  local r = write(a)
  if a.export_hub_model_id then r.pushed = M.push(a, r) end
  return r
end

-- LlamaFactory's export writes an Ollama Modelfile next to the model
-- (Template:ollama_modelfile; FROM the folder, or the GGUF file): the recipe's
-- template, else the one chat would pick. Without a tokenizer or a template
-- there is none, with a note; returns its path or nil.
function M.write_modelfile(model, a, dir, from)
  local ok, text = pcall(function()
    local ichat = require("lfl.infer.chat")
    local tok = ichat.tokenizer(model)
    local name = a.template or require("lfl.cmd.chat").default_template(model, function() end)
    local tpl = ichat.template(model, tok, name)
    return tpl:ollama_modelfile(tok)
  end)
  if not ok then
    print(fmt("[lfl] note: no Ollama Modelfile written: %s", tostring(text):gsub("\n.*", "")))
    return nil
  end
  if from ~= "." then text = text:gsub("\nFROM %.\n", "\nFROM " .. from:gsub("%%", "%%%%") .. "\n", 1) end
  local path = dir .. "/Modelfile"
  lfl.fs.write(path, text)
  return path
end

function M.run(args)
  local recipe, overrides = {}, {}
  -- llamafactory-cli export --model_name_or_path ... --export_dir ... (flags, no recipe file)
  if args[1] and args[1]:match("^%-%-[%a_]") then args = lfl.args.from_flags(args) end
  for _, x in ipairs(args) do
    if x:find("=", 1, true) then overrides[#overrides + 1] = x
    elseif next(recipe) == nil then recipe = lfl.args.load_recipe(x)
    else error("usage: " .. M.usage, 0) end
  end
  recipe.do_train = false
  local a = lfl.args.resolve(recipe, overrides, "export")
  local r = M.export(a)
  local function pushed()
    local p = r.pushed
    if not p then return end
    if p.files == 0 then
      print(fmt("[lfl] %s already holds these files as they are (commit %s): nothing pushed", p.repo_id, p.commit_oid))
      return
    end
    print(fmt("[lfl] pushed %d file(s) to %s (%d by LFS, %s sent), commit %s", p.files, p.repo_id, p.lfs_files,
      require("lfl.hub").format_size(p.bytes_uploaded), p.commit_url or p.commit_oid))
  end
  if r.gguf then
    print(fmt("[lfl] merged %d adapter(s) into %s and wrote %s (GGUF, %s, %d tensors, tokenizer and chat template " ..
      "in its metadata)", #r.merged, a.model_name_or_path, r.dir, a.export_quantization, r.gguf.n_tensors))
    pushed()
    return 0
  end
  if r.gptq then
    print(fmt("[lfl] quantized %s to %d bits with GPTQ (%d linears, %d calibration windows of %d tokens, %.1fs) and "
      .. "wrote %s", a.model_name_or_path, r.gptq.bits, r.gptq.linears, r.gptq.samples, a.export_quantization_maxlen,
      r.gptq.seconds, r.dir))
    pushed()
    return 0
  end
  print(fmt("[lfl] merged %d adapter(s) into %s and wrote %s%s", #r.merged, a.model_name_or_path, r.dir,
    #r.tokenizer_files > 0 and (" (with " .. table.concat(r.tokenizer_files, ", ") .. ")") or
    " (the base has no tokenizer files)"))
  pushed()
  return 0
end

return M
