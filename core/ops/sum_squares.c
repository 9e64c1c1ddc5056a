/* sum_squares' CPU kernel: the sum of squares of a contiguous f32/f64 tensor
 * in f64, for global-norm clipping (the front: lfl_sum_squares). */
#include "../iter.h"
#include "optable.h"

lfl_status lfl_cpu_sum_squares(lfl_tensor *c, double *out)
{
    int64_t n = lfl_numel(c);
    double acc = 0;
    if (c->dtype == LFL_F32) {
        const float *x = lfl_data(c);
#pragma omp parallel for reduction(+ : acc) if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    } else {
        const double *x = lfl_data(c);
        for (int64_t i = 0; i < n; i++) acc += x[i] * x[i];
    }
    *out = acc;
    return LFL_OK;
}
