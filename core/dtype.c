/* The dtype traits table. Block sizes follow ggml-common.h and bitsandbytes;
 * the to_f32 hooks are dtype_convert.c's (16-bit floats) and quant/ggml.c's
 * (ggml blocks). */
#include "dtype.h"
#include "quant/ggml.h"

static lfl_status lowp_to_f32(lfl_dtype dt, const void *src, int64_t n, float *dst)
{
    return lfl_convert_contiguous(LFL_F32, dst, dt, src, n) ? LFL_OK
           : lfl_fail(LFL_ERR_ARG, "to_f32: %s is not a 16-bit float", lfl_dtypes[dt].name);
}

#define Q(name, block, bytes) {name, block, bytes, false, false, lfl_dequantize_rows, lfl_block_dequant}
const lfl_dtype_traits lfl_dtypes[LFL_DTYPE_COUNT] = {
    [LFL_F32]  = {"f32", 1, 4, true, false, NULL},
    [LFL_F64]  = {"f64", 1, 8, true, false, NULL},
    [LFL_F16]  = {"f16", 1, 2, true, false, lowp_to_f32},
    [LFL_BF16] = {"bf16", 1, 2, true, false, lowp_to_f32},
    [LFL_I32]  = {"i32", 1, 4, false, true, NULL},
    [LFL_I64]  = {"i64", 1, 8, false, true, NULL},
    [LFL_U8]   = {"u8", 1, 1, false, true, NULL},
    [LFL_BOOL] = {"bool", 1, 1, false, true, NULL},
    [LFL_Q8_0] = Q("q8_0", 32, 34),
    [LFL_Q4_0] = Q("q4_0", 32, 18),
    [LFL_Q4_1] = Q("q4_1", 32, 20),
    [LFL_Q5_0] = Q("q5_0", 32, 22),
    [LFL_Q5_1] = Q("q5_1", 32, 24),
    [LFL_Q4_K] = Q("q4_k", 256, 144),
    [LFL_Q5_K] = Q("q5_k", 256, 176),
    [LFL_Q6_K] = Q("q6_k", 256, 210),
    [LFL_NF4]  = {"nf4", 64, 32, false, false, NULL}, /* absmax kept separately */
    [LFL_FP4]  = {"fp4", 64, 32, false, false, NULL}, /* (bitsandbytes' 4-bit float) */
    [LFL_INT8] = {"int8", 1, 1, false, false, NULL}, /* row scales kept separately (quant/bnb8.h) */
    [LFL_GPTQ4] = {"gptq4", 8, 4, false, false, NULL}, /* group zeros / scales kept separately (quant/gptq.h) */
};
#undef Q

lfl_status lfl_dtype_to_f32(lfl_dtype dt, const void *src, int64_t n, float *dst)
{
    if (!lfl_dtypes[dt].to_f32)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s has no widening to f32 here", lfl_dtypes[dt].name);
    return lfl_dtypes[dt].to_f32(dt, src, n, dst);
}

int lfl_dtype_from_name(const char *name)
{
    static const struct { const char *alias; lfl_dtype d; } aliases[] = {
        {"float32", LFL_F32}, {"float", LFL_F32}, {"float64", LFL_F64},
        {"double", LFL_F64}, {"float16", LFL_F16}, {"half", LFL_F16},
        {"bfloat16", LFL_BF16}, {"int32", LFL_I32}, {"int", LFL_I32},
        {"int64", LFL_I64}, {"long", LFL_I64}, {"uint8", LFL_U8},
    };
    for (int d = 0; d < LFL_DTYPE_COUNT; d++)
        if (strcmp(name, lfl_dtypes[d].name) == 0) return d;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0) return (int)aliases[i].d;
    return -1;
}
