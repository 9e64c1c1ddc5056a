/* GEMMs with a bitsandbytes weight (4-bit NF4/FP4, quant/bnb4.h, or 8-bit
 * LLM.int8, quant/bnb8.h) and an f32 operand: the
 * weight is dequantized one tile at a time into a per-thread f32 scratch of
 * about 1 MB and each tile goes to lfl_sgemm, so the whole weight is never
 * held in f32. Used by linear and lora_linear for a QLoRA base. */
#ifndef LFL_OPS_Q4_GEMM_H
#define LFL_OPS_Q4_GEMM_H

#include <stdbool.h>
#include <stdint.h>
#include "../tensor.h"

/* C[m, n] = A[m, k] @ B + beta * C with A f32 row-major (lda) and B the quantized
 * 2-D weight W taken as W^T when wt (W is [n, k]: a linear's forward) or as W
 * (W is [k, n]: the input gradient). W must pass lfl_bnb_check. */
lfl_status lfl_gemm_f32_q4(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                           float beta, float *c, int ldc);

#endif
