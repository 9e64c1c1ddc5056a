-- The Lua half of the lfl library, loaded into every state after the C bridge:
-- tensor operators and printing, and lazy loading of the stdlib modules.
local lfl = lfl
local T = lfl.Tensor
local M = T.methods
local floor, fmt, concat = math.floor, string.format, table.concat

local function is_tensor(x) return getmetatable(x) == T end
lfl.is_tensor = is_tensor

-- arithmetic: numbers on either side become scalar ops
T.__add = function(a, b) return lfl.add(a, b) end
T.__mul = function(a, b) return lfl.mul(a, b) end
T.__sub = function(a, b) return lfl.sub(a, b) end
T.__div = function(a, b)
  if type(a) == "number" then return lfl.div(lfl.full(b:size(), a, b:dtype()), b) end
  return lfl.div(a, b)
end
T.__unm = function(a) return lfl.affine(a, -1, 0) end
T.__pow = function(a, p)
  assert(type(p) == "number", "tensor ^ x needs a number exponent")
  return lfl.pow(a, p)
end
T.__concat = function(a, b) return tostring(a) .. tostring(b) end

function M.scale(a, s) return lfl.affine(a, s, 0) end
function M.shape(t) return t:size() end

-- ---- printing, in the style of torch7/PyTorch ----
local EDGE, MAXN = 3, 1000 -- elide the middle past MAXN elements

-- kind: "int", "bool" or "float"; sci: scientific notation for floats
local function num(x, kind, sci)
  if kind == "bool" then return x ~= 0 and "true" or "false" end
  if kind == "int" then return fmt("%d", x) end
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" elseif x == -math.huge then return "-inf" end
  return fmt(sci and "%.4e" or "%.4f", x)
end

-- as PyTorch: scientific notation when fixed "%.4f" would hide the values
local function want_sci(vals)
  local amax, amin = 0, math.huge
  for _, x in pairs(vals) do
    local a = math.abs(x)
    if a == a and a ~= math.huge and a ~= 0 then
      if a > amax then amax = a end
      if a < amin then amin = a end
    end
  end
  return amax >= 1e8 or amin < 1e-4
end

local function format_tensor(t)
  local size, nd, dt = t:size(), t:dim(), t:dtype()
  local kind = dt == "bool" and "bool" or dt:match("^[iu]%d") and "int" or "float"
  local dev = t:device()
  local src = dev == "cpu" and t or t:to("cpu")
  if dt ~= "f32" and dt ~= "f64" and dt ~= "i64" and dt ~= "i32" and dt ~= "u8" and dt ~= "bool"
    and dt ~= "f16" and dt ~= "bf16" then
    return fmt("tensor(<%s blocks>, shape=[%s], dtype=%s, device=%s)", dt, concat(size, ","), dt, dev)
  end
  local n = t:numel()
  local elide = n > MAXN
  local strides, acc = {}, 1
  for d = nd, 1, -1 do strides[d] = acc; acc = acc * size[d] end
  -- pass 1 reads the printed elements (flat: 1-based), then their format and
  -- width are fixed; pass 2 renders
  local width, vals, sci = 0, {}, false
  local function el(flat)
    local x = vals[flat]
    if not x then x = src:_at(flat); vals[flat] = x; return end
    local s = num(x, kind, sci)
    if #s > width then width = #s end
    return s
  end
  local function walk(d, base, visit)
    local len = size[d]
    local idxs = {}
    if elide and len > 2 * EDGE then
      for i = 1, EDGE do idxs[#idxs + 1] = i end
      idxs[#idxs + 1] = false
      for i = len - EDGE + 1, len do idxs[#idxs + 1] = i end
    else
      for i = 1, len do idxs[i] = i end
    end
    return visit(d, base, idxs)
  end
  local function measure(d, base, idxs)
    for _, i in ipairs(idxs) do
      if i then
        local b = base + (i - 1) * strides[d]
        if d == nd then el(b + 1) else walk(d + 1, b, measure) end
      end
    end
  end
  local function render(d, base, idxs, indent)
    local parts = {}
    for _, i in ipairs(idxs) do
      if not i then
        parts[#parts + 1] = "..."
      else
        local b = base + (i - 1) * strides[d]
        if d == nd then
          local s = el(b + 1)
          parts[#parts + 1] = string.rep(" ", width - #s) .. s
        else
          parts[#parts + 1] = walk(d + 1, b, function(dd, bb, ii) return render(dd, bb, ii, indent .. " ") end)
        end
      end
    end
    if d == nd then return "[" .. concat(parts, ", ") .. "]" end
    local sep = ",\n" .. (nd - d > 1 and "\n" or "") .. indent .. " "
    return "[" .. concat(parts, sep) .. "]"
  end
  local body
  if nd == 0 then
    local x = src:item()
    body = num(x, kind, kind == "float" and want_sci({x}))
  elseif n == 0 then
    body = "[]"
  else
    walk(1, 0, measure)
    sci = kind == "float" and want_sci(vals)
    for flat in pairs(vals) do el(flat) end
    body = walk(1, 0, function(d, b, ii) return render(d, b, ii, "       ") end)
  end
  local extra = {}
  extra[#extra + 1] = "shape=[" .. concat(size, ",") .. "]"
  extra[#extra + 1] = "dtype=" .. dt
  if dev ~= "cpu" then extra[#extra + 1] = "device=" .. dev end
  if t:grad_fn() then extra[#extra + 1] = "grad_fn=" .. t:grad_fn()
  elseif t:get_requires_grad() then extra[#extra + 1] = "requires_grad=true" end
  return "tensor(" .. body .. ",\n       " .. concat(extra, ", ") .. ")"
end
T.__tostring = format_tensor
lfl.format_tensor = format_tensor

-- an empty table that lfl.json.encode writes as {} rather than []
function lfl.json.object(t) return setmetatable(t or {}, {__jsontype = "object"}) end

-- integers beyond 2^53 decode to lfl.json.Int values; lfl.text.pyint gives
-- them arithmetic and ordering, so they must be usable from the start
require("lfl.text.pyint")

-- A whole file's bytes, or nil and io.open's message when it cannot be opened
-- (the stdlib modules' one way of reading a file)
function lfl.read_file(path) return lfl.fs.read(path) end

-- lfl.load(path | hub id, opts): a model from an HF folder, a GGUF file or the
-- Hub (lfl.model.load), the short form the REPL and one-liners use
function lfl.load(path, opts) return lfl.model.load(path, opts) end

-- The stdlib is grouped by the product's parts: model/ (loading, architectures,
-- registry), data/ (the data worker), train/ (trainer, optimizers, methods),
-- infer/ (generation, chat, serving, prediction, evaluation), text/ (tokenizer,
-- templates, Jinja, JSON), hub/, cmd/ (the commands). lfl.<name> loads a
-- module on first use by its short name; require("lfl.<name>") accepts the
-- short names too, so scripts written before the grouping keep working.
local MODULES = {
  model = "lfl.model", decoder = "lfl.model.decoder", rope = "lfl.model.rope", gguf_model = "lfl.model.gguf",
  resize = "lfl.model.resize", registry = "lfl.model.registry", convert = "lfl.model.convert",
  data = "lfl.data", preprocess = "lfl.data.preprocess", stream = "lfl.data.stream", dataset_cache = "lfl.data.cache",
  pairwise = "lfl.data.pairwise", collate = "lfl.data.collate",
  trainer = "lfl.train.trainer", optim = "lfl.train.optim", peft = "lfl.train.peft", oft = "lfl.train.oft", galore = "lfl.train.galore",
  badam = "lfl.train.badam", plot = "lfl.train.plot", args = "lfl.train.args", approach = "lfl.train.approach",
  tensorboard = "lfl.train.tensorboard",
  pref = "lfl.train.pref", value_head = "lfl.train.value_head",
  generate = "lfl.infer.generate", chat = "lfl.infer.chat", serve = "lfl.infer.serve", predict = "lfl.infer.predict",
  evaluate = "lfl.infer.evaluate", metrics = "lfl.infer.metrics", jieba = "lfl.infer.jieba",
  tokenizer = "lfl.text.tokenizer", template = "lfl.text.template", jinja = "lfl.text.jinja",
  pyjson = "lfl.text.pyjson", pyint = "lfl.text.pyint", tools = "lfl.text.tools",
  hub = "lfl.hub", recipes = "lfl.recipes", cli = "lfl.cmd", cmd = "lfl.cmd", pretty = "lfl.pretty", test = "lfl.test",
}
lfl._modules = MODULES

-- require("lfl.template") and the like: the short name's module
table.insert(package.loaders, 2, function(name)
  local short = name:match("^lfl%.([%w_]+)$")
  local target = short and MODULES[short]
  if not target or target == name then return nil end
  return function() return require(target) end
end)

setmetatable(lfl, {
  __index = function(self, k)
    if type(k) ~= "string" then return nil end
    local name = MODULES[k] or ("lfl." .. k)
    local ok, mod = pcall(require, name)
    if ok then rawset(self, k, mod); return mod end
    if not tostring(mod):find("module '" .. name .. "' not found", 1, true) then error(mod, 2) end
    return nil
  end,
})

return lfl
