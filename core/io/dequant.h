/* Block-quantized formats (GGUF/ggml Q4_0 ... Q6_K): dequantization to f32. */
#ifndef LFL_DEQUANT_H
#define LFL_DEQUANT_H

#include "../tensor.h"

/* ggml type id (as stored in GGUF tensor infos) -> lfl dtype, or -1 */
int lfl_ggml_type_to_dtype(int ggml_type);
/* n elements (a multiple of the block) of src in dtype dt -> dst f32 */
lfl_status lfl_dequantize_rows(lfl_dtype dt, const void *src, int64_t n, float *dst);
/* A new f32 tensor of the same shape (block tensors are contiguous). */
lfl_status lfl_dequantize(lfl_tensor *q, lfl_tensor **out);

#endif
