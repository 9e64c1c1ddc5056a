/* Bindings of the neural-network block ops: rmsnorm, layernorm, rope (and
 * rope_cos_sin), swiglu, geglu, attention. */
#include <string.h>
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

/* raises or pushes *out (the call must have run before: hence a pointer) */
static int push_result(lua_State *L, lfl_status st, lfl_tensor **out)
{
    lfl_lua_check(L, st);
    lfl_lua_push_tensor(L, *out);
    return 1;
}

/* rmsnorm(x, w, eps = 1e-6) */
static int l_rmsnorm(lua_State *L)
{
    lfl_tensor *out = NULL;
    return push_result(L, lfl_rmsnorm(T(1), T(2), luaL_optnumber(L, 3, 1e-6), &out), &out);
}

/* layernorm(x, w?, b?, eps = 1e-5) */
static int l_layernorm(lua_State *L)
{
    lfl_tensor *out = NULL;
    return push_result(L, lfl_layernorm(T(1), lfl_lua_opt_tensor(L, 2), lfl_lua_opt_tensor(L, 3),
                                        luaL_optnumber(L, 4, 1e-5), &out), &out);
}

/* rope(x[B, H, T, D], cos, sin) */
static int l_rope(lua_State *L)
{
    lfl_tensor *out = NULL;
    return push_result(L, lfl_rope(T(1), T(2), T(3), &out), &out);
}

/* rope_cos_sin(position_ids[B, T] i64, inv_freq[D/2], dtype = "f32", scaling = 1) -> cos, sin */
static int l_rope_cos_sin(lua_State *L)
{
    lfl_tensor *c = NULL, *s = NULL;
    lfl_dtype dt = lfl_lua_opt_dtype(L, 3, LFL_F32);
    lfl_lua_check(L, lfl_rope_cos_sin(T(1), T(2), luaL_optnumber(L, 4, 1.0), dt, &c, &s));
    lfl_lua_push_tensor(L, c);
    lfl_lua_push_tensor(L, s);
    return 2;
}

static int l_swiglu(lua_State *L)
{
    lfl_tensor *out = NULL;
    return push_result(L, lfl_swiglu(T(1), T(2), &out), &out);
}

/* geglu(gate, up, approx): approx true or "tanh" for the tanh approximation,
 * false/nil/"none" for exact (erf) GELU, as torch's approximate= */
static int l_geglu(lua_State *L)
{
    bool th = false;
    if (lua_type(L, 3) == LUA_TSTRING) {
        const char *a = lua_tostring(L, 3);
        if (!strcmp(a, "tanh")) th = true;
        else if (strcmp(a, "none")) return luaL_error(L, "geglu: approximate must be \"tanh\" or \"none\", got \"%s\"", a);
    } else {
        th = lua_toboolean(L, 3);
    }
    lfl_tensor *out = NULL;
    return push_result(L, lfl_geglu(T(1), T(2), th, &out), &out);
}

/* attention(q, k, v, {causal=, window=, softcap=, scale=, segments=, kv_start=, sinks=, keep_lse=, given=}):
 * keep_lse also returns the rows' log-sum-exps; given = {out, lse} from such a
 * call on the same inputs replays it (the node only, for checkpointing) */
static int l_attention(lua_State *L)
{
    lfl_tensor *q = T(1), *k = T(2), *v = T(3), *out = NULL, *lse = NULL;
    lfl_attn_opts o = {0};
    bool keep = false;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            int top = lua_gettop(L);
            if (!key) return luaL_error(L, "attention: option keys must be strings");
            if (!strcmp(key, "causal")) {
                o.causal = lua_toboolean(L, top);
            } else if (!strcmp(key, "window")) {
                if (lua_type(L, top) != LUA_TNUMBER) return luaL_error(L, "attention: window must be a number");
                double w = lua_tonumber(L, top);
                if (w != (double)(int64_t)w) return luaL_error(L, "attention: window must be an integer, got %g", w);
                o.window = (int64_t)w;
            } else if (!strcmp(key, "softcap")) {
                if (lua_type(L, top) != LUA_TNUMBER) return luaL_error(L, "attention: softcap must be a number");
                o.softcap = lua_tonumber(L, top);
            } else if (!strcmp(key, "scale")) {
                if (lua_type(L, top) != LUA_TNUMBER) return luaL_error(L, "attention: scale must be a number");
                o.scale = lua_tonumber(L, top);
            } else if (!strcmp(key, "segments")) {
                o.segments = lfl_lua_check_tensor(L, top);
            } else if (!strcmp(key, "kv_start")) {
                o.kv_start = lfl_lua_check_tensor(L, top);
            } else if (!strcmp(key, "sinks")) {
                o.sinks = lfl_lua_check_tensor(L, top);
            } else if (!strcmp(key, "keep_lse")) {
                keep = lua_toboolean(L, top);
            } else if (!strcmp(key, "given")) {
                luaL_checktype(L, top, LUA_TTABLE);
                lua_rawgeti(L, top, 1);
                lua_rawgeti(L, top, 2);
                o.given_out = lfl_lua_check_tensor(L, -2);
                o.given_lse = lfl_lua_check_tensor(L, -1);
                lua_pop(L, 2);
            } else {
                return luaL_error(L, "attention: unknown option '%s' (causal, window, softcap, scale, segments, kv_start, "
                                     "sinks, keep_lse, given)", key);
            }
            lua_pop(L, 1);
        }
    }
    if (keep) o.lse_out = &lse;
    lfl_lua_check(L, lfl_attention(q, k, v, &o, &out));
    lfl_lua_push_tensor(L, out);
    if (!keep) return 1;
    lfl_lua_push_tensor(L, lse);
    return 2;
}

static const luaL_Reg ops[] = {
    {"rmsnorm", l_rmsnorm}, {"layernorm", l_layernorm}, {"rope", l_rope}, {"swiglu", l_swiglu},
    {"geglu", l_geglu},     {"attention", l_attention}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"rope_cos_sin", l_rope_cos_sin},
    {NULL, NULL},
};

LFL_LUA_MODULE(ops_nn)
{
    lfl_lua_register_ops(L, ops);
    lfl_lua_register_funcs(L, NULL, funcs);
}
