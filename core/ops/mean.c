/* mean over dims (or all): sum scaled by 1/count, so the gradient is sum's. */
#include <math.h>
#include "../ops.h"

lfl_status lfl_mean(lfl_tensor *a, int ndims, const int *dims, bool keepdim, lfl_tensor **out)
{
    int64_t count = 1;
    if (ndims == 0) {
        count = lfl_numel(a);
    } else {
        for (int i = 0; i < ndims; i++) {
            int d;
            LFL_TRY(lfl_norm_dim("mean", dims[i], a->ndim, &d));
            count *= a->shape[d];
        }
    }
    lfl_tensor *s;
    LFL_TRY(lfl_sum(a, ndims, dims, keepdim, &s));
    lfl_status st = lfl_affine(s, count ? 1.0 / (double)count : NAN, 0, out);
    lfl_tensor_release(s);
    return st;
}
