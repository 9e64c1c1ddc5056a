-- Model sizes from config.json and GGUF metadata are checked before any
-- weight is read: counts that are not positive integers, heads that do not
-- divide, a head dimension that rotary embeddings cannot use are errors naming
-- the file and the key; a checkpoint whose layers lie past num_hidden_layers
-- (or a GGUF's blocks past block_count) is refused naming the first such
-- tensor, since they would be silently unused (num_hidden_layers 1 with two
-- layers saved, or -1 / 0, used to drop the layer weights without a word;
-- a GGUF head_count of 0 used to end in "reshape: negative size
-- -9223372036854775808"). Missing layers are refused as before.
local t = lfl.test
local home = lfl.home
local src = home .. "/tests/golden/models/llama"
local base = os.tmpname()
local tmp = base .. "_cfg"
lfl.fs.remove(tmp)
lfl.fs.mkdir(tmp)

local n = 0
-- the tiny llama (two layers) with config.json edited by `edit`; its folder
local function variant(edit, weights)
  n = n + 1
  local dir = tmp .. "/v" .. n
  lfl.fs.mkdir(dir)
  local cfg = lfl.json.decode(lfl.read_file(src .. "/config.json"))
  edit(cfg)
  lfl.fs.write(dir .. "/config.json", lfl.json.encode(cfg))
  if weights then lfl.safetensors.save(dir .. "/model.safetensors", weights)
  else lfl.fs.symlink(src .. "/model.safetensors", dir .. "/model.safetensors") end
  return dir
end

local function set(key, value) return function(c) c[key] = value end end

-- loading `dir` fails with a message holding `want` and the config's path
local function refused(dir, want)
  local err = t.assert_error(function() lfl.model.load(dir) end, want)
  t.assert(tostring(err):find(dir .. "/config.json", 1, true), "the error names the config: " .. tostring(err))
end

t.suite("config", {
  layer_counts = function()
    refused(variant(set("num_hidden_layers", -1)), "num_hidden_layers is -1, expected an integer >= 1")
    refused(variant(set("num_hidden_layers", 0)), "num_hidden_layers is 0, expected an integer >= 1")
    refused(variant(set("num_hidden_layers", 1.5)), "num_hidden_layers is 1.5, expected an integer >= 1")
    refused(variant(set("num_hidden_layers", "2")), 'num_hidden_layers is "2", expected an integer >= 1')
    refused(variant(set("num_hidden_layers", lfl.json.null)), "num_hidden_layers is missing")
    -- fewer layers than saved: the second layer would be unused
    refused(variant(set("num_hidden_layers", 1)),
      "tensor 'model.layers.1.input_layernorm.weight' belongs to layer 1, but num_hidden_layers is 1 (layers 0..0)")
    -- more than saved: the missing ones are named
    refused(variant(set("num_hidden_layers", 3)), "model: parameter 'model.layers.2.")
    t.assert_eq(lfl.model.load(variant(function() end)).arch.layers, 2, "the unedited copy loads")
  end,

  -- one layer too many in the weights themselves, with the config unchanged
  extra_layer_in_weights = function()
    local w = lfl.safetensors.load(src .. "/model.safetensors")
    w["model.layers.2.mlp.down_proj.weight"] = w["model.layers.1.mlp.down_proj.weight"]
    refused(variant(function() end, w), "tensor 'model.layers.2.mlp.down_proj.weight' belongs to layer 2")
  end,

  heads_and_sizes = function()
    refused(variant(set("num_attention_heads", 0)), "num_attention_heads is 0, expected an integer >= 1")
    refused(variant(set("num_key_value_heads", 0)), "num_key_value_heads is 0, expected an integer >= 1")
    refused(variant(set("num_key_value_heads", 3)), "num_attention_heads 4 is not a multiple of num_key_value_heads 3")
    refused(variant(set("num_key_value_heads", 8)), "num_attention_heads 4 is not a multiple of num_key_value_heads 8")
    refused(variant(set("head_dim", 0)), "head_dim is 0, expected an integer >= 1")
    refused(variant(set("head_dim", 7)), "the head dimension 7 is odd")
    refused(variant(function(c) c.head_dim = nil; c.hidden_size = 30 end),
      "hidden_size 30 is not divisible by num_attention_heads 4 (and there is no head_dim)")
    refused(variant(set("hidden_size", -32)), "hidden_size is -32, expected an integer >= 1")
    refused(variant(set("vocab_size", 0)), "vocab_size is 0, expected an integer >= 1")
    refused(variant(set("intermediate_size", 1e300)), "intermediate_size is 1e+300, expected an integer >= 1")
    refused(variant(function(c) c.rope_parameters.rope_theta = "big" end),
      'rope_parameters.rope_theta is "big", expected a number')
    refused(variant(set("rope_theta", {1})), "rope_theta is a list, expected a number")
    -- rope_theta 0 is accepted (and gives a NaN loss: test_attention_nan.lua)
    t.assert(lfl.model.load(variant(function(c) c.rope_parameters.rope_theta = 0 end)), "rope_theta 0 loads")
  end,
})

-- GGUF: the tiny OLMo2 with metadata values patched in place
local gsrc = home .. "/tests/golden/models/olmo2/model.gguf"
local gbytes = lfl.read_file(gsrc)

-- a copy of the GGUF with the uint32 value of metadata key `key` set to v
local function patched(key, v)
  local k = "olmo2." .. key
  local at = gbytes:find(k .. "\4\0\0\0", 1, true) -- the key, then GGUF type 4 (uint32)
  assert(at, "no uint32 " .. k .. " in the fixture")
  local p = at + #k + 4
  local le = string.char(v % 256, math.floor(v / 256) % 256, math.floor(v / 65536) % 256, math.floor(v / 16777216))
  n = n + 1
  local path = tmp .. "/g" .. n .. ".gguf"
  lfl.fs.write(path, gbytes:sub(1, p - 1) .. le .. gbytes:sub(p + 4))
  return path
end

local function grefused(path, want)
  local err = t.assert_error(function() lfl.model.load(path) end, want)
  t.assert(tostring(err):find(path, 1, true), "the error names the file: " .. tostring(err))
end

t.suite("gguf_config", {
  counts = function()
    t.assert_eq(lfl.model.load(patched("block_count", 2)).arch.layers, 2, "the unchanged value loads")
    grefused(patched("attention.head_count", 0), "metadata olmo2.attention.head_count is 0, expected an integer >= 1")
    grefused(patched("attention.head_count_kv", 0), "metadata olmo2.attention.head_count_kv is 0")
    grefused(patched("attention.head_count", 3),
      "metadata olmo2.attention.head_count 3 is not a multiple of olmo2.attention.head_count_kv 2")
    grefused(patched("embedding_length", 0), "metadata olmo2.embedding_length is 0")
    grefused(patched("block_count", 0), "metadata olmo2.block_count is 0, expected an integer >= 1")
  end,

  blocks_past_block_count = function()
    grefused(patched("block_count", 1),
      "tensor 'blk.1.attn_k.weight' belongs to block 1, but metadata olmo2.block_count is 1 (blocks 0..0)")
    grefused(patched("block_count", 3), "model: parameter 'model.layers.2.")
  end,
})

local ok, err = pcall(t.run)
lfl.fs.remove(tmp)
os.remove(base)
if not ok then error(err, 0) end
