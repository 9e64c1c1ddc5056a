/* GEMMs with a GPTQ / AWQ 4-bit weight kept quantized (LFL_GPTQ4,
 * quant/gptq.h) and an f32 operand: the weight is dequantized one tile at a
 * time into a per-thread f32 scratch of about 1 MB (lowp.h's blocking) and
 * each tile goes to lfl_sgemm, so the whole weight is never held in f32.
 * Used by linear and lora_linear for a GPTQ/AWQ base. */
#ifndef LFL_OPS_GPTQ_GEMM_H
#define LFL_OPS_GPTQ_GEMM_H

#include <stdbool.h>
#include <stdint.h>
#include "../tensor.h"

/* C[m, n] = A[m, k] @ B + beta * C with A f32 row-major (lda) and B the kept
 * weight W taken as W^T when wt (W is [n, k]: a linear's forward) or as W (W
 * is [k, n]: the input gradient). W must pass lfl_gptq_check. The products
 * are f32 products of exactly the dequantized values, so the result is
 * dequantize-then-GEMM up to the GEMM's summation order. */
lfl_status lfl_gemm_f32_gptq(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                             float beta, float *c, int ldc);

#endif
