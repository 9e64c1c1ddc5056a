/* Bindings of the basic arithmetic ops: add, mul, affine, sum, mean, matmul, linear. */
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

/* a number operand becomes a scalar affine op on the tensor operand */
static int l_add(lua_State *L)
{
    lfl_tensor *out = NULL;
    if (lua_type(L, 2) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(1), 1, lua_tonumber(L, 2), &out));
    else if (lua_type(L, 1) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(2), 1, lua_tonumber(L, 1), &out));
    else lfl_lua_check(L, lfl_add(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_mul(lua_State *L)
{
    lfl_tensor *out = NULL;
    if (lua_type(L, 2) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(1), lua_tonumber(L, 2), 0, &out));
    else if (lua_type(L, 1) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(2), lua_tonumber(L, 1), 0, &out));
    else lfl_lua_check(L, lfl_mul(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_sub(lua_State *L)
{
    lfl_tensor *out = NULL;
    if (lua_type(L, 2) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(1), 1, -lua_tonumber(L, 2), &out));
    else if (lua_type(L, 1) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(2), -1, lua_tonumber(L, 1), &out));
    else lfl_lua_check(L, lfl_sub(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_div(lua_State *L)
{
    lfl_tensor *out = NULL;
    if (lua_type(L, 2) == LUA_TNUMBER) lfl_lua_check(L, lfl_affine(T(1), 1.0 / lua_tonumber(L, 2), 0, &out));
    else lfl_lua_check(L, lfl_div(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_affine(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_affine(T(1), luaL_optnumber(L, 2, 1), luaL_optnumber(L, 3, 0), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* dims as a number, a table of numbers, or nil for all; then keepdim */
static int read_dims(lua_State *L, int idx, int ndim, int *dims)
{
    if (lua_isnoneornil(L, idx)) return 0;
    if (lua_type(L, idx) == LUA_TNUMBER) { dims[0] = lfl_lua_check_dim(L, idx, ndim); return 1; }
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)lua_objlen(L, idx);
    if (n > LFL_MAX_DIMS) luaL_error(L, "too many dims");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        dims[i] = lfl_lua_check_dim(L, lua_gettop(L), ndim);
        lua_pop(L, 1);
    }
    return n;
}

static int reduce(lua_State *L, bool mean)
{
    lfl_tensor *a = T(1), *out = NULL;
    int dims[LFL_MAX_DIMS];
    int n = read_dims(L, 2, a->ndim, dims);
    bool keep = lua_toboolean(L, 3);
    lfl_lua_check(L, mean ? lfl_mean(a, n, dims, keep, &out) : lfl_sum(a, n, dims, keep, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}
static int l_sum(lua_State *L) { return reduce(L, false); }
static int l_mean(lua_State *L) { return reduce(L, true); }

static int l_matmul(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_matmul(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_linear(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_linear(T(1), T(2), lfl_lua_opt_tensor(L, 3), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lora_linear(x, w, bias | nil, A, B, scaling [, y | {given = y, side = t, keep_side = bool}]):
 * y given records the node around it (a checkpoint's replay); keep_side also
 * returns the side product t = x A^T for such a replay */
static int l_lora_linear(lua_State *L)
{
    lfl_tensor *out = NULL, *given = NULL, *gside = NULL, *side = NULL;
    bool keep = false;
    if (lua_istable(L, 7)) {
        lua_pushnil(L);
        while (lua_next(L, 7)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k || (strcmp(k, "given") && strcmp(k, "side") && strcmp(k, "keep_side")))
                return luaL_error(L, "lora_linear: unknown option '%s' (given, side, keep_side)", k ? k : "?");
            lua_pop(L, 1);
        }
        lua_getfield(L, 7, "given");
        lua_getfield(L, 7, "side");
        lua_getfield(L, 7, "keep_side");
        if (!lua_isnil(L, -3)) given = lfl_lua_check_tensor(L, -3);
        if (!lua_isnil(L, -2)) gside = lfl_lua_check_tensor(L, -2);
        keep = lua_toboolean(L, -1);
        lua_pop(L, 3);
    } else {
        given = lfl_lua_opt_tensor(L, 7);
    }
    lfl_lua_check(L, lfl_lora_linear_given(T(1), T(2), lfl_lua_opt_tensor(L, 3), T(4), T(5), luaL_checknumber(L, 6),
                                           given, gside, &out, keep ? &side : NULL));
    lfl_lua_push_tensor(L, out);
    if (!keep) return 1;
    lfl_lua_push_tensor(L, side);
    return 2;
}

static const luaL_Reg ops[] = {
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"affine", l_affine}, {"sum", l_sum}, {"mean", l_mean},
    {"matmul", l_matmul}, {"linear", l_linear}, {"lora_linear", l_lora_linear},
    {NULL, NULL},
};

LFL_LUA_MODULE(ops_basic) { lfl_lua_register_ops(L, ops); }
