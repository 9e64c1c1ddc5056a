/* OpenBLAS, loaded at run time after choosing its kernel set for this CPU. */
#ifndef LFL_BLAS_H
#define LFL_BLAS_H

#include <stdbool.h>
#include <stdint.h>
#include "dtype.h"
#include "status.h"

/* Loads OpenBLAS (idempotent). Before loading it sets OPENBLAS_CORETYPE when
 * the CPU has AVX-512 and the user has not chosen, because Debian's 0.3.21
 * misdetects recent Xeons as Prescott and runs SSE3 kernels 6x slower. */
lfl_status lfl_blas_init(void);
/* "OpenBLAS 0.3.21 (OpenMP), kernel SkylakeX (CPU: avx512), 2 threads" */
const char *lfl_blas_describe(void);
const char *lfl_blas_corename(void);
/* NULL, or a warning when OPENBLAS_CORETYPE pins a kernel set without the
 * AVX-512 this CPU has (the f32 GEMMs then run far below the CPU's speed) */
const char *lfl_blas_note(void);
void lfl_blas_set_threads(int n);
/* 1 when the CPU and OS run AVX512_BF16 (vdpbf16ps), else 0 */
int lfl_cpu_has_avx512bf16(void);
/* 1 when the CPU has AMX-BF16 tiles (Sapphire Rapids and later Xeons) */
int lfl_cpu_has_amx_bf16(void);

/* How f32 GEMMs may compute, as torch.set_float32_matmul_precision: HIGHEST
 * keeps f32 products (the default); MEDIUM gives large products (and GEMMs
 * with a 16-bit weight) bf16-rounded operands with f32 sums, run by the
 * fastest bf16 GEMM this CPU has (lfl_gemm_bf16, gemm_path.c). Process-wide. */
typedef enum { LFL_PRECISION_HIGHEST = 0, LFL_PRECISION_MEDIUM = 1 } lfl_matmul_precision;
void lfl_set_matmul_precision(lfl_matmul_precision p);
lfl_matmul_precision lfl_get_matmul_precision(void);
/* whether an m x n x k product runs through lfl_gemm_bf16 now */
bool lfl_gemm_wants_bf16(int64_t m, int64_t n, int64_t k);

/* Row-major sgemm/dgemm: C[m,n] = alpha * op(A) op(B) + beta * C; lfl_sgemm
 * takes the bf16 GEMM when lfl_gemm_wants_bf16, lfl_sgemm_f32 never does */
void lfl_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
void lfl_sgemm_f32(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);
void lfl_dgemm(bool ta, bool tb, int m, int n, int k, double alpha, const double *a, int lda,
               const double *b, int ldb, double beta, double *c, int ldc);
/* lfl_sgemm or lfl_dgemm by dtype (LFL_F32 / LFL_F64), for ops that run in
 * either; m or n = 0 does nothing, k = 0 gives beta * C (0 when beta is 0). */
void lfl_gemm_typed(lfl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                    int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#endif
