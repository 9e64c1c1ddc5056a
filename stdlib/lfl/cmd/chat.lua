-- `lfl chat --model <path|hub id> [--adapter DIR] [--template NAME] [--system "..."]`,
-- or LlamaFactory's `lfl chat recipe.yaml [key=value ...]` (llamafactory-cli chat
-- examples/inference/*.yaml: model_name_or_path, adapter_name_or_path, template,
-- default_system, infer_dtype, generation settings): an interactive chat in the terminal as llamafactory-cli chat: streamed
-- replies, the history kept in the conversation, `clear` resets it, `exit`
-- quits, Ctrl-C stops a reply without leaving. Lines are read with io.read
-- (the REPL's readline lives in C and is not reachable from Lua), so there
-- is no line editing beyond the terminal's own.
local fmt = string.format

local M = {help = "chat with a model in the terminal (streamed replies, history, clear, exit)"}

M.usage = [[
usage: lfl chat --model PATH|HUB_ID [options]
       lfl chat RECIPE.yaml|RECIPE.lua [key=value ...]   (LlamaFactory's inference recipes)
  --model PATH          HF model folder, .gguf file or Hub repo id
  --adapter DIR         a LoRA adapter (PEFT folder), applied unmerged; a comma list merges
                        all but the last
  --merge               merge the adapter into the weights instead
  --gguf-blocks         keep a GGUF's layer linears (and head) in the file's blocks: about a
                        quarter of the memory and faster decoding (int8 dot products, as
                        llama.cpp); cannot be combined with --merge
  --template NAME       chat template (default: the model registry's template for a known
                        checkpoint, else the tokenizer's chat_template, else the family's if only it has
                        the model_type, else "default")
  --system TEXT         system prompt
  --temperature X       (0.95; 0 = greedy)   --top-p X (0.7)   --top-k N (50)
  --min-p X (0)         --repetition-penalty X (1.0)   --max-new-tokens N (1024)
  --seed N              sampling seed
  --device cuda[:N]     run on a CUDA device (default cpu)
In the chat: `clear` removes the history, `exit` quits, Ctrl-C stops a reply.]]

local cmd = require("lfl.cmd")
local SPEC = {name = "lfl chat", usage = M.usage, flags = {"merge", "gguf_blocks"},
  numbers = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens", "seed"},
  strings = {"model", "adapter", "device", "template", "system"},
  -- the rest as the recipe arguments of the same names (lfl.args.SPEC)
  rules = {min_p = {type = "number", min = 0, max = 1}, max_new_tokens = {type = "int", min = 1}},
  recipe = cmd.recipe_keys(cmd.INFER_RECIPE, cmd.GENERATE_RECIPE), recipe_own = {infer_backend = "string"},
  recipe_ignored = {"finetuning_type"}}

M.spec = SPEC -- its recipe_own keys are settings the command takes besides lfl.args'

function M.parse(args)
  return cmd.parse_command(SPEC, args)
end

-- model (+ adapters) from parsed options. A comma list of adapters merges all
-- but the last (LlamaFactory merges them all for inference: the same weights)
function M.load(o)
  if not o.model then error("lfl chat: --model is required\n" .. M.usage, 0) end
  if o.gguf_blocks and o.merge then error("lfl chat: --gguf-blocks keeps the GGUF's blocks, which --merge cannot merge "
    .. "an adapter into; drop one of them", 0) end
  local model = lfl.model.load(o.model, {dtype = o.dtype, gguf_blocks = o.gguf_blocks or nil,
                                        rope_scaling = o.rope_scaling and {type = o.rope_scaling} or nil})
  if o.adapter then
    local dirs = {}
    for d in tostring(o.adapter):gmatch("[^,]+") do dirs[#dirs + 1] = d end
    for i, d in ipairs(dirs) do
      lfl.peft.load_adapter(model, d)
      if o.merge or i < #dirs then lfl.peft.merge(model) end
    end
  end
  if o.device and o.device ~= "cpu" then M.to_device(model, o.device) end
  return model
end

-- the model (and its adapters) on CUDA device dev ("cuda", "cuda:N"); decoding
-- then runs there, sampling reads the last logits on the host
function M.to_device(model, dev)
  local rule = require("lfl.train.args").SPEC.device
  local why = rule.check(dev)
  if why then error(fmt("--device: expected %s, got \"%s\"", why, dev), 0) end
  dev = dev == "cuda" and "cuda:0" or dev
  local desc, count = lfl.sys.cuda()
  local idx = tonumber(dev:match("(%d+)$"))
  if idx >= count then
    error(fmt("--device %s: %s", dev, count < 1 and "no CUDA device is usable (" .. desc .. ")"
      or fmt("there %s only %d CUDA device%s", count == 1 and "is" or "are", count, count == 1 and "" or "s")), 0)
  end
  if model.gguf_blocks then
    error(fmt("--device %s: the GGUF's blocks (--gguf-blocks) stay on the CPU for now; drop --gguf-blocks", dev), 0)
  end
  model:to(dev)
end

-- does the model carry a Jinja chat_template (tokenizer_config.json or GGUF)?
local function has_chat_template(model)
  if model.gguf_metadata then return model.gguf_metadata["tokenizer.chat_template"] ~= nil end
  local f = model.path and io.open(model.path .. "/tokenizer_config.json", "rb")
  if not f then return false end
  local s = f:read("*a")
  f:close()
  local ok, cfg = pcall(lfl.json.decode, s)
  return ok and type(cfg) == "table" and type(cfg.chat_template) == "string"
end

-- The template when --template is not given (LlamaFactory needs it for
-- training; chat and serve fall back): a registry checkpoint's template
-- (recipes/models/), else nil so lfl.chat parses the tokenizer's
-- chat_template, else the family's template for the config's model_type when
-- only one family has it (a llama-layout folder could be Llama, Yi, SmolLM2,
-- ...). A stand-in template (LlamaFactory's is not bundled) is never chosen.
-- note(line) reports the choice.
function M.default_template(model, note)
  local ok, reg = pcall(require, "lfl.registry")
  if not ok then return nil end
  local okt, name, info = pcall(reg.default_template, model)
  if not okt then note("[lfl] note: model registry: " .. tostring(name)) return nil end
  if not name then return nil end
  local from_ckpt = info.how == "checkpoint" and not info.stand_in
  if not from_ckpt and (has_chat_template(model) or info.stand_in or info.ambiguous) then return nil end
  note(fmt("[lfl] note: no --template given: using '%s', the registry's template for %s (%s); "
    .. "pass --template to choose another", name, info.checkpoint or ("model_type " .. tostring(model.config and
    model.config.model_type)), "recipes/models/" .. info.family .. ".lua"))
  return name
end

function M.run(args)
  local o = M.parse(args)
  if o.help then print(M.usage) return 0 end
  local model = M.load(o)
  local chat = lfl.chat
  local tok = chat.tokenizer(model)
  local tpl = chat.template(model, tok, o.template or M.default_template(model, print))
  -- interpreted (not JIT-compiled) loops check for Ctrl-C at every instruction
  jit.off()
  local gopts = {tokenizer = tok, template = tpl, system = o.system, temperature = o.temperature, top_p = o.top_p,
                 top_k = o.top_k, min_p = o.min_p, repetition_penalty = o.repetition_penalty,
                 max_new_tokens = o.max_new_tokens, seed = o.seed}
  local messages = {}
  print("Welcome to the CLI application, use `clear` to remove the history, use `exit` to exit the application.")
  while true do
    io.write("\nUser: ")
    io.flush()
    local ok, line = pcall(io.read, "*l")
    if not ok then
      -- Ctrl-C at the prompt: a fresh prompt
      if not tostring(line):find("interrupted", 1, true) then error(line, 0) end
      io.write("\n")
    elseif line == nil then
      io.write("\n")
      break
    else
      local q = line:gsub("^%s+", ""):gsub("%s+$", "")
      if q == "exit" then break
      elseif q == "clear" then
        messages = {}
        print("History has been removed.")
      elseif q ~= "" then
        messages[#messages + 1] = {role = "user", content = q}
        io.write("Assistant: ")
        io.flush()
        local parts = {}
        local g = {}
        for k, v in pairs(gopts) do g[k] = v end
        g.on_text = function(d) parts[#parts + 1] = d; io.write(d); io.flush() end
        local ok2, err = pcall(chat.chat, model, messages, g)
        if not ok2 then
          if not tostring(err):find("interrupted", 1, true) then error(err, 0) end
          lfl.set_grad_enabled(true)
          io.write(" [stopped]")
        end
        io.write("\n")
        messages[#messages + 1] = {role = "assistant", content = table.concat(parts)}
      end
    end
  end
  return 0
end

return M
