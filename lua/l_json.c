/* lfl.json: decode(text [, name]) -> Lua value (JSON null -> lfl.json.null),
 * encode(value [, {indent = true, sort_keys = true, allow_nan = false}]) -> text.
 * Uses cJSON. NaN / Infinity / -Infinity are read as Python's json reads them,
 * and written as it writes them when allow_nan (HF's trainer_state.json). */
#include <cjson/cJSON.h>
#include <math.h>
#include "bridge.h"

static int null_ref = LUA_NOREF;

/* Python's json reads and writes NaN, Infinity and -Infinity; cJSON does not,
 * so decode rewrites those bare tokens into strings carrying this mark and
 * push_json turns them back into numbers. */
#define NONFINITE_MARK "\x01lfl-nonfinite:"

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
        const char *v = j->valuestring;
        size_t ml = sizeof NONFINITE_MARK - 1;
        if (strncmp(v, NONFINITE_MARK, ml) == 0) {
            v += ml;
            lua_pushnumber(L, v[0] == 'N' ? NAN : v[0] == '-' ? -INFINITY : INFINITY);
        } else lua_pushstring(L, v);
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

/* Whether j nests deeper than push_json goes (checked before pushing, so the
 * error neither leaks the tree nor loses the source's name). */
static bool too_deep(const cJSON *j, int depth)
{
    if (depth > 200) return true;
    for (const cJSON *c = j->child; c; c = c->next)
        if ((cJSON_IsArray(c) || cJSON_IsObject(c)) && too_deep(c, depth + 1)) return true;
    return false;
}

/* A copy of s with the bare NaN / Infinity / -Infinity tokens (outside strings)
 * quoted with the mark, or NULL when there are none. */
static char *quote_nonfinite(const char *s, size_t n, size_t *outn)
{
    static const char *toks[] = {"NaN", "Infinity", "-Infinity"};
    char *out = NULL;
    size_t on = 0, cap = 0;
    bool in_str = false;
    size_t copied = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') { in_str = true; continue; }
        if (c != 'N' && c != 'I' && c != '-') continue;
        for (int k = 0; k < 3; k++) {
            size_t tl = strlen(toks[k]);
            if (i + tl > n || memcmp(s + i, toks[k], tl) != 0) continue;
            size_t need = on + (i - copied) + tl + sizeof NONFINITE_MARK + 3 + (n - i);
            if (need > cap) {
                cap = need * 2;
                char *nb = realloc(out, cap);
                if (!nb) { free(out); return NULL; }
                out = nb;
            }
            memcpy(out + on, s + copied, i - copied);
            on += i - copied;
            on += (size_t)sprintf(out + on, "\"%s%s\"", NONFINITE_MARK, toks[k]);
            i += tl - 1;
            copied = i + 1;
            break;
        }
    }
    if (!out) return NULL;
    memcpy(out + on, s + copied, n - copied);
    on += n - copied;
    out[on] = 0;
    *outn = on;
    return out;
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
    size_t qn = 0;
    char *quoted = quote_nonfinite(s, n, &qn);
    const char *text = quoted ? quoted : s;
    size_t tn = quoted ? qn : n;
    cJSON *j = cJSON_ParseWithLengthOpts(text, tn, &end, 0);
    if (!j) {
        /* line and column of the failure in the text as given (a quoted token
         * adds its mark and two quotes, all on one line) */
        const char *at = cJSON_GetErrorPtr();
        const size_t extra = sizeof NONFINITE_MARK - 1 + 2;
        int line = 1, col = 1;
        for (const char *p = text; at && p < at && p < text + tn; p++) {
            if (*p == '\n') { line++; col = 1; }
            else if (*p == '\x01') col -= (int)extra - 1;
            else col++;
        }
        free(quoted);
        return luaL_error(L, "%s: invalid JSON at line %d, column %d", name, line, col);
    }
    free(quoted);
    if (too_deep(j, 0)) {
        cJSON_Delete(j);
        return luaL_error(L, "%s: nesting deeper than 200", name);
    }
    push_json(L, j, 0);
    cJSON_Delete(j);
    return 1;
}

/* ---- encode ---- */

typedef struct { bool sort_keys, allow_nan; } enc_opts;
static cJSON *to_json(lua_State *L, int idx, int depth, const enc_opts *o);

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

static cJSON *to_json(lua_State *L, int idx, int depth, const enc_opts *o)
{
    if (depth > 200) luaL_error(L, "json.encode: nesting deeper than 200 (a cycle?)");
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double v = lua_tonumber(L, idx);
        if (!isfinite(v)) {
            if (o->allow_nan) return cJSON_CreateRaw(isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
            luaL_error(L, "json.encode: %f cannot be represented in JSON (allow_nan writes it as Python does)", v);
        }
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
                cJSON_AddItemToArray(a, to_json(L, -1, depth + 1, o));
                lua_pop(L, 1);
            }
            return a;
        }
        cJSON *obj = cJSON_CreateObject();
        int cap = 16, m = 0;
        char **keys = malloc(sizeof *keys * (size_t)cap);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (m == cap) { cap *= 2; keys = realloc(keys, sizeof *keys * (size_t)cap); }
            if (lua_type(L, -1) == LUA_TSTRING) keys[m++] = strdup(lua_tostring(L, -1));
            else if (lua_type(L, -1) == LUA_TNUMBER) { lua_pushvalue(L, -1); keys[m++] = strdup(lua_tostring(L, -1)); lua_pop(L, 1); }
            else { for (int i = 0; i < m; i++) free(keys[i]); free(keys); cJSON_Delete(obj); luaL_error(L, "json.encode: table key of type %s", luaL_typename(L, -1)); }
        }
        if (o->sort_keys) qsort(keys, (size_t)m, sizeof *keys, cmp_keys);
        for (int i = 0; i < m; i++) {
            lua_getfield(L, idx, keys[i]);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushnumber(L, atof(keys[i])); lua_gettable(L, idx); }
            cJSON_AddItemToObject(obj, keys[i], to_json(L, -1, depth + 1, o));
            lua_pop(L, 1);
            free(keys[i]);
        }
        free(keys);
        return obj;
    }
    default: break;
    }
    luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
    return NULL;
}

static int l_encode(lua_State *L)
{
    bool indent = false;
    enc_opts o = {.sort_keys = true, .allow_nan = false};
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "indent");
        indent = lua_toboolean(L, -1);
        lua_getfield(L, 2, "sort_keys");
        if (!lua_isnil(L, -1)) o.sort_keys = lua_toboolean(L, -1);
        lua_getfield(L, 2, "allow_nan");
        o.allow_nan = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    lua_settop(L, 1);
    cJSON *j = to_json(L, 1, 0, &o);
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
