/* Bindings of the pointwise ops: the unary kinds (lfl.exp(t), t:exp(), ...),
 * pow, the comparisons t:lt/le/gt/ge/eq/ne(x), where, masked_fill, dropout.
 * A number operand becomes a 0-dim tensor of the other operand's dtype. */
#include <math.h>
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

static int unary(lua_State *L, lfl_unary_kind k)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_unary(k, T(1), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

#define UNARY(name, kind) \
    static int l_##name(lua_State *L) { return unary(L, kind); }
UNARY(neg, LFL_U_NEG)
UNARY(exp, LFL_U_EXP)
UNARY(log, LFL_U_LOG)
UNARY(sqrt, LFL_U_SQRT)
UNARY(rsqrt, LFL_U_RSQRT)
UNARY(abs, LFL_U_ABS)
UNARY(tanh, LFL_U_TANH)
UNARY(sigmoid, LFL_U_SIGMOID)
UNARY(silu, LFL_U_SILU)
UNARY(gelu, LFL_U_GELU)
UNARY(gelu_tanh, LFL_U_GELU_TANH)
UNARY(relu, LFL_U_RELU)

static int l_pow(lua_State *L)
{
    lfl_tensor *a = T(1), *out = NULL;
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "pow: the exponent must be a number, got a %s", luaL_typename(L, 2));
    lfl_lua_check(L, lfl_pow(a, lua_tonumber(L, 2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* A number (or boolean) at idx as a 0-dim tensor of dtype dt, left on the
 * Lua stack (so no reference leaks if a later step raises). An integer dtype
 * only takes values it holds exactly: t:lt(2.5) on an i64 tensor fails rather
 * than silently comparing with 2. */
static lfl_tensor *push_scalar(lua_State *L, const char *op, int idx, lfl_dtype dt, int device)
{
    double v = lua_type(L, idx) == LUA_TBOOLEAN ? lua_toboolean(L, idx) : lua_tonumber(L, idx);
    if (lfl_dtypes[dt].is_int && dt != LFL_BOOL) {
        double lo = dt == LFL_U8 ? 0 : dt == LFL_I32 ? -2147483648.0 : -9223372036854775808.0;
        double hi = dt == LFL_U8 ? 255 : dt == LFL_I32 ? 2147483647.0 : 9223372036854775807.0;
        if (!(v >= lo && v <= hi) || v != floor(v) || (dt == LFL_I64 && v >= hi))
            luaL_error(L, "%s: the number %s is not exactly representable as %s (convert the tensor first)",
                       op, lua_tostring(L, idx), lfl_dtype_name(dt));
    }
    lfl_tensor *s = NULL;
    lfl_lua_check(L, lfl_full(0, NULL, v, dt, device, &s));
    lfl_lua_push_tensor(L, s);
    return s;
}

static bool is_scalar(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    return t == LUA_TNUMBER || t == LUA_TBOOLEAN;
}

/* t:lt(x) and lfl.lt(a, b): either side may be a number */
static int compare(lua_State *L, lfl_cmp_kind k, const char *op)
{
    lfl_tensor *a, *b, *out = NULL;
    if (is_scalar(L, 2)) {
        a = T(1);
        b = push_scalar(L, op, 2, a->dtype, a->device);
    } else if (is_scalar(L, 1)) {
        b = T(2);
        a = push_scalar(L, op, 1, b->dtype, b->device);
    } else {
        a = T(1);
        b = T(2);
    }
    lfl_lua_check(L, lfl_compare(k, a, b, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

#define CMP(name, kind) \
    static int l_##name(lua_State *L) { return compare(L, kind, #name); }
CMP(eq, LFL_CMP_EQ)
CMP(ne, LFL_CMP_NE)
CMP(lt, LFL_CMP_LT)
CMP(le, LFL_CMP_LE)
CMP(gt, LFL_CMP_GT)
CMP(ge, LFL_CMP_GE)

/* lfl.where(cond, a, b): a or b may be numbers (both numbers give f32) */
static int l_where(lua_State *L)
{
    lfl_tensor *cond = T(1), *out = NULL;
    lfl_tensor *a = is_scalar(L, 2) ? NULL : T(2), *b = is_scalar(L, 3) ? NULL : T(3);
    lfl_dtype dt = a ? a->dtype : b ? b->dtype : LFL_F32;
    if (!a) a = push_scalar(L, "where", 2, dt, cond->device);
    if (!b) b = push_scalar(L, "where", 3, dt, cond->device);
    lfl_lua_check(L, lfl_where(cond, a, b, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_masked_fill(lua_State *L)
{
    lfl_tensor *a = T(1), *mask = T(2), *out = NULL;
    double v;
    if (lua_type(L, 3) == LUA_TBOOLEAN) v = lua_toboolean(L, 3);
    else v = luaL_checknumber(L, 3);
    lfl_lua_check(L, lfl_masked_fill(a, mask, v, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.dropout(t, p) with p = 0.5 by default, as in torch */
static int l_dropout(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_dropout(T(1), luaL_optnumber(L, 2, 0.5), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static const luaL_Reg ops[] = {
    {"neg", l_neg}, {"exp", l_exp}, {"log", l_log}, {"sqrt", l_sqrt}, {"rsqrt", l_rsqrt},
    {"abs", l_abs}, {"tanh", l_tanh}, {"sigmoid", l_sigmoid}, {"silu", l_silu}, {"gelu", l_gelu},
    {"gelu_tanh", l_gelu_tanh}, {"relu", l_relu}, {"pow", l_pow},
    {"eq", l_eq}, {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt}, {"ge", l_ge},
    {"where", l_where}, {"masked_fill", l_masked_fill}, {"dropout", l_dropout},
    {NULL, NULL},
};

LFL_LUA_MODULE(ops_pointwise) { lfl_lua_register_ops(L, ops); }
