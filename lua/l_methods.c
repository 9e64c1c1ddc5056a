/* Bindings for the efficient fine-tuning methods: 8-bit AdamW and the GaLore /
 * BAdam Adam variants (added to lfl.optim_kernels) and lfl.linalg (qr, svd,
 * svd_lowrank). */
#include "bridge.h"
#include "linalg/linalg.h"
#include "optim/adam_variants.h"
#include "optim/adamw8bit.h"

#define T(i) lfl_lua_check_tensor(L, i)

static const float *qmap(lua_State *L, int idx, float *buf)
{
    const char *kind = luaL_optstring(L, idx, "signed");
    if (strcmp(kind, "signed") && strcmp(kind, "unsigned"))
        luaL_error(L, "quantization map must be 'signed' or 'unsigned', got '%s'", kind);
    lfl_qmap_dynamic(strcmp(kind, "signed") == 0, buf);
    return buf;
}

/* qmap("signed"|"unsigned") -> f32 tensor [256] */
static int l_qmap(lua_State *L)
{
    float code[256];
    qmap(L, 1, code);
    int64_t n = 256;
    lfl_tensor *t = NULL;
    lfl_lua_check(L, lfl_empty(1, &n, LFL_F32, LFL_CPU, &t));
    memcpy(lfl_data(t), code, sizeof code);
    lfl_lua_push_tensor(L, t);
    return 1;
}

/* quantize_blockwise(x, q_u8, absmax, block, "signed"|"unsigned") fills q and absmax */
static int l_quantize_blockwise(lua_State *L)
{
    float code[256];
    qmap(L, 5, code);
    lfl_lua_check(L, lfl_quantize_blockwise(T(1), code, (int64_t)luaL_checkinteger(L, 4), T(2), T(3)));
    return 0;
}

/* dequantize_blockwise(q, absmax, block, out, "signed"|"unsigned") */
static int l_dequantize_blockwise(lua_State *L)
{
    float code[256];
    qmap(L, 5, code);
    lfl_lua_check(L, lfl_dequantize_blockwise(T(1), T(2), code, (int64_t)luaL_checkinteger(L, 3), T(4)));
    return 0;
}

/* adamw8bit_step(p, g, m_q, m_absmax, v_q, v_absmax, block, {lr=, beta1=, ...step=}) */
static int l_adamw8bit(lua_State *L)
{
    luaL_checktype(L, 8, LUA_TTABLE);
    lfl_adamw_opts o;
    lua_getfield(L, 8, "lr"); o.lr = luaL_checknumber(L, -1);
    lua_getfield(L, 8, "beta1"); o.beta1 = luaL_optnumber(L, -1, 0.9);
    lua_getfield(L, 8, "beta2"); o.beta2 = luaL_optnumber(L, -1, 0.999);
    lua_getfield(L, 8, "eps"); o.eps = luaL_optnumber(L, -1, 1e-8);
    lua_getfield(L, 8, "weight_decay"); o.weight_decay = luaL_optnumber(L, -1, 0);
    lua_getfield(L, 8, "step"); o.step = (int64_t)luaL_checknumber(L, -1);
    lfl_lua_check(L, lfl_adamw8bit_step(T(1), T(2), T(3), T(4), T(5), T(6), (int64_t)luaL_checkinteger(L, 7), &o));
    return 0;
}

/* adam_direction(g, m, v, dir, beta1, beta2, eps) */
static int l_adam_direction(lua_State *L)
{
    lfl_lua_check(L, lfl_adam_direction(T(1), T(2), T(3), T(4), luaL_checknumber(L, 5), luaL_checknumber(L, 6),
                                        luaL_checknumber(L, 7)));
    return 0;
}

/* sparse_adam_step(p, g, idx_i64, m, v, step_size, beta1, beta2, eps) */
static int l_sparse_adam(lua_State *L)
{
    lfl_lua_check(L, lfl_sparse_adam_step(T(1), T(2), T(3), T(4), T(5), luaL_checknumber(L, 6),
                                          luaL_checknumber(L, 7), luaL_checknumber(L, 8), luaL_checknumber(L, 9)));
    return 0;
}

/* svd(A) -> U, S, Vt (thin, descending) */
static int l_svd(lua_State *L)
{
    lfl_tensor *u, *s, *vt;
    lfl_lua_check(L, lfl_linalg_svd(T(1), &u, &s, &vt));
    lfl_lua_push_tensor(L, u);
    lfl_lua_push_tensor(L, s);
    lfl_lua_push_tensor(L, vt);
    return 3;
}

/* qr(A) -> Q, R (thin, rows >= columns) */
static int l_qr(lua_State *L)
{
    lfl_tensor *q, *r;
    lfl_lua_check(L, lfl_linalg_qr(T(1), &q, &r));
    lfl_lua_push_tensor(L, q);
    lfl_lua_push_tensor(L, r);
    return 2;
}

/* svd_lowrank(A, q, niter=2) -> U, S, V (as torch.svd_lowrank) */
static int l_svd_lowrank(lua_State *L)
{
    lfl_tensor *u, *s, *v;
    lfl_lua_check(L, lfl_linalg_svd_lowrank(T(1), (int64_t)luaL_checkinteger(L, 2), (int)luaL_optinteger(L, 3, 2),
                                            &u, &s, &v));
    lfl_lua_push_tensor(L, u);
    lfl_lua_push_tensor(L, s);
    lfl_lua_push_tensor(L, v);
    return 3;
}

static const luaL_Reg optim_fns[] = {
    {"qmap", l_qmap}, {"quantize_blockwise", l_quantize_blockwise},
    {"dequantize_blockwise", l_dequantize_blockwise}, {"adamw8bit_step", l_adamw8bit},
    {"adam_direction", l_adam_direction}, {"sparse_adam_step", l_sparse_adam}, {NULL, NULL},
};

static const luaL_Reg linalg_fns[] = {
    {"svd", l_svd}, {"qr", l_qr}, {"svd_lowrank", l_svd_lowrank}, {NULL, NULL},
};

LFL_LUA_MODULE(methods)
{
    lfl_lua_register_funcs(L, "optim_kernels", optim_fns);
    lfl_lua_register_funcs(L, "linalg", linalg_fns);
}
