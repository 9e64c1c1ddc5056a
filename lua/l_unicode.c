/* lfl._unicode: Python's str Unicode rules for the Jinja interpreter.
 *   case(s, "lower"|"upper"|"title"|"capitalize"|"swapcase"|"casefold") -> s'
 *   category(cp) -> "Lu", "Zs", "Cn", ...     isprintable(cp) -> boolean
 *   casing(cp) -> is_lower, is_upper, is_title (Python's Lowercase/Uppercase/Lt)
 *   numeric(cp) -> 3 decimal, 2 digit, 1 numeric, 0 none (str.isdecimal/isdigit/isnumeric)
 *   cformat(x, conv, prec, alt) -> x through C's printf("%[#].<prec><conv>"),
 *   conv one of e E f F g G: Python's %-format and format() round as C does
 *   (2.25 -> "2.2"), which LuaJIT's own string.format does not */
#include <stdio.h>
#include <string.h>
#include "bridge.h"
#include "text/pyunicode.h"

static int l_case(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    static const char *const names[] = {"lower", "upper", "title", "capitalize", "swapcase", "casefold", NULL};
    static const lfl_case_op ops[] = {LFL_CASE_LOWER, LFL_CASE_UPPER, LFL_CASE_TITLE,
                                      LFL_CASE_CAPITALIZE, LFL_CASE_SWAPCASE, LFL_CASE_CASEFOLD};
    int which = luaL_checkoption(L, 2, NULL, names);
    char *out;
    size_t m;
    lfl_lua_check(L, lfl_pyunicode_case(s, n, ops[which], &out, &m));
    lua_pushlstring(L, out, m);
    free(out);
    return 1;
}

static int32_t check_cp(lua_State *L, int idx)
{
    lua_Number x = luaL_checknumber(L, idx);
    if (x < 0 || x > 0x10FFFF || x != (lua_Number)(int32_t)x)
        luaL_error(L, "unicode: code point must be an integer in 0..0x10FFFF, got %f", (double)x);
    return (int32_t)x;
}

static int l_category(lua_State *L)
{
    lua_pushstring(L, lfl_pyunicode_category(check_cp(L, 1)));
    return 1;
}

static int l_casing(lua_State *L)
{
    int f = lfl_pyunicode_casing(check_cp(L, 1));
    lua_pushboolean(L, f & LFL_CASING_LOWER);
    lua_pushboolean(L, f & LFL_CASING_UPPER);
    lua_pushboolean(L, f & LFL_CASING_TITLE);
    return 3;
}

static int l_numeric(lua_State *L)
{
    lua_pushinteger(L, lfl_pyunicode_numeric(check_cp(L, 1)));
    return 1;
}

static int l_isprintable(lua_State *L)
{
    lua_pushboolean(L, lfl_pyunicode_isprintable(check_cp(L, 1)));
    return 1;
}

static int l_cformat(lua_State *L)
{
    double x = luaL_checknumber(L, 1);
    const char *conv = luaL_checkstring(L, 2);
    int prec = (int)luaL_checkinteger(L, 3);
    int alt = lua_toboolean(L, 4);
    if (strlen(conv) != 1 || !strchr("eEfFgG", conv[0]))
        return luaL_error(L, "unicode.cformat: conversion must be one of e E f F g G, got '%s'", conv);
    if (prec < 0 || prec > 500) return luaL_error(L, "unicode.cformat: precision %d out of range 0..500", prec);
    char spec[8];
    snprintf(spec, sizeof(spec), "%%%s.*%c", alt ? "#" : "", conv[0]);
    int n = snprintf(NULL, 0, spec, prec, x);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return luaL_error(L, "unicode.cformat: out of memory");
    snprintf(buf, (size_t)n + 1, spec, prec, x);
    lua_pushlstring(L, buf, (size_t)n);
    free(buf);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"case", l_case}, {"category", l_category}, {"isprintable", l_isprintable}, {"casing", l_casing}, {"numeric", l_numeric},
    {"cformat", l_cformat},
    {NULL, NULL},
};

LFL_LUA_MODULE(unicode)
{
    lfl_lua_register_funcs(L, "_unicode", funcs);
}
