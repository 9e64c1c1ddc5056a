/* Block-quantized formats (GGUF/ggml Q4_0 ... Q6_K): dequantization to f32,
 * the to_f32 hook of their dtype traits. */
#ifndef LFL_QUANT_GGML_H
#define LFL_QUANT_GGML_H

#include "../tensor.h"

/* n elements (a multiple of the block) of src in dtype dt -> dst f32 */
lfl_status lfl_dequantize_rows(lfl_dtype dt, const void *src, int64_t n, float *dst);
/* A new f32 tensor of the same shape (block tensors are contiguous). */
lfl_status lfl_dequantize(lfl_tensor *q, lfl_tensor **out);

#endif
