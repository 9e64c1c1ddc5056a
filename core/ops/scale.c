/* scale's CPU kernel: g *= s in place over a contiguous f32 tensor
 * (clipping's coefficient; the front: lfl_scale_ in core/optim/adamw.c). */
#include "../iter.h"
#include "optable.h"

lfl_status lfl_cpu_scale(lfl_tensor *g, double s)
{
    int64_t n = lfl_numel(g);
    float *x = lfl_data(g), f = (float)s;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) x[i] *= f;
    return LFL_OK;
}
