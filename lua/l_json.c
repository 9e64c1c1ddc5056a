/* lfl.json: decode(text [, name]) -> Lua value (JSON null -> lfl.json.null),
 * encode(value [, {indent = true, sort_keys = true, allow_nan = false}]) -> text,
 * int(digits | number) -> an exact integer, Int (its metatable).
 * Uses cJSON. NaN / Infinity / -Infinity are read as Python's json reads them,
 * and written as it writes them when allow_nan (HF's trainer_state.json).
 * Integers stay exact as in Python: up to 2^53 they are Lua numbers, beyond
 * (any length) a "big integer" table {digits = "-123..."} with the metatable
 * lfl.json.Int, interned (one table per value, so == and table keys work),
 * which encode writes back digit for digit (lfl.text.pyint gives it
 * arithmetic, ordering and Python's printing). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "bridge.h"

static int null_ref = LUA_NOREF;
static int int_mt_ref = LUA_NOREF;    /* lfl.json.Int */
static int int_cache_ref = LUA_NOREF; /* digits -> Int table, weak values */

/* Python's json reads and writes NaN, Infinity and -Infinity, and reads
 * integers of any length; cJSON does neither (it parses every number into a
 * double), so decode rewrites those bare tokens into strings carrying a mark,
 * "\x01lfl-json-number<k>:", and push_json turns them back into numbers. A
 * document may hold a string that starts with the mark itself; decode then
 * counts more marked strings than it quoted and tries the next k. */
#define MARK_MAX 40
typedef struct { char s[MARK_MAX]; size_t n; } number_mark;

static void mark_make(number_mark *m, int k)
{
    int w = k ? snprintf(m->s, sizeof m->s, "\x01lfl-json-number%d:", k) : snprintf(m->s, sizeof m->s, "\x01lfl-json-number:");
    m->n = (size_t)w;
}

/* digits d[0..n) (no sign, no leading zero) within 2^53, where every
 * integer is exact as a double */
static bool fits_double(const char *d, size_t n)
{
    return n < 16 || (n == 16 && memcmp(d, "9007199254740992", 16) <= 0);
}

/* pushes the integer whose decimal text (optional '-', no leading zeros) is
 * s[0..n): a Lua number when it fits a double exactly, else the interned Int */
static void push_int(lua_State *L, const char *s, size_t n)
{
    const char *d = s;
    size_t dn = n;
    if (dn && *d == '-') { d++; dn--; }
    if (dn == 1 && d[0] == '0') { lua_pushnumber(L, 0); return; }
    if (fits_double(d, dn)) {
        char buf[24];
        memcpy(buf, s, n);
        buf[n] = 0;
        lua_pushnumber(L, strtod(buf, NULL));
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, int_cache_ref);
    lua_pushlstring(L, s, n);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) { lua_remove(L, -2); return; }
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, "digits");
    lua_rawgeti(L, LUA_REGISTRYINDEX, int_mt_ref);
    lua_setmetatable(L, -2);
    lua_pushlstring(L, s, n);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

/* the digits of the Int at idx, or NULL when it is not one */
static const char *int_digits(lua_State *L, int idx, size_t *n)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, int_mt_ref);
    bool is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!is) return NULL;
    lua_getfield(L, idx, "digits");
    const char *d = lua_tolstring(L, -1, n);
    lua_pop(L, 1); /* the string stays alive in the table */
    return d;
}

static void push_json(lua_State *L, const cJSON *j, int depth, const number_mark *mk)
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
        if (strncmp(v, mk->s, mk->n) == 0) {
            v += mk->n;
            if (v[0] == 'N') lua_pushnumber(L, NAN);
            else if (v[0] == 'I') lua_pushnumber(L, INFINITY);
            else if (v[0] == '-' && v[1] == 'I') lua_pushnumber(L, -INFINITY);
            else push_int(L, v, strlen(v));
        } else lua_pushstring(L, v);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        int i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1, mk);
            lua_rawseti(L, -2, i++);
        }
    } else {
        lua_createtable(L, 0, cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1, mk);
            lua_setfield(L, -2, c->string);
        }
    }
}

/* appends s[0..n) to the growing buffer *out (*on used, *cap allocated) */
static bool append(char **out, size_t *on, size_t *cap, const char *s, size_t n)
{
    if (*on + n + 1 > *cap) {
        size_t nc = (*on + n + 1) * 2;
        char *nb = realloc(*out, nc);
        if (!nb) return false;
        *out = nb;
        *cap = nc;
    }
    memcpy(*out + *on, s, n);
    *on += n;
    (*out)[*on] = 0;
    return true;
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

/* A copy of s with the bare NaN / Infinity / -Infinity tokens and the
 * integers of 16 digits or more (outside strings) quoted with the mark, or
 * NULL when there are none (or memory ran out: cJSON then reads the text as
 * it is). */
static char *quote_special(const char *s, size_t n, size_t *outn, const number_mark *mk, size_t *quoted)
{
    *quoted = 0;
    static const char *toks[] = {"NaN", "Infinity", "-Infinity"};
    char *out = NULL;
    size_t on = 0, cap = 0, copied = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') { in_str = true; continue; }
        size_t tl = 0;
        if (c == '-' || isdigit((unsigned char)c)) {
            size_t j = i + (c == '-'), d0 = j;
            while (j < n && isdigit((unsigned char)s[j])) j++;
            if (j > d0) {
                bool frac = j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E');
                if (!frac && j - d0 >= 16 && s[d0] != '0') {
                    tl = j - i;
                } else {
                    /* skip the whole number: a fraction's or an exponent's
                     * digits are not an integer of their own */
                    while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E'
                                     || s[j] == '+' || s[j] == '-'))
                        j++;
                    i = j - 1;
                    continue;
                }
            }
        }
        if (!tl && (c == 'N' || c == 'I' || c == '-')) {
            for (int k = 0; k < 3; k++) {
                size_t kl = strlen(toks[k]);
                if (i + kl <= n && memcmp(s + i, toks[k], kl) == 0) { tl = kl; break; }
            }
        }
        if (!tl) continue;
        if (!append(&out, &on, &cap, s + copied, i - copied) || !append(&out, &on, &cap, "\"", 1)
            || !append(&out, &on, &cap, mk->s, mk->n)
            || !append(&out, &on, &cap, s + i, tl) || !append(&out, &on, &cap, "\"", 1)) {
            free(out);
            return NULL;
        }
        i += tl - 1;
        copied = i + 1;
        (*quoted)++;
    }
    if (!out) return NULL;
    if (!append(&out, &on, &cap, s + copied, n - copied)) { free(out); return NULL; }
    *outn = on;
    return out;
}

/* how many string values in j start with the mark */
static size_t count_marked(const cJSON *j, const number_mark *mk)
{
    size_t c = 0;
    for (const cJSON *e = j; e; e = e->next) {
        if (cJSON_IsString(e) && strncmp(e->valuestring, mk->s, mk->n) == 0) c++;
        if (e->child) c += count_marked(e->child, mk);
    }
    return c;
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
    const char *end = NULL, *at = NULL;
    bool extra_data = false;
    number_mark mk;
    char *quoted;
    const char *text;
    size_t tn;
    cJSON *j;
    for (int k = 0;; k++) {
        size_t qn = 0, nq = 0;
        mark_make(&mk, k);
        quoted = quote_special(s, n, &qn, &mk, &nq);
        text = quoted ? quoted : s;
        tn = quoted ? qn : n;
        j = cJSON_ParseWithLengthOpts(text, tn, &end, 0);
        if (!j) {
            at = cJSON_GetErrorPtr();
            break;
        }
        /* one value and nothing after it but whitespace, as Python's json
         * ("Extra data"): cJSON stops after the first value */
        const char *e = end;
        while (e < text + tn && (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r')) e++;
        if (e < text + tn) {
            cJSON_Delete(j);
            j = NULL;
            at = e;
            extra_data = true;
            break;
        }
        /* the whole text was read, so every token quoted is in the tree: more
         * marked strings than that means the document holds the mark itself */
        if (count_marked(j, &mk) == nq) break;
        cJSON_Delete(j);
        j = NULL;
        if (k == 1000) {
            free(quoted);
            return luaL_error(L, "%s: too many strings that look like lfl's internal number mark", name);
        }
        free(quoted);
    }
    if (!j) {
        /* line and column of the failure in the text as given (a quoted token
         * adds its mark and two quotes, all on one line) */
        const size_t extra = mk.n + 2;
        int line = 1, col = 1;
        for (const char *p = text; at && p < at && p < text + tn; p++) {
            if (*p == '\n') { line++; col = 1; }
            else if (*p == '\x01' && (size_t)(text + tn - p) >= mk.n && memcmp(p, mk.s, mk.n) == 0) col -= (int)extra - 1;
            else col++;
        }
        free(quoted);
        return luaL_error(L, "%s: invalid JSON at line %d, column %d%s", name, line, col,
                          extra_data ? " (extra data after the value)" : "");
    }
    free(quoted);
    if (too_deep(j, 0)) {
        cJSON_Delete(j);
        return luaL_error(L, "%s: nesting deeper than 200", name);
    }
    push_json(L, j, 0, &mk);
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
        /* an integral value up to 2^53 is an int: all its digits, as Python
         * prints it (cJSON would write 1e+15) */
        if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.0f", v == 0 ? 0.0 : v);
            return cJSON_CreateRaw(buf);
        }
        /* the shortest of 15, 16 or 17 significant digits that reads back
         * as exactly v (cJSON's own printer accepts 15 digits that are only
         * close: 0.1 + 0.2 came back as 0.3, DBL_MAX as infinity) */
        char buf[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        return cJSON_CreateRaw(buf);
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
        size_t dn;
        const char *digits = int_digits(L, idx, &dn);
        if (digits) return cJSON_CreateRaw(digits);
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

/* lfl.json.int(x): the exact integer of a decimal string (optional '-', no
 * leading zeros) or of an integral number: a number up to 2^53, else the Int */
static int l_int(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        double v = lua_tonumber(L, 1);
        if (v != floor(v) || !isfinite(v)) return luaL_error(L, "lfl.json.int: %f is not an integer", v);
        if (fabs(v) <= 9007199254740992.0) { lua_pushnumber(L, v == 0 ? 0.0 : v); return 1; }
        char buf[400];
        int k = snprintf(buf, sizeof buf, "%.0f", v);
        push_int(L, buf, (size_t)k);
        return 1;
    }
    size_t dn;
    if (int_digits(L, 1, &dn)) { lua_settop(L, 1); return 1; }
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    size_t i = n && s[0] == '-';
    bool ok = i < n && (s[i] != '0' || n - i == 1);
    for (size_t k = i; ok && k < n; k++) ok = isdigit((unsigned char)s[k]);
    if (!ok) return luaL_error(L, "lfl.json.int: '%s' is not a decimal integer", s);
    push_int(L, s, n);
    return 1;
}

static int l_int_tostring(lua_State *L)
{
    lua_getfield(L, 1, "digits");
    return 1;
}

static int l_null_tostring(lua_State *L)
{
    lua_pushstring(L, "json.null");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", l_decode}, {"encode", l_encode}, {"int", l_int},
    {NULL, NULL},
};

LFL_LUA_MODULE(json)
{
    lfl_lua_register_funcs(L, "json", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "json");
    lua_newuserdata(L, 0); /* a unique sentinel for JSON null */
    lua_newtable(L);
    lua_pushcfunction(L, l_null_tostring); /* print(lfl.json.null) raised "attempt to call a string value" */
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "null");
    /* the big integers' metatable (lfl.text.pyint adds arithmetic and
     * ordering) and their intern table */
    lua_newtable(L);
    lua_pushstring(L, "int");
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, l_int_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushvalue(L, -1);
    int_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "Int");
    lua_newtable(L);
    lua_newtable(L);
    lua_pushstring(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    int_cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 2);
}
