/* q4_dequant's CPU kernel: a whole NF4/FP4 tensor (quant/bnb4.h) widened to
 * f32, block by block (the front: lfl_q4_dequantize in core/quant/bnb4.c). */
#include "../iter.h"
#include "../quant/bnb4.h"
#include "optable.h"

lfl_status lfl_cpu_q4_dequant(lfl_tensor *q, lfl_tensor *out)
{
    int64_t nb = q->quant->nblocks;
    float *o = lfl_data(out);
#pragma omp parallel for schedule(static) if (nb * LFL_Q4_BLOCK > LFL_OMP_MIN)
    for (int64_t b = 0; b < nb; b++) lfl_q4_dequant_range(q, b * LFL_Q4_BLOCK, LFL_Q4_BLOCK, o + b * LFL_Q4_BLOCK);
    return LFL_OK;
}
