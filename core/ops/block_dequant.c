/* block_dequant's CPU kernel: a whole contiguous GGUF block tensor widened
 * to f32 by quant/ggml.c's decoders (the dtype's to_f32 path); the front,
 * lfl_block_dequant in core/quant/ggml.c, checks. */
#include "../quant/ggml.h"
#include "optable.h"

lfl_status lfl_cpu_block_dequant(lfl_tensor *q, lfl_tensor *out)
{
    return lfl_dequantize_rows(q->dtype, lfl_data(q), lfl_numel(q), lfl_data(out));
}
