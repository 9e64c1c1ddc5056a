/* lfl.json: decode(text [, name]) -> Lua value (JSON null -> lfl.json.null),
 * encode(value [, {indent = true, sort_keys = true}]) -> text. Uses cJSON. */
#include <cjson/cJSON.h>
#include <math.h>
#include "bridge.h"

static int null_ref = LUA_NOREF;

static void push_json(lua_State *L, const cJSON *j, int depth)
{
    if (depth > 200) luaL_error(L, "json: nesting deeper than 200");
    luaL_checkstack(L, 4, "json");
    if (cJSON_IsNull(j)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, null_ref);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        lua_pushnumber(L, j->valuedouble);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        int i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else {
        lua_createtable(L, 0, cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1);
            lua_setfield(L, -2, c->string);
        }
    }
}

static int l_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, "json");
    /* cJSON's strings end at NUL: refuse rather than silently cut a string */
    const char *nul = NULL;
    for (const char *p = s; p + 6 <= s + n && !nul; p++)
        if (p[0] == '\\' && p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0') {
            /* count preceding backslashes: an escaped backslash is not an escape */
            int bs = 0;
            for (const char *q = p - 1; q >= s && *q == '\\'; q--) bs++;
            if (bs % 2 == 0) nul = p;
        }
    if (nul) {
        int line = 1;
        for (const char *p = s; p < nul; p++) line += *p == '\n';
        return luaL_error(L, "%s: line %d: a string contains \\u0000, which lfl cannot represent", name, line);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!j) {
        /* line and column of the failure */
        const char *at = cJSON_GetErrorPtr();
        int line = 1, col = 1;
        for (const char *p = s; at && p < at && p < s + n; p++) {
            if (*p == '\n') { line++; col = 1; } else col++;
        }
        return luaL_error(L, "%s: invalid JSON at line %d, column %d", name, line, col);
    }
    push_json(L, j, 0);
    cJSON_Delete(j);
    return 1;
}

/* ---- encode ---- */

static cJSON *to_json(lua_State *L, int idx, int depth, bool sort_keys);

static bool is_array(lua_State *L, int idx, int *n)
{
    int count = 0;
    double max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) { lua_pop(L, 1); return false; }
        double k = lua_tonumber(L, -1);
        if (k < 1 || k != floor(k)) { lua_pop(L, 1); return false; }
        if (k > max) max = k;
        count++;
    }
    *n = count;
    return max == count;
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static cJSON *to_json(lua_State *L, int idx, int depth, bool sort_keys)
{
    if (depth > 200) luaL_error(L, "json.encode: nesting deeper than 200 (a cycle?)");
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double v = lua_tonumber(L, idx);
        if (!isfinite(v)) luaL_error(L, "json.encode: %f cannot be represented in JSON", v);
        return cJSON_CreateNumber(v);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *str = lua_tolstring(L, idx, &len);
        if (strlen(str) != len) luaL_error(L, "json.encode: a string contains a NUL byte, which lfl cannot encode");
        return cJSON_CreateString(str);
    }
    case LUA_TLIGHTUSERDATA:
    case LUA_TUSERDATA:
        lua_rawgeti(L, LUA_REGISTRYINDEX, null_ref);
        if (lua_rawequal(L, -1, idx)) { lua_pop(L, 1); return cJSON_CreateNull(); }
        lua_pop(L, 1);
        break;
    case LUA_TTABLE: {
        int n;
        if (is_array(L, idx, &n)) {
            /* an empty table encodes as [] unless marked with lfl.json.object */
            bool obj = false;
            if (n == 0 && lua_getmetatable(L, idx)) {
                lua_getfield(L, -1, "__jsontype");
                obj = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "object") == 0;
                lua_pop(L, 2);
            }
            if (obj) return cJSON_CreateObject();
            cJSON *a = cJSON_CreateArray();
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, i);
                cJSON_AddItemToArray(a, to_json(L, -1, depth + 1, sort_keys));
                lua_pop(L, 1);
            }
            return a;
        }
        cJSON *o = cJSON_CreateObject();
        int cap = 16, m = 0;
        char **keys = malloc(sizeof *keys * (size_t)cap);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (m == cap) { cap *= 2; keys = realloc(keys, sizeof *keys * (size_t)cap); }
            if (lua_type(L, -1) == LUA_TSTRING) keys[m++] = strdup(lua_tostring(L, -1));
            else if (lua_type(L, -1) == LUA_TNUMBER) { lua_pushvalue(L, -1); keys[m++] = strdup(lua_tostring(L, -1)); lua_pop(L, 1); }
            else { for (int i = 0; i < m; i++) free(keys[i]); free(keys); cJSON_Delete(o); luaL_error(L, "json.encode: table key of type %s", luaL_typename(L, -1)); }
        }
        if (sort_keys) qsort(keys, (size_t)m, sizeof *keys, cmp_keys);
        for (int i = 0; i < m; i++) {
            lua_getfield(L, idx, keys[i]);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushnumber(L, atof(keys[i])); lua_gettable(L, idx); }
            cJSON_AddItemToObject(o, keys[i], to_json(L, -1, depth + 1, sort_keys));
            lua_pop(L, 1);
            free(keys[i]);
        }
        free(keys);
        return o;
    }
    default: break;
    }
    luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
    return NULL;
}

static int l_encode(lua_State *L)
{
    bool indent = false, sort_keys = true;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "indent");
        indent = lua_toboolean(L, -1);
        lua_getfield(L, 2, "sort_keys");
        if (!lua_isnil(L, -1)) sort_keys = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    lua_settop(L, 1);
    cJSON *j = to_json(L, 1, 0, sort_keys);
    char *s = indent ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", l_decode}, {"encode", l_encode},
    {NULL, NULL},
};

LFL_LUA_MODULE(json)
{
    lfl_lua_register_funcs(L, "json", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "json");
    lua_newuserdata(L, 0); /* a unique sentinel for JSON null */
    lua_newtable(L);
    lua_pushstring(L, "json.null");
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "null");
    lua_pop(L, 2);
}
