/* GEMM with bf16 products and f32 sums, the engine behind matmul precision
 * "medium" (lfl_set_matmul_precision in blas.h) and so `bf16: true`: one
 * entry point (lfl_gemm_bf16) over three kernels chosen once per process
 * (gemm_path.c): oneDNN's matmul (AMX), lfl's own AVX512_BF16 kernel
 * (gemm_bf16.c), or OpenBLAS's sgemm on bf16-rounded operands. */
#ifndef LFL_GEMM_BF16_H
#define LFL_GEMM_BF16_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"
#include "tensor.h"

/* The kernels lfl_gemm_bf16 can run. The choice is made on first use:
 * LFL_GEMM=onednn|own|f32 forces one (auto, or unset, picks: oneDNN where it
 * has AMX, else the own kernel on AVX512_BF16, else f32); a forced kernel this
 * build or CPU lacks falls back to auto and lfl_gemm_bf16_describe says so. */
typedef enum { LFL_GEMM_PATH_F32 = 0, LFL_GEMM_PATH_OWN = 1, LFL_GEMM_PATH_ONEDNN = 2 } lfl_gemm_path;
lfl_gemm_path lfl_gemm_bf16_path(void);
/* "f32", "own", "onednn" */
const char *lfl_gemm_path_name(lfl_gemm_path p);
/* whether this build and CPU can run p */
bool lfl_gemm_path_available(lfl_gemm_path p);
/* switch kernels from now on (tests, benchmarks); an error when p is not available */
lfl_status lfl_gemm_bf16_set_path(lfl_gemm_path p);
/* "onednn: oneDNN 2.6.3 (OpenMP), ISA avx512_core_bf16 (LFL_GEMM=onednn); CPU:
 * avx512_bf16, no AMX" -- which kernel runs, why, and the ISA found */
const char *lfl_gemm_bf16_describe(void);
/* whether a bf16 kernel faster than f32 runs (the path is not f32) */
bool lfl_gemm_bf16_available(void);

/* n f32 values as bf16 (round to nearest even) at d, the odd tail padded with
 * a 0 so the row is whole k pairs; AVX512_BF16 only */
void lfl_bf16_pack_row(const float *s, int64_t n, uint16_t *d);

/* C[m, n] = alpha * A[m, k] @ B[k, n] + beta * C with both operands rounded to
 * bf16 and f32 sums, on the chosen path. A is f32 as BLAS takes it (row-major;
 * ta: stored [k, m] with lda); B is f32, bf16 or f16 at b with element strides
 * sbk (along k) and sbn (along n). beta = 0 never reads C. m, n, k > 0. */
lfl_status lfl_gemm_bf16(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc);
/* the same on one kernel: the own one (only with lfl_cpu_has_avx512bf16) and
 * sgemm on rounded copies (any CPU) */
lfl_status lfl_gemm_bf16_own(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                             lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc);
lfl_status lfl_gemm_bf16_f32(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
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

/* lfl_gemm_bf16 (A not transposed, alpha 1) with a low-rank side segment: the
 * own kernel folds it into its k loop; the other paths run the GEMM and then
 * add bf16(scale * side) @ bf16(Q) as a rank-r f32 product */
lfl_status lfl_gemm_bf16_lowrank(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, lfl_dtype bdt,
                                 const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr, float beta,
                                 float *c, int64_t ldc);
lfl_status lfl_gemm_bf16_own_lowrank(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, lfl_dtype bdt,
                                     const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr, float beta,
                                     float *c, int64_t ldc);

#endif
