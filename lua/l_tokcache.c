/* lfl._tokcache: the C side of stdlib/lfl/dataset_cache.lua.
 *   sha256(string) -> hex            stat(path) -> size, mtime_ns
 *   pack(lists, dtype) -> values [N] tensor, offsets [n+1] i64 tensor
 *   unpack(values, offsets) -> {{...}, ...}   (lists of numbers)
 * pack/unpack move token lists between Lua tables and flat tensors in one C
 * loop each, which is what makes a cached dataset fast to store and load. */
#include <string.h>
#include "bridge.h"
#include "io/tokcache.h"
#include "util/sha256.h"

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    lfl_sha256_buf(s, n, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_stat(lua_State *L)
{
    int64_t size, mtime;
    lfl_lua_check(L, lfl_tokcache_stat(luaL_checkstring(L, 1), &size, &mtime));
    lua_pushnumber(L, (lua_Number)size);
    lua_pushnumber(L, (lua_Number)mtime);
    return 2;
}

/* pack({{1,2},{3}}, "i32") -> values {1,2,3}, offsets {0,2,3} */
static int l_pack(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lfl_dtype dt = lfl_lua_opt_dtype(L, 2, LFL_I32);
    if (dt != LFL_I32 && dt != LFL_I64) return luaL_error(L, "tokcache.pack: dtype must be i32 or i64");
    int64_t n = (int64_t)lua_objlen(L, 1), total = 0;
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (!lua_istable(L, -1)) return luaL_error(L, "tokcache.pack: entry %d is not a list", (int)i);
        total += (int64_t)lua_objlen(L, -1);
        lua_pop(L, 1);
    }
    lfl_tensor *vals = NULL, *offs = NULL;
    int64_t vshape[1] = {total}, oshape[1] = {n + 1};
    lfl_lua_check(L, lfl_empty(1, vshape, dt, LFL_CPU, &vals));
    lfl_lua_push_tensor(L, vals); /* owned by Lua from here on: errors below leak nothing */
    lfl_lua_check(L, lfl_empty(1, oshape, LFL_I64, LFL_CPU, &offs));
    lfl_lua_push_tensor(L, offs);
    int32_t *v32 = dt == LFL_I32 ? lfl_data(vals) : NULL;
    int64_t *v64 = dt == LFL_I64 ? lfl_data(vals) : NULL;
    int64_t *o = lfl_data(offs);
    int64_t k = 0;
    o[0] = 0;
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        int m = (int)lua_objlen(L, -1);
        for (int j = 1; j <= m; j++) {
            lua_rawgeti(L, -1, j);
            if (!lua_isnumber(L, -1)) return luaL_error(L, "tokcache.pack: entry %d item %d is not a number", (int)i, j);
            lua_Number x = lua_tonumber(L, -1);
            if (v32) v32[k++] = (int32_t)x; else v64[k++] = (int64_t)x;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        o[i] = k;
    }
    return 2;
}

static int l_unpack(lua_State *L)
{
    lfl_tensor *vals = lfl_lua_check_tensor(L, 1), *offs = lfl_lua_check_tensor(L, 2);
    if ((vals->dtype != LFL_I32 && vals->dtype != LFL_I64) || offs->dtype != LFL_I64 || vals->ndim != 1 ||
        offs->ndim != 1 || !lfl_is_contiguous(vals) || !lfl_is_contiguous(offs) || vals->device != LFL_CPU || offs->device != LFL_CPU)
        return luaL_error(L, "tokcache.unpack: expected contiguous 1-D i32/i64 values and i64 offsets on the CPU");
    int64_t n = lfl_numel(offs) - 1, total = lfl_numel(vals);
    const int64_t *o = lfl_data(offs);
    const int32_t *v32 = vals->dtype == LFL_I32 ? lfl_data(vals) : NULL;
    const int64_t *v64 = vals->dtype == LFL_I64 ? lfl_data(vals) : NULL;
    lua_createtable(L, n > 0 ? (int)n : 0, 0);
    for (int64_t i = 0; i < n; i++) {
        int64_t a = o[i], b = o[i + 1];
        if (a < 0 || b < a || b > total) return luaL_error(L, "tokcache.unpack: bad offsets at entry %d", (int)i + 1);
        lua_createtable(L, (int)(b - a), 0);
        for (int64_t k = a; k < b; k++) {
            lua_pushnumber(L, v32 ? (lua_Number)v32[k] : (lua_Number)v64[k]);
            lua_rawseti(L, -2, (int)(k - a + 1));
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static const luaL_Reg funcs[] = {
    {"sha256", l_sha256}, {"stat", l_stat}, {"pack", l_pack}, {"unpack", l_unpack}, {NULL, NULL},
};

LFL_LUA_MODULE(tokcache)
{
    lfl_lua_register_funcs(L, "_tokcache", funcs);
}
