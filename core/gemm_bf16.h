/* GEMM with bf16 products and f32 sums (AVX512_BF16), the engine behind matmul
 * precision "medium" (lfl_set_matmul_precision in blas.h). */
#ifndef LFL_GEMM_BF16_H
#define LFL_GEMM_BF16_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"
#include "tensor.h"

/* true when this CPU (and OS) runs AVX512_BF16 */
bool lfl_gemm_bf16_available(void);

/* n f32 values as bf16 (round to nearest even) at d, the odd tail padded with
 * a 0 so the row is whole k pairs; AVX512_BF16 only */
void lfl_bf16_pack_row(const float *s, int64_t n, uint16_t *d);

/* C[m, n] = alpha * A[m, k] @ B[k, n] + beta * C with both operands rounded to
 * bf16. A is f32 as BLAS takes it (row-major; ta: stored [k, m] with lda);
 * B is f32, bf16 or f16 at b with element strides sbk (along k) and sbn (along
 * n). beta = 0 never reads C. m, n, k > 0; only when lfl_gemm_bf16_available(). */
lfl_status lfl_gemm_bf16(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc);

/* A rank-r side product folded into the GEMM (LoRA):
 *   C = alpha [A | scale * S] [B ; Q] + beta C,  S = A @ pt^T  (written to side)
 * pt is [r, k] row-major f32; Q [r, n] f32 at q[j * sqk + c * sqn]. */
#define LFL_GEMM_MAX_RANK 64
typedef struct {
    int64_t r;
    const float *pt;
    float *side;
    float scale;
    const float *q;
    int64_t sqk, sqn;
} lfl_gemm_lowrank;

/* side[i, :] = a[i, :] @ pt^T for i < m (pt [r, k]), summed exactly as
 * lfl_gemm_bf16_lowrank computes its side: a replay of that GEMM's side
 * product without the GEMM */
void lfl_gemm_side_rows(int64_t m, int64_t k, const float *a, int64_t lda, const float *pt, int64_t r, float *side);

/* lfl_gemm_bf16 (A not transposed, alpha 1) with a low-rank side segment */
lfl_status lfl_gemm_bf16_lowrank(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, lfl_dtype bdt,
                                 const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr, float beta,
                                 float *c, int64_t ldc);

#endif
