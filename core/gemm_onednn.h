/* bf16 x bf16 -> f32 GEMM through oneDNN's matmul primitive (AMX where the
 * CPU has it), one of the kernels behind lfl_gemm_bf16 (gemm_bf16.h). Built
 * when CMake finds oneDNN (LFL_HAVE_DNNL); without it every call says so. */
#ifndef LFL_GEMM_ONEDNN_H
#define LFL_GEMM_ONEDNN_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"
#include "tensor.h"

/* whether lfl was built with oneDNN, its CPU engine starts and it has bf16
 * matmuls on this CPU (AVX-512 at least) */
bool lfl_onednn_available(void);
/* whether oneDNN runs AMX tiles (avx512_core_amx) on this CPU */
bool lfl_onednn_has_amx(void);
/* "oneDNN 2.6.3 (OpenMP), ISA avx512_core_bf16", or why it is not there */
const char *lfl_onednn_describe(void);

/* C[m, n] = alpha * A[m, k] @ B[k, n] + beta * C with both operands rounded
 * to bf16 and f32 sums; the arguments as lfl_gemm_bf16 takes them (A f32,
 * ta: stored [k, m]; B f32/bf16/f16 at element strides sbk, sbn). A bf16 B
 * with non-negative strides is read in place; the rest is converted first.
 * One primitive per shape, kept in a bounded cache; safe from any thread. */
lfl_status lfl_gemm_onednn(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c,
                           int64_t ldc);

/* the implementation oneDNN picked for this thread's last call
 * ("brg:avx512_core_amx_bf16", ...), "" before any */
const char *lfl_onednn_last_impl(void);
/* primitives created so far (cache misses), for tests of the cache */
int64_t lfl_onednn_created(void);

#endif
