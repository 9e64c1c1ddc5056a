/* Block-quantized formats (GGUF/ggml Q4_0 ... Q6_K): dequantization to f32
 * (the to_f32 hook of their dtype traits), tiles of a 2-D block weight for the
 * tile-dequantizing GEMM, and the integer unpacking the decode dot products
 * read (ops/ggml_gemm.c). */
#ifndef LFL_QUANT_GGML_H
#define LFL_QUANT_GGML_H

#include "../tensor.h"

/* n elements (a multiple of the block) of src in dtype dt -> dst f32 */
lfl_status lfl_dequantize_rows(lfl_dtype dt, const void *src, int64_t n, float *dst);
/* A new f32 tensor of the same shape on q's device (block tensors are contiguous). */
lfl_status lfl_dequantize(lfl_tensor *q, lfl_tensor **out);
/* q (a whole contiguous Q8_0 .. Q6_K tensor on any device) -> out (f32 of
 * q's size, contiguous, on q's device): the front of the dispatch table's
 * block_dequant, also the dequant hook of these dtypes' traits (lfl_cast) */
lfl_status lfl_block_dequant(lfl_tensor *q, lfl_tensor *out);

/* Q8_0 .. Q6_K: the GGUF block kinds (not bitsandbytes' NF4/FP4) */
static inline bool lfl_is_ggml(lfl_dtype d) { return d >= LFL_Q8_0 && d <= LFL_Q6_K; }

/* Checks that q is a 2-D ggml block tensor a GEMM can read: contiguous whole
 * rows of blocks (shape[1] a multiple of the block); op names the caller. */
lfl_status lfl_ggml_check(const char *op, const lfl_tensor *q);

/* dst[r * cols + c] = W[r0 + r][c0 + c] for r < rows, c < cols, W the 2-D
 * block tensor q: c0 and cols are multiples of the block (or reach the end
 * of the row, which is one too). Single-threaded. */
void lfl_ggml_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst);

/* One block b of kind dt as small unsigned integers: element i is
 * d[i / 16] * u[i] + m[i / 16] (u < 256; 16-element groups, the finest
 * scale grain of the formats: Q6_K's). u gets block elements, d and m
 * block / 16. Equal to the dequantized block up to f32 rounding. */
void lfl_ggml_unpack(lfl_dtype dt, const uint8_t *b, uint8_t *u, float *d, float *m);
/* the same for n consecutive blocks (u, d, m laid end to end) */
void lfl_ggml_unpack_blocks(lfl_dtype dt, const uint8_t *b, int64_t n, uint8_t *u, float *d, float *m);

/* Reverses llama.cpp's permute(w, n_head) of a q/k weight on its rows
 * (gguf.lua's unpermute) for a block tensor: whole rows of blocks are
 * copied into a new tensor, nothing is dequantized. */
lfl_status lfl_ggml_unpermute_rows(const lfl_tensor *q, int64_t n_head, lfl_tensor **out);

#endif
