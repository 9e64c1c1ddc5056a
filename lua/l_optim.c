/* lfl.optim_kernels: the fused optimizer updates for stdlib/lfl/optim.lua. */
#include "bridge.h"
#include "optim/optim.h"

#define T(i) lfl_lua_check_tensor(L, i)

/* adamw_step(p, g, m, v, {lr=, beta1=, beta2=, eps=, weight_decay=, step=}) */
static int l_adamw(lua_State *L)
{
    luaL_checktype(L, 5, LUA_TTABLE);
    lfl_adamw_opts o;
    lua_getfield(L, 5, "lr"); o.lr = luaL_checknumber(L, -1);
    lua_getfield(L, 5, "beta1"); o.beta1 = luaL_optnumber(L, -1, 0.9);
    lua_getfield(L, 5, "beta2"); o.beta2 = luaL_optnumber(L, -1, 0.999);
    lua_getfield(L, 5, "eps"); o.eps = luaL_optnumber(L, -1, 1e-8);
    lua_getfield(L, 5, "weight_decay"); o.weight_decay = luaL_optnumber(L, -1, 0);
    lua_getfield(L, 5, "step"); o.step = (int64_t)luaL_checknumber(L, -1);
    lfl_lua_check(L, lfl_adamw_step(T(1), T(2), T(3), T(4), &o));
    return 0;
}

/* sgd_step(p, g, buf|nil, lr, momentum, weight_decay, first) */
static int l_sgd(lua_State *L)
{
    lfl_lua_check(L, lfl_sgd_step(T(1), T(2), lfl_lua_opt_tensor(L, 3), luaL_checknumber(L, 4),
                                  luaL_optnumber(L, 5, 0), luaL_optnumber(L, 6, 0), lua_toboolean(L, 7)));
    return 0;
}

static int l_sum_squares(lua_State *L)
{
    double s;
    lfl_lua_check(L, lfl_sum_squares(T(1), &s));
    lua_pushnumber(L, s);
    return 1;
}

static int l_scale_(lua_State *L)
{
    lfl_lua_check(L, lfl_scale_(T(1), luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"adamw_step", l_adamw}, {"sgd_step", l_sgd}, {"sum_squares", l_sum_squares}, {"scale_", l_scale_},
    {NULL, NULL},
};

LFL_LUA_MODULE(optim) { lfl_lua_register_funcs(L, "optim_kernels", funcs); }
