/* lfl.safetensors: load(path) -> {name = tensor}, metadata; save(path, tbl, meta);
 * header(path) -> {name = {dtype=, shape=}} without touching the data. */
#include "bridge.h"
#include "io/safetensors.h"

static void push_shape(lua_State *L, int nd, const int64_t *shape)
{
    lua_createtable(L, nd, 0);
    for (int d = 0; d < nd; d++) {
        lua_pushnumber(L, (lua_Number)shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

static void push_meta(lua_State *L, const lfl_st_file *f)
{
    lua_createtable(L, 0, f->n_meta);
    for (int i = 0; i < f->n_meta; i++) {
        lua_pushstring(L, f->meta_values[i]);
        lua_setfield(L, -2, f->meta_keys[i]);
    }
}

static int l_load(lua_State *L)
{
    lfl_st_file *f = NULL;
    lfl_lua_check(L, lfl_st_open(luaL_checkstring(L, 1), &f));
    lua_createtable(L, 0, f->n);
    for (int i = 0; i < f->n; i++) {
        lfl_tensor *t = NULL;
        lfl_status st = lfl_st_tensor(f, i, &t);
        if (st) { lfl_st_close(f); lfl_lua_check(L, st); }
        lfl_lua_push_tensor(L, t);
        lua_setfield(L, -2, f->entries[i].name);
    }
    push_meta(L, f);
    lfl_st_close(f); /* tensors keep the mapping alive */
    return 2;
}

static int l_header(lua_State *L)
{
    lfl_st_file *f = NULL;
    lfl_lua_check(L, lfl_st_open(luaL_checkstring(L, 1), &f));
    lua_createtable(L, 0, f->n);
    for (int i = 0; i < f->n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, lfl_dtype_name(f->entries[i].dtype));
        lua_setfield(L, -2, "dtype");
        push_shape(L, f->entries[i].ndim, f->entries[i].shape);
        lua_setfield(L, -2, "shape");
        lua_pushnumber(L, (lua_Number)(f->entries[i].end - f->entries[i].begin));
        lua_setfield(L, -2, "nbytes");
        lua_setfield(L, -2, f->entries[i].name);
    }
    push_meta(L, f);
    lfl_st_close(f);
    return 2;
}

/* save(path, {name = tensor, ...}, {key = "value"}?) — names are written sorted */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3); /* metadata stays at 3 (nil when not given) */
    /* sorted names via table.sort for a deterministic file */
    lua_newtable(L);
    int names_idx = lua_gettop(L), n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "safetensors.save: keys must be strings");
        lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, names_idx, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, names_idx);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    const char **names = lua_newuserdata(L, sizeof(char *) * (size_t)(n ? n : 1));
    lfl_tensor **ts = lua_newuserdata(L, sizeof(lfl_tensor *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, names_idx, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_gettable(L, 2);
        ts[i] = lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    int m = 0;
    const char **mk = NULL, **mv = NULL;
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) { m++; lua_pop(L, 1); }
        mk = lua_newuserdata(L, sizeof(char *) * (size_t)(m ? m : 1));
        mv = lua_newuserdata(L, sizeof(char *) * (size_t)(m ? m : 1));
        int k = 0;
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "safetensors.save: metadata keys and values must be strings");
            mk[k] = lua_tostring(L, -2);
            mv[k++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    lfl_lua_check(L, lfl_st_save(path, n, names, ts, m, mk, mv));
    return 0;
}

static const luaL_Reg funcs[] = {
    {"load", l_load}, {"save", l_save}, {"header", l_header},
    {NULL, NULL},
};

LFL_LUA_MODULE(safetensors) { lfl_lua_register_funcs(L, "safetensors", funcs); }
