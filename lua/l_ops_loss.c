/* Bindings of the loss ops: cross_entropy, linear_cross_entropy, token_logprobs,
 * linear_topk_entropy, linear_kl_div.
 * Labels are data (0-based class ids, -100 ignored) and pass through unshifted. */
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

/* opts.reduction: "mean" (default), "sum" or "none" */
static lfl_reduction opt_reduction(lua_State *L, int idx, const char *op)
{
    if (lua_isnoneornil(L, idx)) return LFL_REDUCE_MEAN;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "reduction");
    lfl_reduction r = LFL_REDUCE_MEAN;
    if (!lua_isnil(L, -1)) {
        const char *s = lua_tostring(L, -1);
        if (s && strcmp(s, "mean") == 0) r = LFL_REDUCE_MEAN;
        else if (s && strcmp(s, "sum") == 0) r = LFL_REDUCE_SUM;
        else if (s && strcmp(s, "none") == 0) r = LFL_REDUCE_NONE;
        else luaL_error(L, "%s: reduction must be \"mean\", \"sum\" or \"none\", got %s", op,
                        s ? s : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return r;
}

static int l_cross_entropy(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_reduction r = opt_reduction(L, 3, "cross_entropy");
    lfl_lua_check(L, lfl_cross_entropy(T(1), T(2), r, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.linear_cross_entropy(hidden, w, labels, {reduction = "mean", chunk = 0}) */
static int l_linear_cross_entropy(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_reduction r = opt_reduction(L, 4, "linear_cross_entropy");
    lua_Integer chunk = 0;
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "chunk");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1))
                luaL_error(L, "linear_cross_entropy: chunk must be a number, got %s", luaL_typename(L, -1));
            chunk = lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
    }
    lfl_lua_check(L, lfl_linear_cross_entropy(T(1), T(2), T(3), r, (int64_t)chunk, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.linear_topk_entropy(hidden, w, {k = 20, chunk = 0}): a detached [...] tensor */
static int l_linear_topk_entropy(lua_State *L)
{
    lfl_tensor *out = NULL;
    lua_Integer k = 20, chunk = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "k");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1))
                luaL_error(L, "linear_topk_entropy: k must be a number, got %s", luaL_typename(L, -1));
            k = lua_tointeger(L, -1);
        }
        lua_getfield(L, 3, "chunk");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1))
                luaL_error(L, "linear_topk_entropy: chunk must be a number, got %s", luaL_typename(L, -1));
            chunk = lua_tointeger(L, -1);
        }
        lua_pop(L, 2);
    }
    lfl_lua_check(L, lfl_linear_topk_entropy(T(1), T(2), (int64_t)k, (int64_t)chunk, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.linear_kl_div(hidden, w, ref_hidden, ref_w, labels, {chunk = 0}): [...] per-row KL */
static int l_linear_kl_div(lua_State *L)
{
    lfl_tensor *out = NULL;
    lua_Integer chunk = 0;
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        lua_getfield(L, 6, "chunk");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1))
                luaL_error(L, "linear_kl_div: chunk must be a number, got %s", luaL_typename(L, -1));
            chunk = lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
    }
    lfl_lua_check(L, lfl_linear_kl_div(T(1), T(2), T(3), T(4), T(5), (int64_t)chunk, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_token_logprobs(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_token_logprobs(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static const luaL_Reg ops[] = {
    {"cross_entropy", l_cross_entropy},
    {"linear_cross_entropy", l_linear_cross_entropy},
    {"token_logprobs", l_token_logprobs},
    {"linear_topk_entropy", l_linear_topk_entropy},
    {"linear_kl_div", l_linear_kl_div},
    {NULL, NULL},
};

LFL_LUA_MODULE(ops_loss) { lfl_lua_register_ops(L, ops); }
