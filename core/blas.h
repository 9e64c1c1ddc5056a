/* OpenBLAS, loaded at run time after choosing its kernel set for this CPU. */
#ifndef LFL_BLAS_H
#define LFL_BLAS_H

#include <stdbool.h>
#include "status.h"

/* Loads OpenBLAS (idempotent). Before loading it sets OPENBLAS_CORETYPE when
 * the CPU has AVX-512 and the user has not chosen, because Debian's 0.3.21
 * misdetects recent Xeons as Prescott and runs SSE3 kernels 6x slower. */
lfl_status lfl_blas_init(void);
/* "OpenBLAS 0.3.21 (OpenMP), kernel SkylakeX (CPU: avx512), 2 threads" */
const char *lfl_blas_describe(void);
const char *lfl_blas_corename(void);
void lfl_blas_set_threads(int n);

/* Row-major sgemm/dgemm: C[m,n] = alpha * op(A) op(B) + beta * C */
void lfl_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
void lfl_dgemm(bool ta, bool tb, int m, int n, int k, double alpha, const double *a, int lda,
               const double *b, int ldb, double beta, double *c, int ldc);

#endif
