/* The dtype traits table. Block sizes follow ggml-common.h and bitsandbytes. */
#include "dtype.h"

const lfl_dtype_traits lfl_dtypes[LFL_DTYPE_COUNT] = {
    [LFL_F32]  = {"f32", 1, 4, true, false},
    [LFL_F64]  = {"f64", 1, 8, true, false},
    [LFL_F16]  = {"f16", 1, 2, true, false},
    [LFL_BF16] = {"bf16", 1, 2, true, false},
    [LFL_I32]  = {"i32", 1, 4, false, true},
    [LFL_I64]  = {"i64", 1, 8, false, true},
    [LFL_U8]   = {"u8", 1, 1, false, true},
    [LFL_BOOL] = {"bool", 1, 1, false, true},
    [LFL_Q8_0] = {"q8_0", 32, 34, false, false},
    [LFL_Q4_0] = {"q4_0", 32, 18, false, false},
    [LFL_Q4_1] = {"q4_1", 32, 20, false, false},
    [LFL_Q5_0] = {"q5_0", 32, 22, false, false},
    [LFL_Q5_1] = {"q5_1", 32, 24, false, false},
    [LFL_Q4_K] = {"q4_k", 256, 144, false, false},
    [LFL_Q5_K] = {"q5_k", 256, 176, false, false},
    [LFL_Q6_K] = {"q6_k", 256, 210, false, false},
    [LFL_NF4]  = {"nf4", 64, 32, false, false}, /* absmax kept separately */
};

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
