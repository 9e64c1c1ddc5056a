/* 16-bit (bf16/f16) weights used by f32 ops: GEMMs that turn
 * the 16-bit operand into f32 one block at a time, so a frozen bf16 weight is
 * never held in f32 as a whole and activations keep full f32 accuracy (the
 * products and sums run in f32; only the stored weight is 16-bit). */
#ifndef LFL_OPS_LOWP_H
#define LFL_OPS_LOWP_H

#include <stdbool.h>
#include <stdint.h>
#include "../tensor.h"

/* (lfl_is_lowp and the bulk bf16/f16 <-> f32 conversions are in dtype.h) */

/* C[m, n] = A[m, k] @ B[k, n] + beta * C. A is f32 as BLAS takes it (ta, lda);
 * B is a bf16/f16 2-D view at `b` with element strides sbk (along k) and sbn
 * (along n), any layout. B is converted in blocks of output columns into a
 * per-thread f32 scratch of about 1 MB. */
lfl_status lfl_gemm_f32_lowp(bool ta, int64_t m, int64_t n, int64_t k, const float *a, int lda,
                             lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn,
                             float beta, float *c, int ldc);

/* C[m, n] = A[m, k] @ B[k, n] + beta * C with A the bf16/f16 view (element
 * strides sam along m, sak along k) and B f32 as BLAS takes it (tb, ldb);
 * A is converted in blocks of output rows. */
lfl_status lfl_gemm_lowp_f32(int64_t m, int64_t n, int64_t k, lfl_dtype adt, const void *a, int64_t sam,
                             int64_t sak, bool tb, const float *b, int ldb, float beta, float *c, int ldc);

/* The blocking both tiled GEMMs use (this one and q4_gemm.c's 4-bit one):
 * how many threads, the output block width *nb, the number of blocks and the
 * k slice *kb for a product of m rows, `total` output columns and depth k */
int lfl_tile_plan(int64_t m, int64_t total, int64_t k, int64_t *nb, int64_t *nblocks, int64_t *kb);

/* this thread's f32 scratch of at least n elements (kept between calls), or NULL */
float *lfl_tile_scratch(size_t n);

/* C[m, n] *= beta (the K = 0 product; beta 0 clears) */
void lfl_tile_scale_c(int64_t m, int64_t n, float beta, float *c, int ldc);

#endif
