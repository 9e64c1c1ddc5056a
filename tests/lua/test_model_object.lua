-- Models and adapters as C-backed userdata (core/model/, lua/l_model.c): the
-- parameter store and its views (m.params, m.names, named_parameters), to(),
-- several named adapters on one model switched per call, merge / unmerge,
-- PEFT save / load of a named adapter, and the errors of each.
local t = lfl.test
local peft = lfl.peft
local root = lfl.home .. "/tests/golden/models/"
local tmp = os.tmpname()
os.remove(tmp)

local function ids() return lfl.tensor({{1, 5, 9, 33, 2, 7, 11, 60}}, "i64") end
local function maxdiff(a, b) return (a - b):abs():max():item() end

t.suite("model_object", {
  userdata_with_views = function()
    local m = lfl.model.load(root .. "llama")
    t.assert_eq(type(m), "userdata")
    t.assert(tostring(m):match("^Model%(llama: "), tostring(m))
    local names, params = m:named_parameters()
    t.assert(#names > 5 and names == m.names, "the names list is cached while no name changes")
    for i = 2, #names do t.assert(names[i - 1] < names[i], "sorted") end
    t.assert(rawequal(params, m.params), "the same view")
    local n = 0
    for i, p in ipairs(m:parameters()) do n = n + p:numel(); t.assert_eq(p:numel(), params[names[i]]:numel()) end
    t.assert_eq(m:num_parameters(), n, "untied: every tensor counts")
    -- Lua fields live on the object
    m.note = "mine"
    t.assert_eq(m.note, "mine")
    t.assert_eq(m.config.model_type, "llama")
    -- a new name shows in m.names; removing it too
    m.params["extra.weight"] = lfl.zeros(2, 2)
    t.assert(m.names ~= names and #m.names == #names + 1, "names rebuilt after a change")
    m.params["extra.weight"] = nil
    t.assert_eq(#m.names, #names)
    t.assert_error(function() m.params = {} end, "cannot be replaced")
    t.assert_error(function() m.params["x"] = 3 end, "Tensor")
  end,

  to_dtype_keeps_outputs_close = function()
    local m = lfl.model.load(root .. "llama")
    local ref = lfl.no_grad(function() return m:forward(ids()) end)
    t.assert(m:to("bf16") == m, "to returns the model")
    t.assert_eq(m.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "bf16")
    t.assert_eq(m.params["model.norm.weight"]:dtype(), "f32", "vectors stay f32")
    local out = lfl.no_grad(function() return m:forward(ids()) end)
    t.assert(maxdiff(out, ref) < 0.1, "bf16 weights give nearly the same logits")
    m:to("f32")
    t.assert_eq(m.params["model.layers.0.self_attn.q_proj.weight"]:dtype(), "f32")
    t.assert_error(function() m:to("i64") end, "floating")
    t.assert_error(function() m:to("tpu") end, "neither a dtype")
  end,

  adapters_switch_per_call = function()
    local m = lfl.model.load(root .. "llama")
    local base = lfl.no_grad(function() return m:forward(ids()) end)
    lfl.manual_seed(3)
    local a = peft.add_lora(m, {name = "a", rank = 4, target = "q_proj,v_proj"})
    local b = peft.add_lora(m, {name = "b", rank = 2, alpha = 8, target = "o_proj"})
    t.assert(tostring(a):match("^Adapter%(a: LoRA r=4"), tostring(a))
    t.assert_eq(table.concat(m:adapter_names(), ","), "a,b")
    t.assert(m.lora == b, "the adapter added last is active")
    for _, ad in ipairs({a, b}) do
      for _, mod in ipairs(ad.modules) do local _, B = ad:get(mod); B:normal_(0, 0.2) end
    end
    local ya = lfl.no_grad(function() return m:forward(ids(), {adapter = "a"}) end)
    local yb = lfl.no_grad(function() return m:forward(ids()) end)
    local y0 = lfl.no_grad(function() return m:forward(ids(), {adapter = false}) end)
    t.assert(m.lora == b, "a per-call adapter leaves the active one")
    t.assert(maxdiff(y0, base) == 0, "adapter = false is the base model")
    t.assert(maxdiff(ya, base) > 1e-4 and maxdiff(yb, base) > 1e-4 and maxdiff(ya, yb) > 1e-4, "each adapter acts")
    m:set_adapter("a")
    t.assert(maxdiff(lfl.no_grad(function() return m:forward(ids()) end), ya) == 0, "set_adapter")
    t.assert_error(function() m:set_adapter("c") end, "attached: a, b")
    t.assert_error(function() m:forward(ids(), {adapter = "c"}) end, "no adapter named 'c'")
    t.assert(m.lora == a, "restored after an error")
    -- loss takes the same switch
    local labels = ids()
    local la = m:loss(ids(), labels, {adapter = "b"}):item()
    m:set_adapter("b")
    t.assert_eq(m:loss(ids(), labels):item(), la)
    -- disabled
    b.enabled = false
    t.assert(maxdiff(lfl.no_grad(function() return m:forward(ids()) end), base) == 0, "disabled adapter")
    b.enabled = true
    m:remove_adapter("a")
    t.assert_eq(table.concat(m:adapter_names(), ","), "b")
    m.lora = nil
    t.assert(m.lora == nil and m.adapters == nil, "m.lora = nil takes the active adapter off")
  end,

  merge_unmerge = function()
    local m = lfl.model.load(root .. "llama")
    lfl.manual_seed(5)
    local ad = peft.add_lora(m, {rank = 4, use_dora = true})
    for _, mod in ipairs(ad.modules) do local _, B = ad:get(mod); B:normal_(0, 0.2) end
    local w0 = m.params["model.layers.0.self_attn.q_proj.weight"]
    local live = lfl.no_grad(function() return m:forward(ids()) end)
    m:merge_adapter()
    t.assert(ad.merged, "marked merged")
    local merged = lfl.no_grad(function() return m:forward(ids()) end)
    t.assert(maxdiff(merged, live) < 1e-4, "a merged adapter gives the live adapter's logits (applied once)")
    t.assert_error(function() ad:set(ad.modules[1], ad:get(ad.modules[1])) end, "merged")
    m:unmerge_adapter()
    t.assert(maxdiff(m.params["model.layers.0.self_attn.q_proj.weight"], w0) < 1e-5, "unmerge restores W")
    t.assert(maxdiff(lfl.no_grad(function() return m:forward(ids()) end), live) < 1e-4, "live again")
  end,

  save_load_named = function()
    local m = lfl.model.load(root .. "llama")
    lfl.manual_seed(9)
    local ad = peft.add_lora(m, {name = "mine", rank = 4, alpha = 16, use_rslora = true})
    for _, mod in ipairs(ad.modules) do local _, B = ad:get(mod); B:normal_(0, 0.2) end
    local want = lfl.no_grad(function() return m:forward(ids()) end)
    ad:save(tmp)
    local m2 = lfl.model.load(root .. "llama")
    local back = peft.load_adapter(m2, tmp, "again")
    t.assert_eq(back.name, "again")
    t.assert_eq(back.scaling, ad.scaling)
    t.assert_eq(#back, #ad)
    t.assert(maxdiff(lfl.no_grad(function() return m2:forward(ids()) end), want) < 1e-5, "same logits")
    local names = ad:parameters()
    t.assert(names[1]:match("^base_model%.model%..*%.lora_A%.weight$"), names[1])
  end,

  adapter_errors = function()
    t.assert_error(function() lfl.adapter.new{r = 0} end, "rank must be positive")
    t.assert_error(function() lfl.adapter.new{r = 2, dropout = 1} end, "dropout")
    local ad = lfl.adapter.new{r = 2}
    t.assert_error(function() ad:set("x", lfl.zeros(3, 4), lfl.zeros(5, 2)) end, "r = 2")
    t.assert_error(function() ad:set("x", lfl.zeros(2, 4), lfl.zeros(5, 2), lfl.zeros(5)) end, "use_dora")
    ad:set("model.layers.0.self_attn.q_proj", lfl.zeros(2, 3), lfl.zeros(5, 2))
    local m = lfl.model.load(root .. "llama")
    t.assert_error(function() m:add_adapter(ad) end, "expected")
    t.assert_error(function() ad.name = "x" end, "fixed")
  end,
})

t.run()
for _, f in ipairs({"adapter_config.json", "adapter_model.safetensors"}) do os.remove(tmp .. "/" .. f) end
os.remove(tmp)
