/* GPTQ and AWQ checkpoints (the safetensors layouts transformers loads
 * through GPTQModel / AutoAWQ): dequantization of one linear to f32, a 4-bit
 * linear kept quantized (LFL_GPTQ4, gptq_kept.c) and GPTQ's quantization of
 * one linear from its input Hessian (gptq_quantize.c). */
#ifndef LFL_QUANT_GPTQ_H
#define LFL_QUANT_GPTQ_H

#include <stdbool.h>
#include "../tensor.h"

/* GPTQ: qweight i32 [in/p, out] (p = 32 / bits codes a word along the input,
 * lowest bits first), qzeros i32 [groups, out/p] (along the output), scales f16/bf16/f32
 * [groups, out], g_idx i32 [in] or NULL (group of each input row; NULL = row /
 * group_size). v1 (checkpoint_format "gptq") stores each zero minus one, so
 * the zero is (stored + 1) mod 2^bits; v2 stores it as is. bits: 2, 4 or 8.
 * W[o, i] = scales[g, o] * (q[i, o] - zero[g, o]), g = g_idx[i], computed in the scales'
 * dtype as the reference libraries do (f16 scales: the product rounded to f16). out: f32 [out, in]. */
lfl_status lfl_gptq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                               const lfl_tensor *g_idx, int64_t group_size, int bits, bool v1, lfl_tensor **out);

/* GPTQ (Frantar et al. 2022) of one linear as AutoGPTQ / GPTQModel's
 * fasterquant with desc_act False, static_groups False, symmetric
 * per-output-row quantizer (Quantizer.find_params with sym, mse False):
 * w f32 [out, in], h f32/f64 [in, in] the input Hessian 2 X^T X / n. Dead
 * inputs (h[i, i] == 0) get h[i, i] = 1 and w[:, i] = 0; h gets damp_percent
 * * mean(diag h) on its diagonal; Hinv = the upper Cholesky factor of h^-1;
 * columns run in blocks of 128, each column rounded (round half to even) and
 * its error (w - q) / Hinv[c, c] spread over the later columns of the block,
 * the block's errors over the rest with one GEMM. A group's scale / zero come
 * from the group's columns of w as they stand at the last block boundary
 * (as the reference reads W, not the block's working copy W1). h == NULL is
 * round-to-nearest with the same groups (no error feedback). Computes in f64.
 * Writes the v1 ("gptq") checkpoint tensors: qweight i32 [in/p, out],
 * qzeros i32 [groups, out/p] (zero - 1), scales f16 [groups, out], g_idx i32
 * [in] (i / group_size), and wq f32 [out, in] = scale * (q - zero) (the
 * weight the next layers' calibration sees). bits 2, 4 or 8; in and out
 * multiples of 32 / bits; group_size > 0. */
lfl_status lfl_gptq_quantize(const lfl_tensor *w, const lfl_tensor *h, int bits, int64_t group_size,
                             double damp_percent, lfl_tensor **qweight, lfl_tensor **qzeros, lfl_tensor **scales,
                             lfl_tensor **g_idx, lfl_tensor **wq);

/* AWQ (AutoAWQ GEMM): qweight i32 [in, out/8] and qzeros i32 [groups, out/8]
 * pack 8 output columns a word in the order 0 2 4 6 1 3 5 7; scales
 * [groups, out]; W[o, i] = scales[i / group_size, o] * (q[i, o] - z[i / group_size, o]). */
lfl_status lfl_awq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                              int64_t group_size, lfl_tensor **out);

#endif

/* ---- GPTQ / AWQ 4-bit weights kept quantized (dtype LFL_GPTQ4) ----
 * A linear's weight W [out, in] held as its 4-bit codes in GPTQ's word layout
 * (word (i / 8) * out + o holds input i of output o at bits 4 (i % 8)), the
 * zero of each (group, output) as u8 with v1's + 1 applied, the checkpoint's
 * scales as stored (f16 / bf16 / f32) and, for act-order (desc_act), g_idx.
 * AWQ's interleaved words are repacked into that layout at load (codes moved,
 * nothing dequantized), so one kernel serves both. Every element read is
 * W[o, i] = scale[g, o] * (q[i, o] - zero[g, o]) rounded to the scales' dtype,
 * bit for bit lfl_gptq_dequantize / lfl_awq_dequantize. Frozen: ops read it
 * through lfl_gemm_f32_gptq (ops/gptq_gemm.h), a tile at a time. */

/* The kept tensor of a GPTQ checkpoint's linear (arguments as
 * lfl_gptq_dequantize with bits 4). A g_idx that is just input / group_size
 * is dropped (the plain layout); any other (act-order) is kept. */
lfl_status lfl_gptq_pack(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                         const lfl_tensor *g_idx, int64_t group_size, bool v1, lfl_tensor **out);

/* The kept tensor of an AutoAWQ GEMM linear (arguments as lfl_awq_dequantize);
 * in must be a multiple of 8. */
lfl_status lfl_awq_pack(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                        int64_t group_size, lfl_tensor **out);

static inline bool lfl_is_gptq(lfl_dtype d) { return d == LFL_GPTQ4; }

/* Checks that q is a whole LFL_GPTQ4 tensor as the packers make it (not a view). */
lfl_status lfl_gptq_check(const char *op, const lfl_tensor *q);

/* dst[(i - i0) * ld + (o - o0)] = W[o, i] for i0 <= i < i0 + ni, o0 <= o < o0 + no:
 * a tile of W^T (inputs down, outputs across, the way the codes lie).
 * Single-threaded; AVX-512 where the CPU has it. */
void lfl_gptq_dequant_tile_t(const lfl_tensor *q, int64_t i0, int64_t ni, int64_t o0, int64_t no, float *dst,
                             int64_t ld);

/* dst[r * in + i] = W[r0 + r, i] for r < n: rows of W (DoRA's row norms), single-threaded;
 * false when out of memory for its small scratch */
bool lfl_gptq_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t n, float *dst);

/* A new f32 [out, in] tensor: the whole weight (lfl_cast's hook; merge, export, tests). */
lfl_status lfl_gptq_to_f32(lfl_tensor *q, lfl_tensor **out);

/* Bytes q holds in all (codes, zeros, scales, g_idx). */
size_t lfl_gptq_nbytes(const lfl_tensor *q);

/* on = 1 makes the tile dequantizer take its portable C path even where the
 * CPU has AVX-512 (0 undoes it, -1 only asks); returns the previous setting.
 * Process-wide, for tests comparing the two. */
int lfl_gptq_portable(int on);
/* "avx512" or "portable": the tile dequantizer this CPU runs now */
const char *lfl_gptq_kernel(void);
