/* GEMMs with a GGUF block weight (Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K,
 * quant/ggml.h) and an f32 operand, the weight read in its blocks (mmapped
 * from the file) and never held dequantized as a whole. Used by linear and
 * lora_linear for a GGUF base kept in its blocks. */
#ifndef LFL_OPS_GGML_GEMM_H
#define LFL_OPS_GGML_GEMM_H

#include <stdbool.h>
#include <stdint.h>
#include "../tensor.h"

/* C[m, n] = A[m, k] @ B + beta * C with A f32 row-major (lda) and B the 2-D
 * block weight W taken as W^T when wt (W [n, k]: a linear's forward) or as W
 * (W [k, n]: the input gradient). W must pass lfl_ggml_check.
 *
 * Two paths: W tile by tile dequantized into a per-thread f32 scratch of about
 * 1 MB and multiplied with sgemm (equal to dequantize-then-GEMM up to the
 * summation order), or, for a forward of at most lfl_ggml_vecdot_rows() rows
 * (decoding), integer dot products on the blocks as they are stored: each row
 * of A is quantized to 8 bits in blocks of 32 (llama.cpp's Q8_0 activations),
 * which costs about 0.3% relative error per output. */
lfl_status lfl_gemm_f32_ggml(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                             float beta, float *c, int ldc);

/* the row count up to which a forward takes the integer dot-product path (8
 * by default, at most 8; 0 turns it off); sets it when rows >= 0 and returns
 * the previous value. Process-wide, for benchmarks and tests. */
int lfl_ggml_vecdot_rows(int rows);

/* "avx512-vnni" or "portable": the dot-product kernel this CPU runs */
const char *lfl_ggml_vecdot_kernel(void);

/* on = 1 makes the integer dot-product path run its portable C kernels even
 * where the CPU has AVX512-VNNI (0 undoes it, -1 only asks); returns the
 * previous setting. Process-wide, for tests comparing the two. */
int lfl_ggml_vecdot_portable(int on);

#endif
