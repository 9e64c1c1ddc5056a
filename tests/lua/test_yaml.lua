-- lfl.yaml.decode against PyYAML's SafeLoader and LlamaFactory's recipe reader
-- (OmegaConf.load): tests/golden/yaml/expected.json holds the canonical text of
-- what each of them makes of tests/golden/yaml/inputs/*.yaml (or the error and
-- its line), llamafactory_examples.json the sha256 of the canonical text of every
-- YAML file in LlamaFactory's examples (compared from ../shared when it is there).
-- Written by tests/ref/make_yaml_goldens.py, whose canon() this file mirrors.
local t = lfl.test
local fmt = string.format
local home = lfl.home
local gold_dir = home .. "/tests/golden/yaml/"
local sha256 = lfl._tokcache.sha256

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local null = lfl.yaml.null
local Int = lfl.json.Int

-- the golden script's canonical text: "~" null, "T"/"F", "n%.17g", "i<digits>"
-- beyond 2^53, "s<bytes>:<text>", "[a,b]", "{k=v,...}" sorted, "()" empty
local function canon(v)
  if v == nil or v == null then return "~" end
  if v == true then return "T" end
  if v == false then return "F" end
  if type(v) == "number" then
    if v ~= v then return "nnan" end
    if v == math.huge then return "ninf" end
    if v == -math.huge then return "n-inf" end
    return "n" .. fmt("%.17g", v)
  end
  if type(v) == "string" then return "s" .. #v .. ":" .. v end
  if type(v) == "table" and getmetatable(v) == Int then return "i" .. v.digits end
  assert(type(v) == "table", "no canonical form for a " .. type(v))
  if next(v) == nil then return "()" end
  local n = #v
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  local parts = {}
  if n > 0 and count == n then
    for i = 1, n do parts[i] = canon(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for k, x in pairs(v) do parts[#parts + 1] = canon(k) .. "=" .. canon(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

-- decode under a schema: the canonical text, or nil and the error
local function outcome(text, name, schema)
  local ok, v = pcall(lfl.yaml.decode, text, name, {schema = schema})
  if not ok then return nil, tostring(v) end
  -- OmegaConf.load makes an empty document an empty config
  if v == nil and schema == "omegaconf" then return "()" end
  return canon(v)
end

local function check(name, text, want, schema, digest)
  local got, err = outcome(text, name, schema)
  if want.error then
    t.assert(got == nil, fmt("%s (%s): PyYAML fails (%s), lfl read %s", name, schema, want.error, tostring(got)))
    -- the error names the file, and the line PyYAML names
    t.assert(err:find(name .. ":", 1, true) == 1, fmt("%s (%s): the error does not name the file: %s", name, schema, err))
    if want.line ~= nil then
      t.assert(err:find(name .. ":" .. want.line .. ":", 1, true),
        fmt("%s (%s): PyYAML fails at line %d (%s), lfl says: %s", name, schema, want.line, want.error, err))
    end
    return
  end
  t.assert(got ~= nil, fmt("%s (%s): lfl fails: %s", name, schema, tostring(err)))
  if digest then
    t.assert(sha256(got) == want.sha256, fmt("%s (%s): lfl reads %s", name, schema, got))
  else
    t.assert(got == want.canon, fmt("%s (%s):\n  PyYAML: %s\n  lfl:    %s", name, schema, want.canon, got))
  end
end

local suite = {}

suite.inputs_match_pyyaml_and_omegaconf = function()
  local expected = lfl.json.decode(read(gold_dir .. "expected.json"))
  local n = 0
  for _, name in ipairs(lfl.fs.list(gold_dir .. "inputs")) do
    local want = expected[name]
    t.assert(want, name .. " has no golden (rerun tests/ref/make_yaml_goldens.py)")
    local text = read(gold_dir .. "inputs/" .. name)
    check(name, text, want.pyyaml, "pyyaml")
    check(name, text, want.omegaconf, "omegaconf")
    n = n + 1
  end
  t.assert(n >= 25, "inputs: " .. n)
end

suite.llamafactory_examples_match = function()
  local dir = home .. "/../shared/reference/llamafactory-examples"
  if not lfl.fs.isdir(dir) then print("SKIP llamafactory_examples_match: " .. dir .. " is absent") return end
  local expected = lfl.json.decode(read(gold_dir .. "llamafactory_examples.json"))
  local n = 0
  for _, rel in ipairs(lfl.fs.walk(dir)) do
    if rel:match("%.ya?ml$") then
      local want = expected[rel]
      t.assert(want, rel .. " has no golden (rerun tests/ref/make_yaml_goldens.py)")
      local text = read(dir .. "/" .. rel)
      check(rel, text, want.pyyaml, "pyyaml", true)
      check(rel, text, want.omegaconf, "omegaconf", true)
      n = n + 1
    end
  end
  t.assert(n >= 90, "examples: " .. n)
end

-- the two bugs of the hand-written reader it replaces, and the typing
-- lfl.args does on top (HfArgumentParser's, by the field type)
suite.recipe_values = function()
  local r = lfl.yaml.decode('default_system: "You are assistant #1"  # a comment\n' ..
    "lr_scheduler_kwargs: {min_lr_rate: 0.1}\nlearning_rate: 1e-4\n", "r.yaml", {schema = "omegaconf"})
  t.assert_eq(r.default_system, "You are assistant #1")
  t.assert_eq(r.lr_scheduler_kwargs.min_lr_rate, 0.1)
  t.assert_eq(r.learning_rate, 1e-4, "OmegaConf's float rule")
  local p = lfl.yaml.decode("learning_rate: 1e-4\n", "p.yaml")
  t.assert_eq(p.learning_rate, "1e-4", "PyYAML keeps 1e-4 as a string")
  t.assert_eq(lfl.args.check("learning_rate", p.learning_rate, "p.yaml"), 1e-4, "lfl.args types it")
end

suite.values_and_sharing = function()
  local v = lfl.yaml.decode("a: &x {k: [1, null]}\nb: *x\nc: 123456789012345678901\n")
  t.assert(rawequal(v.a, v.b), "an alias is the same table")
  t.assert(v.a.k[2] == null and null == lfl.json.null, "null inside a table is lfl.yaml.null (= lfl.json.null)")
  t.assert(rawequal(v.c, lfl.json.int("123456789012345678901")), "a big integer is lfl.json's exact Int")
  t.assert_eq(lfl.yaml.decode(""), nil)
  t.assert_eq(lfl.yaml.decode("~"), nil, "a null document is nil")
  t.assert_eq(lfl.yaml.decode("'a\\0b'"), "a\\0b")
  t.assert_eq(lfl.yaml.decode('"a\\0b"'), "a\0b", "a NUL byte in a string is kept")
end

suite.errors_name_file_line_column = function()
  t.assert_error(function() lfl.yaml.decode("a: 1\nb: [1, 2\n", "x.yaml") end, "x.yaml:3:1: ")
  t.assert_error(function() lfl.yaml.decode("a:\n  b: !!int nope\n", "x.yaml") end,
    "x.yaml:2:6: !!int: the value is not an integer")
  t.assert_error(function() lfl.yaml.decode("a: !!binary aGk=\n", "x.yaml") end,
    "x.yaml:1:4: the tag 'tag:yaml.org,2002:binary' is not supported")
  t.assert_error(function() lfl.yaml.decode("a: 1\n", "x.yaml", {schema = "yaml12"}) end,
    'schema must be "pyyaml" or "omegaconf"')
  t.assert_error(function() lfl.yaml.decode("\xff\xfe\xfd: 1\n", "bad.yaml") end, "bad.yaml")
  -- deep nesting is refused, not a C stack overflow
  t.assert_error(function() lfl.yaml.decode(string.rep("[", 600) .. string.rep("]", 600), "deep.yaml") end,
    "deep.yaml:1:514: nesting deeper than 512")
  -- recursive data built through an anchor does not hang
  local r = lfl.yaml.decode("&a [1, *a]")
  t.assert(rawequal(r[2], r), "a recursive sequence refers to itself")
end

t.suite("yaml", suite)
t.run()
