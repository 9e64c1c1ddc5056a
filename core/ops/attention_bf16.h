/* bf16-product tile GEMMs of the f32 attention (attention_bf16.c). */
#ifndef LFL_OPS_ATTENTION_BF16_H
#define LFL_OPS_ATTENTION_BF16_H

#include <stdbool.h>
#include <stdint.h>

/* C[i][0..ncols) = (or += when acc) sum_{k < K} A[i * sa + k * sk] * B[k][0..ncols)
 * for i < nI, with bf16-rounded operands and f32 sums. A is row-major (sk == 1)
 * or transposed (sa == 1); B row-major with ldb. With AVX512_BF16 it returns
 * false for shapes its kernel does not take (nI % 4, ncols % 16, a transposed
 * A with nI % 16), which the caller then runs in f32; without, it runs sgemm
 * on bf16-rounded copies of the tiles (false only when out of memory). */
bool lfl_att_gemm_bf16(int64_t nI, int64_t ncols, int64_t K, const float *a, int64_t sa, int64_t sk, const float *b,
                       int64_t ldb, float *c, int64_t ldc, bool acc);

#endif
