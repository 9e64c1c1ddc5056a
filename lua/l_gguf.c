/* lfl.gguf.read(path): a GGUF file's header as Lua tables (metadata and tensor
 * infos); tensor data stays on disk (the model loader maps it itself). */
#include "bridge.h"
#include "io/gguf.h"

static void push_scalar(lua_State *L, const lfl_gguf_kv *kv)
{
    switch (kv->type) {
    case LFL_GGUF_U8: case LFL_GGUF_U16: case LFL_GGUF_U32: case LFL_GGUF_U64:
        lua_pushnumber(L, (lua_Number)kv->v.u);
        break;
    case LFL_GGUF_I8: case LFL_GGUF_I16: case LFL_GGUF_I32: case LFL_GGUF_I64:
        lua_pushnumber(L, (lua_Number)kv->v.i);
        break;
    case LFL_GGUF_F32: case LFL_GGUF_F64: lua_pushnumber(L, kv->v.f); break;
    case LFL_GGUF_BOOL: lua_pushboolean(L, kv->v.b); break;
    case LFL_GGUF_STRING: lua_pushlstring(L, kv->v.s.ptr, (size_t)kv->v.s.len); break;
    default: lua_pushnil(L); break;
    }
}

static void push_array(lua_State *L, const lfl_gguf_kv *kv)
{
    lua_createtable(L, kv->arr_n > 1u << 26 ? 0 : (int)kv->arr_n, 0);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        switch (kv->arr_type) {
        case LFL_GGUF_STRING: {
            lfl_gguf_str s = lfl_gguf_arr_str(kv, i);
            lua_pushlstring(L, s.ptr, (size_t)s.len);
            break;
        }
        case LFL_GGUF_ARRAY: push_array(L, lfl_gguf_arr_sub(kv, i)); break;
        case LFL_GGUF_BOOL: lua_pushboolean(L, lfl_gguf_arr_int(kv, i) != 0); break;
        case LFL_GGUF_F32: case LFL_GGUF_F64: lua_pushnumber(L, lfl_gguf_arr_float(kv, i)); break;
        case LFL_GGUF_U64: lua_pushnumber(L, lfl_gguf_arr_float(kv, i)); break;
        default: lua_pushnumber(L, (lua_Number)lfl_gguf_arr_int(kv, i)); break;
        }
        lua_rawseti(L, -2, (int)(i + 1));
    }
}

#define GGUF_BOX_MT "lfl.GGUFHandle"

/* the open file sits in a collectable box so a Lua error mid-conversion
 * (out of memory) does not leak the mapping */
static int box_gc(lua_State *L)
{
    lfl_gguf **box = luaL_checkudata(L, 1, GGUF_BOX_MT);
    lfl_gguf_close(*box);
    *box = NULL;
    return 0;
}

/* {version, alignment, data_offset, metadata = {key = value}, tensors = {{name,
 * shape (row-major, outermost first), ne (ggml order), type, type_id, offset, nbytes}}} */
static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lfl_gguf **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, GGUF_BOX_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_gguf_open(path, box));
    lfl_gguf *g = *box;
    lua_newtable(L);
    lua_pushinteger(L, (lua_Integer)g->version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, (lua_Integer)g->alignment);
    lua_setfield(L, -2, "alignment");
    lua_pushnumber(L, (lua_Number)g->data_offset);
    lua_setfield(L, -2, "data_offset");
    lua_newtable(L);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const lfl_gguf_kv *kv = &g->kv[i];
        if (kv->type == LFL_GGUF_ARRAY) push_array(L, kv);
        else push_scalar(L, kv);
        lua_setfield(L, -2, kv->key);
    }
    lua_setfield(L, -2, "metadata");
    lua_createtable(L, (int)g->n_tensors, 0);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lfl_gguf_tensor *t = &g->tensors[i];
        lua_createtable(L, 0, 7);
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_createtable(L, t->ndim, 0);
        for (int d = 0; d < t->ndim; d++) {
            lua_pushnumber(L, (lua_Number)t->ne[t->ndim - 1 - d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_createtable(L, t->ndim, 0);
        for (int d = 0; d < t->ndim; d++) {
            lua_pushnumber(L, (lua_Number)t->ne[d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "ne");
        lua_pushstring(L, lfl_ggml_type_name(t->type));
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, t->type);
        lua_setfield(L, -2, "type_id");
        lua_pushnumber(L, (lua_Number)t->offset);
        lua_setfield(L, -2, "offset");
        lua_pushnumber(L, (lua_Number)t->nbytes);
        lua_setfield(L, -2, "nbytes");
        lua_rawseti(L, -2, (int)(i + 1));
    }
    lua_setfield(L, -2, "tensors");
    lfl_gguf_close(g);
    *box = NULL;
    return 1;
}

static const luaL_Reg funcs[] = {
    {"read", l_read},
    {NULL, NULL},
};

LFL_LUA_MODULE(gguf)
{
    luaL_newmetatable(L, GGUF_BOX_MT);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "gguf", funcs);
}
