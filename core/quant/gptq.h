/* GPTQ and AWQ 4-bit checkpoints (the safetensors layouts transformers loads
 * through GPTQModel / AutoAWQ): dequantization of one linear to f32. */
#ifndef LFL_QUANT_GPTQ_H
#define LFL_QUANT_GPTQ_H

#include <stdbool.h>
#include "../tensor.h"

/* GPTQ: qweight i32 [in/8, out] (8 codes a word along the input, low nibble
 * first), qzeros i32 [groups, out/8] (along the output), scales f16/bf16/f32
 * [groups, out], g_idx i32 [in] or NULL (group of each input row; NULL = row /
 * group_size). v1 (checkpoint_format "gptq") stores each zero minus one, so
 * the zero is (stored + 1) & 15; v2 stores it as is.
 * W[o, i] = scales[g, o] * (q[i, o] - zero[g, o]), g = g_idx[i], computed in the scales'
 * dtype as the reference libraries do (f16 scales: the product rounded to f16). out: f32 [out, in]. */
lfl_status lfl_gptq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                               const lfl_tensor *g_idx, int64_t group_size, bool v1, lfl_tensor **out);

/* AWQ (AutoAWQ GEMM): qweight i32 [in, out/8] and qzeros i32 [groups, out/8]
 * pack 8 output columns a word in the order 0 2 4 6 1 3 5 7; scales
 * [groups, out]; W[o, i] = scales[i / group_size, o] * (q[i, o] - z[i / group_size, o]). */
lfl_status lfl_awq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                              int64_t group_size, lfl_tensor **out);

#endif
