/* Quantized tensors from Lua: reinterpret raw bytes as a block dtype,
 * dequantize to f32. */
#include "bridge.h"
#include "quant/ggml.h"

/* lfl.from_bytes(u8 tensor, dtype, shape) -> a view of the same bytes */
static int l_from_bytes(lua_State *L)
{
    lfl_tensor *b = lfl_lua_check_tensor(L, 1);
    lfl_dtype dt = lfl_lua_opt_dtype(L, 2, LFL_U8);
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 3, shape);
    if (b->dtype != LFL_U8 || !lfl_is_contiguous(b) || b->device != LFL_CPU)
        return luaL_error(L, "from_bytes: expected a contiguous u8 CPU tensor");
    int64_t n;
    lfl_lua_check(L, lfl_shape_numel("from_bytes", nd, shape, &n));
    if (n % lfl_dtypes[dt].block || (int64_t)lfl_dtype_nbytes(dt, n) != lfl_numel(b))
        return luaL_error(L, "from_bytes: %f bytes do not hold %f elements of %s", (double)lfl_numel(b), (double)n,
                          lfl_dtype_name(dt));
    lfl_tensor *t = NULL;
    lfl_lua_check(L, lfl_tensor_from_storage("from_bytes", b->storage, b->offset, nd, shape, dt, &t));
    lfl_lua_push_tensor(L, t);
    return 1;
}

static int l_dequantize(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_dequantize(lfl_lua_check_tensor(L, 1), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static const luaL_Reg funcs[] = {{"from_bytes", l_from_bytes}, {NULL, NULL}};
static const luaL_Reg ops[] = {{"dequantize", l_dequantize}, {NULL, NULL}};

LFL_LUA_MODULE(quant)
{
    lfl_lua_register_funcs(L, NULL, funcs);
    lfl_lua_register_ops(L, ops);
}
