/* bitsandbytes' 8-bit weights (LLM.int8, transformers' load_in_8bit): a 2-D
 * weight W [rows, cols] is stored as int8 codes CB, one byte per element, and
 * an f32 absmax per row SCB (tensor->quant->scb). Quantization is
 * Int8Params._quantize: W -> f16, SCB = max |W16| of the row, CB =
 * round-half-even(W16 * (127 / SCB)). The weight bitsandbytes computes with on
 * the CPU in training mode (MatMul8bitFp) is CB * (SCB * f32(1/127)) in f32. */
#ifndef LFL_QUANT_BNB8_H
#define LFL_QUANT_BNB8_H

#include <math.h>
#include "bnb4.h"

static inline bool lfl_is_int8q(lfl_dtype d) { return d == LFL_INT8; }
/* a bitsandbytes weight (4-bit or 8-bit): frozen, read through tile dequantization */
static inline bool lfl_is_bnb(lfl_dtype d) { return lfl_is_q4(d) || d == LFL_INT8; }

/* torch.round(v).to(torch.int8) for |v| <= 127.5 or NaN (a NaN, from an inf or
 * NaN weight, becomes 0 as on x86) */
static inline int8_t lfl_i8_round(float v) { return v == v ? (int8_t)nearbyintf(v) : 0; }

/* Int8Params._quantize of w (a 2-D CPU f32/bf16/f16 tensor, or a GGUF block
 * tensor dequantized on the way): a new int8 tensor of w's shape (no grad). */
lfl_status lfl_quantize_8bit(lfl_tensor *w, lfl_tensor **out);

/* An int8 weight from bitsandbytes' saved state (a load_in_8bit model's
 * save_pretrained: weight int8 [rows, cols] and SCB f32 [rows]); both copied. */
lfl_status lfl_i8_from_state(lfl_tensor *cb, lfl_tensor *scb, lfl_tensor **out);

/* Checks that q is a whole 2-D int8 tensor as lfl_quantize_8bit makes it. */
lfl_status lfl_i8_check(const char *op, const lfl_tensor *q);

/* dst[r * cols + c] = W[r0 + r][c0 + c] (f32, as MatMul8bitFp dequantizes), single-threaded */
void lfl_i8_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst);

/* A new f32 tensor of q's shape (the whole weight: for export and tests) */
lfl_status lfl_i8_dequantize(lfl_tensor *q, lfl_tensor **out);

/* Bytes q holds in all (codes + row scales). */
size_t lfl_i8_nbytes(const lfl_tensor *q);

/* The two weight kinds through one door (the tiled GEMM, DoRA's row blocks):
 * lfl_q4_check / lfl_i8_check and the matching tile dequantizer. */
lfl_status lfl_bnb_check(const char *op, const lfl_tensor *q);
void lfl_bnb_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst);

/* LLM.int8's eval-mode matmul on such a weight: lfl_int8_linear_lt (ops.h). */

#endif
