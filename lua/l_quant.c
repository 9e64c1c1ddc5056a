/* Quantized tensors from Lua: reinterpret raw bytes as a block dtype,
 * dequantize to f32; bitsandbytes' 4-bit and 8-bit quantization (QLoRA,
 * LLM.int8) and a look at their stored state; GGUF block weights kept as stored (row unpermute, the
 * decode dot-product switch). */
#include <string.h>
#include "bridge.h"
#include "ops/ggml_gemm.h"
#include "quant/bnb8.h"
#include "quant/ggml.h"
#include "quant/gptq.h"

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

/* lfl.quantize_4bit(t, "nf4"|"fp4", double_quant) -> a new NF4/FP4 tensor */
static int l_quantize_4bit(lua_State *L)
{
    lfl_tensor *t = lfl_lua_check_tensor(L, 1);
    const char *kind = luaL_checkstring(L, 2);
    lfl_dtype dt;
    if (strcmp(kind, "nf4") == 0) dt = LFL_NF4;
    else if (strcmp(kind, "fp4") == 0) dt = LFL_FP4;
    else return luaL_error(L, "quantize_4bit: quantization type '%s' is not nf4 or fp4", kind);
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_quantize_4bit(t, dt, lua_toboolean(L, 3), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static void push_f32(lua_State *L, const float *v, int64_t n)
{
    lfl_tensor *t = NULL;
    lfl_lua_check(L, lfl_empty(1, &n, LFL_F32, LFL_CPU, &t));
    memcpy(lfl_data(t), v, sizeof(float) * (size_t)n);
    lfl_lua_push_tensor(L, t);
}

/* lfl.q4_state(t) -> {packed = u8 view of the codes, code = f32[16], absmax =
 * f32 (no double quantization) | qabsmax = u8, absmax2 = f32, offset, code2 =
 * f32[256], scales = f32 per block, nbytes = all bytes held} */
static int l_q4_state(lua_State *L)
{
    lfl_tensor *q = lfl_lua_check_tensor(L, 1);
    lfl_lua_check(L, lfl_q4_check("q4_state", q));
    const struct lfl_qstate *st = q->quant;
    lua_createtable(L, 0, 8);
    int64_t nb = (int64_t)lfl_dtype_nbytes(q->dtype, lfl_numel(q));
    lfl_tensor *p = NULL;
    lfl_lua_check(L, lfl_tensor_from_storage("q4_state", q->storage, q->offset, 1, &nb, LFL_U8, &p));
    lfl_lua_push_tensor(L, p);
    lua_setfield(L, -2, "packed");
    push_f32(L, lfl_q4_code(q->dtype), 16);
    lua_setfield(L, -2, "code");
    if (st->absmax) {
        lfl_lua_push_tensor(L, lfl_tensor_retain(st->absmax));
        lua_setfield(L, -2, "absmax");
    } else {
        lfl_lua_push_tensor(L, lfl_tensor_retain(st->qabsmax));
        lua_setfield(L, -2, "qabsmax");
        lfl_lua_push_tensor(L, lfl_tensor_retain(st->absmax2));
        lua_setfield(L, -2, "absmax2");
        lua_pushnumber(L, st->offset);
        lua_setfield(L, -2, "offset");
        push_f32(L, st->code2, 256);
        lua_setfield(L, -2, "code2");
    }
    lfl_tensor *sc = NULL;
    lfl_lua_check(L, lfl_empty(1, &st->nblocks, LFL_F32, LFL_CPU, &sc));
    lfl_q4_scales(q, 0, st->nblocks, lfl_data(sc));
    lfl_lua_push_tensor(L, sc);
    lua_setfield(L, -2, "scales");
    lua_pushnumber(L, (double)lfl_q4_nbytes(q));
    lua_setfield(L, -2, "nbytes");
    return 1;
}

/* lfl.quantize_8bit(t) -> a new int8 tensor (LLM.int8 row-wise absmax) */
static int l_quantize_8bit(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_quantize_8bit(lfl_lua_check_tensor(L, 1), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.int8_state(t) -> {CB = u8 view of the int8 codes (their bytes), SCB =
 * f32 row absmaxes, nbytes = all bytes held} */
static int l_int8_state(lua_State *L)
{
    lfl_tensor *q = lfl_lua_check_tensor(L, 1), *p = NULL;
    lfl_lua_check(L, lfl_i8_check("int8_state", q));
    lua_createtable(L, 0, 3);
    lfl_lua_check(L, lfl_tensor_from_storage("int8_state", q->storage, q->offset, 2, q->shape, LFL_U8, &p));
    lfl_lua_push_tensor(L, p);
    lua_setfield(L, -2, "CB");
    lfl_lua_push_tensor(L, lfl_tensor_retain(q->quant->scb));
    lua_setfield(L, -2, "SCB");
    lua_pushnumber(L, (double)lfl_i8_nbytes(q));
    lua_setfield(L, -2, "nbytes");
    return 1;
}

/* lfl.q4_from_state(kind, shape, codes, quant_map, absmax[, nested_absmax,
 * nested_quant_map, nested_offset]) -> an NF4/FP4 tensor from bitsandbytes'
 * saved state (lfl.model.bnb_checkpoint) */
static int l_q4_from_state(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    lfl_dtype dt;
    if (strcmp(kind, "nf4") == 0) dt = LFL_NF4;
    else if (strcmp(kind, "fp4") == 0) dt = LFL_FP4;
    else return luaL_error(L, "q4_from_state: quantization type '%s' is not nf4 or fp4", kind);
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 2, shape);
    lfl_tensor *codes = lfl_lua_check_tensor(L, 3), *qm = lfl_lua_check_tensor(L, 4);
    lfl_tensor *am = lfl_lua_check_tensor(L, 5), *am2 = NULL, *code2 = NULL;
    float offset = 0;
    if (!lua_isnoneornil(L, 6)) {
        am2 = lfl_lua_check_tensor(L, 6);
        code2 = lfl_lua_check_tensor(L, 7);
        offset = (float)luaL_checknumber(L, 8);
    }
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_q4_from_state(dt, nd, shape, codes, qm, am, am2, code2, offset, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.int8_from_state(weight int8, SCB f32) -> an LLM.int8 weight from
 * bitsandbytes' saved state */
static int l_int8_from_state(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_i8_from_state(lfl_lua_check_tensor(L, 1), lfl_lua_check_tensor(L, 2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.int8_linear_lt(x, w, bias|nil, threshold) -> bitsandbytes' LLM.int8
 * inference product (MatMul8bitLt) of f32 x and an int8 weight */
static int l_int8_linear_lt(lua_State *L)
{
    lfl_tensor *x = lfl_lua_check_tensor(L, 1), *w = lfl_lua_check_tensor(L, 2), *out = NULL;
    lfl_tensor *b = lua_isnoneornil(L, 3) ? NULL : lfl_lua_check_tensor(L, 3);
    lfl_lua_check(L, lfl_int8_linear_lt(x, w, b, luaL_checknumber(L, 4), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.q4_rows(t, first, n) -> f32 rows first .. first + n - 1 (1-based) of a
 * 2-D NF4/FP4, int8, GPTQ/AWQ (gptq4) or GGUF block tensor: a block of the weight, never the whole */
static int l_q4_rows(lua_State *L)
{
    lfl_tensor *q = lfl_lua_check_tensor(L, 1);
    bool ggml = lfl_is_ggml(q->dtype), gptq = lfl_is_gptq(q->dtype);
    lfl_lua_check(L, ggml ? lfl_ggml_check("q4_rows", q) : gptq ? lfl_gptq_check("q4_rows", q)
                                                                : lfl_bnb_check("q4_rows", q));
    int64_t r0 = (int64_t)luaL_checkinteger(L, 2) - 1, n = (int64_t)luaL_checkinteger(L, 3);
    if (q->ndim != 2 || r0 < 0 || n < 0 || r0 + n > q->shape[0])
        return luaL_error(L, "q4_rows: rows %d..%d are outside the %d rows of a 2-D quantized tensor", (int)(r0 + 1),
                          (int)(r0 + n), q->ndim == 2 ? (int)q->shape[0] : -1);
    int64_t shape[2] = {n, q->shape[1]};
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_empty(2, shape, LFL_F32, LFL_CPU, &out));
    if (ggml) lfl_ggml_dequant_tile(q, r0, n, 0, shape[1], lfl_data(out));
    else if (!gptq) lfl_bnb_dequant_tile(q, r0, n, 0, shape[1], lfl_data(out));
    else if (!lfl_gptq_dequant_rows(q, r0, n, lfl_data(out))) {
        lfl_tensor_release(out);
        return luaL_error(L, "q4_rows: out of memory");
    }
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.gptq_dequantize(qweight, qzeros, scales, g_idx|nil, group_size, v1[, bits=4]) -> f32 [out, in] */
static int l_gptq_dequantize(lua_State *L)
{
    lfl_tensor *g = lua_isnoneornil(L, 4) ? NULL : lfl_lua_check_tensor(L, 4), *out = NULL;
    lfl_lua_check(L, lfl_gptq_dequantize(lfl_lua_check_tensor(L, 1), lfl_lua_check_tensor(L, 2),
                                         lfl_lua_check_tensor(L, 3), g, (int64_t)luaL_checkinteger(L, 5),
                                         (int)luaL_optinteger(L, 7, 4), lua_toboolean(L, 6), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.gptq_quantize(w f32 [out, in], h [in, in] | nil, bits, group_size, damp_percent)
 * -> {qweight, qzeros, scales, g_idx, weight}; h nil rounds to nearest */
static int l_gptq_quantize(lua_State *L)
{
    lfl_tensor *h = lua_isnoneornil(L, 2) ? NULL : lfl_lua_check_tensor(L, 2);
    lfl_tensor *qw = NULL, *qz = NULL, *sc = NULL, *gi = NULL, *wq = NULL;
    lfl_lua_check(L, lfl_gptq_quantize(lfl_lua_check_tensor(L, 1), h, (int)luaL_checkinteger(L, 3),
                                       (int64_t)luaL_checkinteger(L, 4), luaL_checknumber(L, 5), &qw, &qz, &sc, &gi,
                                       &wq));
    lua_createtable(L, 0, 5);
    lfl_lua_push_tensor(L, qw);
    lua_setfield(L, -2, "qweight");
    lfl_lua_push_tensor(L, qz);
    lua_setfield(L, -2, "qzeros");
    lfl_lua_push_tensor(L, sc);
    lua_setfield(L, -2, "scales");
    lfl_lua_push_tensor(L, gi);
    lua_setfield(L, -2, "g_idx");
    lfl_lua_push_tensor(L, wq);
    lua_setfield(L, -2, "weight");
    return 1;
}

/* lfl.ggml_unpermute_rows(t, n_head) -> a new block tensor with llama.cpp's
 * q/k row permutation undone (whole rows of blocks moved, nothing dequantized) */
static int l_ggml_unpermute_rows(lua_State *L)
{
    lfl_tensor *q = lfl_lua_check_tensor(L, 1), *out = NULL;
    lfl_lua_check(L, lfl_ggml_unpermute_rows(q, (int64_t)luaL_checkinteger(L, 2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.awq_dequantize(qweight, qzeros, scales, group_size) -> f32 [out, in] */
static int l_awq_dequantize(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_awq_dequantize(lfl_lua_check_tensor(L, 1), lfl_lua_check_tensor(L, 2),
                                        lfl_lua_check_tensor(L, 3), (int64_t)luaL_checkinteger(L, 4), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.gptq_pack(qweight, qzeros, scales, g_idx|nil, group_size, v1) -> a kept
 * gptq4 weight [out, in] (4 bits; quant/gptq.h) */
static int l_gptq_pack(lua_State *L)
{
    lfl_tensor *g = lua_isnoneornil(L, 4) ? NULL : lfl_lua_check_tensor(L, 4), *out = NULL;
    lfl_lua_check(L, lfl_gptq_pack(lfl_lua_check_tensor(L, 1), lfl_lua_check_tensor(L, 2), lfl_lua_check_tensor(L, 3),
                                   g, (int64_t)luaL_checkinteger(L, 5), lua_toboolean(L, 6), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.awq_pack(qweight, qzeros, scales, group_size) -> a kept gptq4 weight [out, in] */
static int l_awq_pack(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_awq_pack(lfl_lua_check_tensor(L, 1), lfl_lua_check_tensor(L, 2), lfl_lua_check_tensor(L, 3),
                                  (int64_t)luaL_checkinteger(L, 4), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.gptq_state(t) -> {nbytes = all bytes held, groups, group_size, act_order
 * = whether a g_idx is kept, scales_dtype, kernel = "avx512" | "portable"} */
static int l_gptq_state(lua_State *L)
{
    lfl_tensor *q = lfl_lua_check_tensor(L, 1);
    lfl_lua_check(L, lfl_gptq_check("gptq_state", q));
    const struct lfl_qstate *st = q->quant;
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, (double)lfl_gptq_nbytes(q));
    lua_setfield(L, -2, "nbytes");
    lua_pushinteger(L, (lua_Integer)st->gzeros->shape[0]);
    lua_setfield(L, -2, "groups");
    lua_pushinteger(L, (lua_Integer)st->group_size);
    lua_setfield(L, -2, "group_size");
    lua_pushboolean(L, st->gidx != NULL);
    lua_setfield(L, -2, "act_order");
    lua_pushstring(L, lfl_dtype_name(st->gscales->dtype));
    lua_setfield(L, -2, "scales_dtype");
    lua_pushstring(L, lfl_gptq_kernel());
    lua_setfield(L, -2, "kernel");
    return 1;
}

/* lfl.gptq_portable([on]) -> previous setting: the GPTQ/AWQ tile dequantizer's
 * portable C path forced on (true) or not (false); nil only asks */
static int l_gptq_portable(lua_State *L)
{
    int on = lua_isnoneornil(L, 1) ? -1 : lua_toboolean(L, 1);
    lua_pushboolean(L, lfl_gptq_portable(on));
    return 1;
}

/* lfl.ggml_vecdot_rows([n]) -> previous n, kernel name: up to how many rows a
 * GGUF block linear's forward takes the int8 dot-product path (0: never) */
static int l_ggml_vecdot_rows(lua_State *L)
{
    int n = (int)luaL_optinteger(L, 1, -1);
    if (n < -1 || n > 8) return luaL_error(L, "ggml_vecdot_rows: %d is not a row count 0..8", n);
    lua_pushinteger(L, lfl_ggml_vecdot_rows(n));
    lua_pushstring(L, lfl_ggml_vecdot_kernel());
    return 2;
}

static const luaL_Reg funcs[] = {{"gptq_dequantize", l_gptq_dequantize}, {"gptq_quantize", l_gptq_quantize}, {"awq_dequantize", l_awq_dequantize},
                                 {"gptq_pack", l_gptq_pack}, {"awq_pack", l_awq_pack}, {"gptq_state", l_gptq_state},
                                 {"gptq_portable", l_gptq_portable},
                                 {"from_bytes", l_from_bytes}, {"quantize_4bit", l_quantize_4bit},
                                 {"q4_state", l_q4_state}, {"q4_rows", l_q4_rows},
                                 {"quantize_8bit", l_quantize_8bit}, {"int8_state", l_int8_state},
                                 {"int8_linear_lt", l_int8_linear_lt},
                                 {"q4_from_state", l_q4_from_state}, {"int8_from_state", l_int8_from_state},
                                 {"ggml_unpermute_rows", l_ggml_unpermute_rows},
                                 {"ggml_vecdot_rows", l_ggml_vecdot_rows}, {NULL, NULL}};
static const luaL_Reg ops[] = {{"dequantize", l_dequantize}, {NULL, NULL}};

LFL_LUA_MODULE(quant)
{
    lfl_lua_register_funcs(L, NULL, funcs);
    lfl_lua_register_ops(L, ops);
}
