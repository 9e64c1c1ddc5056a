/* lfl.sample(logits[V], opts, prev_ids) -> next token id (0-based), for
 * generation: one draw from the global Philox stream when sampling; logits on
 * a device are read through a copy to the host. */
#include <stdlib.h>
#include "bridge.h"
#include "gen/sample.h"

static double opt_num(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_sample(lua_State *L)
{
    lfl_tensor *x = lfl_lua_check_tensor(L, 1);
    lfl_sample_opts o = {0, 0, 1.0, 0, 1.0};
    if (lua_istable(L, 2)) {
        o.temperature = opt_num(L, 2, "temperature", 0);
        o.top_k = (int64_t)opt_num(L, 2, "top_k", 0);
        o.top_p = opt_num(L, 2, "top_p", 1.0);
        o.min_p = opt_num(L, 2, "min_p", 0);
        o.repetition_penalty = opt_num(L, 2, "repetition_penalty", 1.0);
    }
    if (x->dtype != LFL_F32 || lfl_numel(x) <= 0)
        return luaL_error(L, "sample: logits must be a non-empty f32 tensor, got %s", lfl_dtype_name(x->dtype));
    int64_t n = lua_istable(L, 3) ? (int64_t)lua_objlen(L, 3) : 0;
    int64_t *prev = NULL;
    if (n > 0 && o.repetition_penalty != 1.0) {
        prev = malloc((size_t)n * sizeof *prev);
        if (!prev) return luaL_error(L, "sample: out of memory");
        for (int64_t i = 0; i < n; i++) {
            lua_rawgeti(L, 3, (int)(i + 1));
            prev[i] = (int64_t)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else {
        n = 0;
    }
    double u = 0;
    if (o.temperature > 0) {
        uint32_t w[4];
        lfl_philox(lfl_rng_get().seed, lfl_rng_reserve(1), w);
        u = lfl_u32_unit(w[0]);
    }
    /* the row on the host: a device's logits come over (V floats a token;
     * sampling itself stays on the CPU) */
    lfl_tensor *c = NULL;
    lfl_status st = x->device == LFL_CPU ? lfl_contiguous(x, &c) : lfl_to_device(x, LFL_CPU, &c);
    int64_t id = 0;
    if (st == LFL_OK) st = lfl_sample(lfl_data(c), lfl_numel(c), &o, prev, n, u, &id);
    lfl_tensor_release(c);
    free(prev);
    lfl_lua_check(L, st);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static const luaL_Reg funcs[] = {{"sample", l_sample}, {NULL, NULL}};

LFL_LUA_MODULE(sample)
{
    lfl_lua_register_funcs(L, NULL, funcs);
}
