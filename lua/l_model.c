/* The Model and Adapter userdata. Each box holds a reference to its C object;
 * one box per C object (a weak table maps objects to boxes), so `m.lora ==
 * m.lora` and Lua fields set on an object stay with it. Lua-side fields
 * (config, arch, generation settings, a family's extras) live in the box's
 * environment table; what C owns (parameters, path, adapters and their
 * factors, rank, scaling, enabled) is read and written through C. Compatible
 * views keep today's spelling: m.params[name], m.names, m.lora (the active
 * adapter), m.adapters[module].A. */
#include <stdlib.h>
#include <string.h>
#include "bridge.h"
#include "model/model.h"

#define MODEL_MT "lfl.Model"
#define ADAPTER_MT "lfl.Adapter"

/* keys of the hidden entries of a box's environment */
static char K_PARAMS, K_NAMES, K_NAMES_GEN, K_VIEW, K_VIEW_GEN, K_VIEW_OF, K_ADAPTERS;

/* ---- boxes ---- */

static void push_box(lua_State *L, void *obj, const char *mt, size_t sz)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "lfl.objects");
    lua_pushlightuserdata(L, obj);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) { lua_remove(L, -2); return; }
    lua_pop(L, 1);
    void **box = lua_newuserdata(L, sz);
    *box = obj;
    luaL_getmetatable(L, mt);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    lua_pushlightuserdata(L, obj);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

/* pushes the box of m, taking over the caller's reference when the box is new */
static void push_model(lua_State *L, lfl_model *m)
{
    push_box(L, m, MODEL_MT, sizeof(lfl_model *));
}

static lfl_model *check_model(lua_State *L, int i)
{
    lfl_model **b = luaL_checkudata(L, i, MODEL_MT);
    if (!*b) luaL_argerror(L, i, "model was freed");
    return *b;
}

static lfl_adapter *check_adapter(lua_State *L, int i)
{
    lfl_adapter **b = luaL_checkudata(L, i, ADAPTER_MT);
    if (!*b) luaL_argerror(L, i, "adapter was freed");
    return *b;
}

/* a box for an object someone else holds: the box takes its own reference */
static void push_adapter_ref(lua_State *L, lfl_adapter *a)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "lfl.objects");
    lua_pushlightuserdata(L, a);
    lua_rawget(L, -2);
    bool known = !lua_isnil(L, -1);
    lua_pop(L, 2);
    if (!known) lfl_adapter_retain(a);
    push_box(L, a, ADAPTER_MT, sizeof(lfl_adapter *));
}

static int obj_gc(lua_State *L, bool model)
{
    void **b = lua_touserdata(L, 1);
    if (b && *b) {
        if (model) lfl_model_release(*b); else lfl_adapter_release(*b);
        *b = NULL;
    }
    return 0;
}
static int model_gc(lua_State *L) { return obj_gc(L, true); }
static int adapter_gc(lua_State *L) { return obj_gc(L, false); }

/* env[key] of the box at i */
static void env_get(lua_State *L, int i, void *key)
{
    lua_getfenv(L, i);
    lua_pushlightuserdata(L, key);
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

static void env_set(lua_State *L, int i, void *key) /* value on top */
{
    lua_getfenv(L, i);
    lua_pushlightuserdata(L, key);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

/* __index of a box: its metatable's methods first (pushed, returns true) */
static bool push_method(lua_State *L, const char *mt)
{
    luaL_getmetatable(L, mt);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return true;
    lua_pop(L, 3);
    return false;
}

/* self[key] from / to the box's environment table (its Lua-side fields) */
static int env_index(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int env_newindex(lua_State *L)
{
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

/* ---- the parameter proxy: m.params[name] ---- */

static int params_index(lua_State *L)
{
    lfl_model *m = check_model(L, lua_upvalueindex(1));
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    lfl_tensor *t = lfl_model_get(m, lua_tostring(L, 2));
    if (!t) return 0;
    lfl_lua_push_tensor(L, lfl_tensor_retain(t));
    return 1;
}

static int params_newindex(lua_State *L)
{
    lfl_model *m = check_model(L, lua_upvalueindex(1));
    const char *name = luaL_checkstring(L, 2);
    lfl_lua_check(L, lfl_model_set(m, name, lfl_lua_opt_tensor(L, 3)));
    return 0;
}

static int params_len(lua_State *L)
{
    lua_pushinteger(L, check_model(L, lua_upvalueindex(1))->n);
    return 1;
}

static void push_params(lua_State *L, int self)
{
    env_get(L, self, &K_PARAMS);
    if (!lua_isnil(L, -1)) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, self);
    lua_pushcclosure(L, params_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, self);
    lua_pushcclosure(L, params_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, self);
    lua_pushcclosure(L, params_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "lfl.Model parameters");
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    env_set(L, self, &K_PARAMS);
}

/* m.names: the sorted names, rebuilt only after a name came or went */
static void push_names(lua_State *L, int self, lfl_model *m)
{
    env_get(L, self, &K_NAMES_GEN);
    bool fresh = lua_isnumber(L, -1) && (unsigned)lua_tonumber(L, -1) == m->gen;
    lua_pop(L, 1);
    if (fresh) { env_get(L, self, &K_NAMES); return; }
    lua_createtable(L, m->n, 0);
    for (int i = 0; i < m->n; i++) {
        lua_pushstring(L, m->names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushvalue(L, -1);
    env_set(L, self, &K_NAMES);
    lua_pushnumber(L, m->gen);
    env_set(L, self, &K_NAMES_GEN);
}

/* ---- the adapter's targets as a table: {module = {A =, B =, magnitude =}} ---- */

static void push_targets(lua_State *L, lfl_adapter *a)
{
    lua_createtable(L, 0, a->n);
    for (int i = 0; i < a->n; i++) {
        lua_createtable(L, 0, 3);
        lfl_lua_push_tensor(L, lfl_tensor_retain(a->t[i].A));
        lua_setfield(L, -2, "A");
        lfl_lua_push_tensor(L, lfl_tensor_retain(a->t[i].B));
        lua_setfield(L, -2, "B");
        if (a->t[i].magnitude) {
            lfl_lua_push_tensor(L, lfl_tensor_retain(a->t[i].magnitude));
            lua_setfield(L, -2, "magnitude");
        }
        lua_setfield(L, -2, a->t[i].module);
    }
}

/* m.adapters: the active adapter's targets, cached until they change */
static void push_view(lua_State *L, int self, lfl_adapter *a)
{
    env_get(L, self, &K_VIEW_OF);
    bool same = lua_touserdata(L, -1) == (void *)a;
    lua_pop(L, 1);
    env_get(L, self, &K_VIEW_GEN);
    same = same && lua_isnumber(L, -1) && (unsigned)lua_tonumber(L, -1) == a->gen;
    lua_pop(L, 1);
    if (same) { env_get(L, self, &K_VIEW); return; }
    push_targets(L, a);
    lua_pushvalue(L, -1);
    env_set(L, self, &K_VIEW);
    lua_pushnumber(L, a->gen);
    env_set(L, self, &K_VIEW_GEN);
    lua_pushlightuserdata(L, a);
    env_set(L, self, &K_VIEW_OF);
}

/* The model's box keeps the boxes of its attached adapters alive (the object
 * table is weak), so Lua fields set on an adapter stay while it is attached. */
static void sync_adapter_boxes(lua_State *L, int self, lfl_model *m)
{
    lua_createtable(L, m->n_adapters, 0);
    for (int i = 0; i < m->n_adapters; i++) {
        push_adapter_ref(L, m->adapters[i]);
        lua_rawseti(L, -2, i + 1);
    }
    env_set(L, self, &K_ADAPTERS);
}

/* ---- Model ---- */

static int model_index(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    if (push_method(L, MODEL_MT)) return 1;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (!strcmp(k, "params")) { push_params(L, 1); return 1; }
        if (!strcmp(k, "names")) { push_names(L, 1, m); return 1; }
        if (!strcmp(k, "path")) { if (m->path) lua_pushstring(L, m->path); else lua_pushnil(L); return 1; }
        if (!strcmp(k, "lora")) {
            lfl_adapter *a = lfl_model_active(m);
            if (a) push_adapter_ref(L, a); else lua_pushnil(L);
            return 1;
        }
        if (!strcmp(k, "adapters")) {
            lfl_adapter *a = lfl_model_active(m);
            if (a) push_view(L, 1, a); else lua_pushnil(L);
            return 1;
        }
    }
    return env_index(L);
}

static int model_newindex(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (!strcmp(k, "path")) {
            lfl_lua_check(L, lfl_model_set_text(&m->path, lua_isnil(L, 3) ? NULL : luaL_checkstring(L, 3)));
            return 0;
        }
        if (!strcmp(k, "params") || !strcmp(k, "names"))
            return luaL_error(L, "model.%s cannot be replaced: set single parameters with m.params[name] = t", k);
        if (!strcmp(k, "lora") || !strcmp(k, "adapters")) {
            /* m.lora = nil (or m.adapters = nil) takes the active adapter off; m.lora = ad attaches and activates */
            if (lua_isnil(L, 3)) {
                lfl_adapter *a = lfl_model_active(m);
                if (a) lfl_lua_check(L, lfl_model_detach(m, a->name));
                sync_adapter_boxes(L, 1, m);
                return 0;
            }
            if (!strcmp(k, "adapters")) return luaL_error(L, "model.adapters is a view: attach adapters with m:add_adapter(ad)");
            lfl_adapter *a = check_adapter(L, 3);
            lfl_lua_check(L, lfl_model_attach(m, a));
            lfl_lua_check(L, lfl_model_activate(m, a->name));
            sync_adapter_boxes(L, 1, m);
            return 0;
        }
    }
    return env_newindex(L);
}

static int l_model_new(lua_State *L)
{
    lfl_model *m = NULL;
    lfl_lua_check(L, lfl_model_new(&m));
    push_model(L, m);
    return 1;
}

static int m_parameters(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lua_createtable(L, m->n, 0);
    for (int i = 0; i < m->n; i++) {
        lfl_lua_push_tensor(L, lfl_tensor_retain(m->params[i]));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* names (sorted), and the m.params view */
static int m_named_parameters(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    push_names(L, 1, m);
    push_params(L, 1);
    return 2;
}

static int m_num_parameters(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_model_num_parameters(check_model(L, 1)));
    return 1;
}

/* m:to("bf16" | "f32" | ... | "cpu" | "cuda" | "cuda:N") -> m */
static int m_to(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    const char *what = luaL_checkstring(L, 2);
    int dt = lfl_dtype_from_name(what);
    if (!strcmp(what, "bfloat16")) dt = LFL_BF16;
    else if (!strcmp(what, "float16") || !strcmp(what, "fp16")) dt = LFL_F16;
    else if (!strcmp(what, "float32") || !strcmp(what, "fp32")) dt = LFL_F32;
    if (dt >= 0) lfl_lua_check(L, lfl_model_to_dtype(m, (lfl_dtype)dt));
    else if (!strcmp(what, "cpu")) lfl_lua_check(L, lfl_model_to_device(m, LFL_CPU));
    else if (!strncmp(what, "cuda", 4)) {
        int dev = what[4] == ':' ? atoi(what + 5) : 0;
        lfl_lua_check(L, lfl_model_to_device(m, dev));
    } else {
        return luaL_error(L, "model:to: '%s' is neither a dtype (f32, f64, bf16, f16) nor a device (cpu, cuda:N)", what);
    }
    lua_settop(L, 1);
    return 1;
}

static int m_add_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_adapter *a = check_adapter(L, 2);
    lfl_lua_check(L, lfl_model_attach(m, a));
    if (lua_toboolean(L, 3)) lfl_lua_check(L, lfl_model_activate(m, a->name));
    sync_adapter_boxes(L, 1, m);
    lua_settop(L, 2);
    return 1;
}

static int m_remove_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_lua_check(L, lfl_model_detach(m, luaL_checkstring(L, 2)));
    sync_adapter_boxes(L, 1, m);
    return 0;
}

/* m:set_adapter(name) activates it; m:set_adapter(nil | false) runs the base model */
static int m_set_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_lua_check(L, lfl_model_activate(m, lua_toboolean(L, 2) ? luaL_checkstring(L, 2) : NULL));
    return 0;
}

static int m_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_adapter *a = lua_isnoneornil(L, 2) ? lfl_model_active(m) : lfl_model_adapter(m, luaL_checkstring(L, 2));
    if (!a) return 0;
    push_adapter_ref(L, a);
    return 1;
}

static int m_adapter_names(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lua_createtable(L, m->n_adapters, 0);
    for (int i = 0; i < m->n_adapters; i++) {
        lua_pushstring(L, m->adapters[i]->name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_merge_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_adapter *a = lua_isnoneornil(L, 2) ? lfl_model_active(m) : lfl_model_adapter(m, luaL_checkstring(L, 2));
    if (!a) return luaL_error(L, "model:merge_adapter: no such adapter");
    lfl_lua_check(L, lfl_model_merge(m, a->name));
    return 0;
}

static int m_unmerge_adapter(lua_State *L)
{
    lfl_model *m = check_model(L, 1);
    lfl_adapter *a = lua_isnoneornil(L, 2) ? lfl_model_active(m) : lfl_model_adapter(m, luaL_checkstring(L, 2));
    if (!a) return luaL_error(L, "model:unmerge_adapter: no such adapter");
    lfl_lua_check(L, lfl_model_unmerge(m, a->name));
    return 0;
}

/* ---- Adapter ---- */

static int l_adapter_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "name");
    const char *name = luaL_optstring(L, -1, "default");
    lua_getfield(L, 1, "r");
    if (!lua_isnumber(L, -1)) return luaL_error(L, "lfl.adapter.new: r (the rank) must be a number");
    int r = (int)lua_tonumber(L, -1);
    lua_getfield(L, 1, "alpha");
    double alpha = luaL_optnumber(L, -1, 2.0 * r);
    lua_getfield(L, 1, "use_rslora");
    bool rs = lua_toboolean(L, -1);
    lua_getfield(L, 1, "use_dora");
    bool dora = lua_toboolean(L, -1);
    lua_getfield(L, 1, "dropout");
    double dropout = luaL_optnumber(L, -1, 0);
    lfl_adapter *a = NULL;
    lfl_lua_check(L, lfl_adapter_new(name, r, alpha, rs, dora, dropout, &a));
    push_box(L, a, ADAPTER_MT, sizeof(lfl_adapter *));
    return 1;
}

static int adapter_index(lua_State *L)
{
    lfl_adapter *a = check_adapter(L, 1);
    if (push_method(L, ADAPTER_MT)) return 1;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (!strcmp(k, "name")) { lua_pushstring(L, a->name); return 1; }
        if (!strcmp(k, "r")) { lua_pushinteger(L, a->r); return 1; }
        if (!strcmp(k, "alpha")) { lua_pushnumber(L, a->alpha); return 1; }
        if (!strcmp(k, "scaling")) { lua_pushnumber(L, a->scaling); return 1; }
        if (!strcmp(k, "dropout")) { lua_pushnumber(L, a->dropout); return 1; }
        if (!strcmp(k, "use_rslora")) { lua_pushboolean(L, a->use_rslora); return 1; }
        if (!strcmp(k, "use_dora")) { lua_pushboolean(L, a->use_dora); return 1; }
        if (!strcmp(k, "enabled")) { lua_pushboolean(L, a->enabled); return 1; }
        if (!strcmp(k, "merged")) { lua_pushboolean(L, a->merged); return 1; }
        if (!strcmp(k, "modules")) {
            lua_createtable(L, a->n, 0);
            for (int i = 0; i < a->n; i++) {
                lua_pushstring(L, a->t[i].module);
                lua_rawseti(L, -2, i + 1);
            }
            return 1;
        }
    }
    return env_index(L);
}

static int adapter_newindex(lua_State *L)
{
    lfl_adapter *a = check_adapter(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (!strcmp(k, "enabled")) { a->enabled = lua_toboolean(L, 3); return 0; }
        if (!strcmp(k, "r") || !strcmp(k, "alpha")) {
            /* a rank or alpha change (PiSSA's conversion doubles both) keeps the scaling rule */
            double v = luaL_checknumber(L, 3);
            if (k[0] == 'r') {
                if (v < 1) return luaL_error(L, "adapter %s: rank must be positive", a->name);
                a->r = (int)v;
            } else {
                a->alpha = v;
            }
            a->scaling = lfl_adapter_scaling(a->r, a->alpha, a->use_rslora);
            return 0;
        }
        if (!strcmp(k, "scaling")) { a->scaling = luaL_checknumber(L, 3); return 0; }
        if (!strcmp(k, "dropout")) {
            double p = luaL_checknumber(L, 3);
            if (!(p >= 0 && p < 1)) return luaL_error(L, "adapter %s: dropout must be in [0, 1)", a->name);
            a->dropout = p;
            return 0;
        }
        if (!strcmp(k, "name") || !strcmp(k, "use_rslora") || !strcmp(k, "use_dora") || !strcmp(k, "merged") ||
            !strcmp(k, "modules"))
            return luaL_error(L, "adapter.%s is fixed when the adapter is made", k);
    }
    return env_newindex(L);
}

/* ad:get(module) -> A, B, magnitude (nothing when the module is not a target) */
static int a_get(lua_State *L)
{
    lfl_adapter *a = check_adapter(L, 1);
    const lfl_adapter_target *t = lfl_adapter_find(a, luaL_checkstring(L, 2));
    if (!t) return 0;
    lfl_lua_push_tensor(L, lfl_tensor_retain(t->A));
    lfl_lua_push_tensor(L, lfl_tensor_retain(t->B));
    if (!t->magnitude) return 2;
    lfl_lua_push_tensor(L, lfl_tensor_retain(t->magnitude));
    return 3;
}

static int a_has(lua_State *L)
{
    lua_pushboolean(L, lfl_adapter_find(check_adapter(L, 1), luaL_checkstring(L, 2)) != NULL);
    return 1;
}

static int a_set(lua_State *L)
{
    lfl_adapter *a = check_adapter(L, 1);
    lfl_lua_check(L, lfl_adapter_set(a, luaL_checkstring(L, 2), lfl_lua_check_tensor(L, 3),
                                     lfl_lua_check_tensor(L, 4), lfl_lua_opt_tensor(L, 5)));
    return 0;
}

static int a_remove(lua_State *L)
{
    lfl_lua_check(L, lfl_adapter_remove(check_adapter(L, 1), luaL_checkstring(L, 2)));
    return 0;
}

static int a_targets(lua_State *L)
{
    push_targets(L, check_adapter(L, 1));
    return 1;
}

static int a_len(lua_State *L)
{
    lua_pushinteger(L, check_adapter(L, 1)->n);
    return 1;
}

static int a_num_parameters(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_adapter_num_parameters(check_adapter(L, 1)));
    return 1;
}

static void make_mt(lua_State *L, const char *name, lua_CFunction index, lua_CFunction newindex, lua_CFunction gc,
                    const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    for (const luaL_Reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
}

LFL_LUA_MODULE(model)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "lfl.objects");

    static const luaL_Reg model_methods[] = {
        {"parameters", m_parameters}, {"named_parameters", m_named_parameters},
        {"num_parameters", m_num_parameters}, {"to", m_to}, {"add_adapter", m_add_adapter},
        {"remove_adapter", m_remove_adapter}, {"set_adapter", m_set_adapter}, {"adapter", m_adapter},
        {"adapter_names", m_adapter_names}, {"merge_adapter", m_merge_adapter},
        {"unmerge_adapter", m_unmerge_adapter}, {NULL, NULL},
    };
    static const luaL_Reg adapter_methods[] = {
        {"get", a_get}, {"has", a_has}, {"set", a_set}, {"remove", a_remove}, {"targets", a_targets},
        {"num_parameters", a_num_parameters}, {NULL, NULL},
    };
    make_mt(L, MODEL_MT, model_index, model_newindex, model_gc, model_methods);
    make_mt(L, ADAPTER_MT, adapter_index, adapter_newindex, adapter_gc, adapter_methods);
    luaL_getmetatable(L, ADAPTER_MT);
    lua_pushcfunction(L, a_len);
    lua_setfield(L, -2, "__len");
    lua_pop(L, 1);

    static const luaL_Reg mfns[] = {{"new", l_model_new}, {NULL, NULL}};
    lfl_lua_register_funcs(L, "_model", mfns);
    static const luaL_Reg afns[] = {{"new", l_adapter_new}, {NULL, NULL}};
    lfl_lua_register_funcs(L, "adapter", afns);
    /* the metatables, for the Lua methods stdlib adds (forward, save, __tostring, ...) */
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "_model");
    luaL_getmetatable(L, MODEL_MT);
    lua_setfield(L, -2, "Model");
    luaL_getmetatable(L, ADAPTER_MT);
    lua_setfield(L, -2, "Adapter");
    lua_pop(L, 2);
}
