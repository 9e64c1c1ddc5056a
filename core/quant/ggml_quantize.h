/* Quantization of f32 rows into ggml block formats (Q8_0, Q5_0, Q4_K), the
 * inverse of core/quant/ggml.c: ggml-quants.c's reference quantizers (the
 * _ref functions llama.cpp's quantize uses without an importance matrix), with
 * the same rounding, so a row quantizes to the bytes llama.cpp would write. */
#ifndef LFL_QUANT_GGML_QUANTIZE_H
#define LFL_QUANT_GGML_QUANTIZE_H

#include "../tensor.h"

/* Whether dt has a quantizer here. */
bool lfl_quantize_supported(lfl_dtype dt);
/* n elements of src (a multiple of dt's block) -> dst, lfl_dtype_nbytes(dt, n) bytes */
lfl_status lfl_quantize_rows(lfl_dtype dt, const float *src, int64_t n, void *dst);
/* A new tensor of dtype dt holding t quantized (t any float dtype; its last
 * dimension a multiple of the block, as ggml quantizes along rows). */
lfl_status lfl_quantize(lfl_tensor *t, lfl_dtype dt, lfl_tensor **out);

#endif
