/* nonzero: the 0-based positions (i64) of the true elements of a 1-D bool
 * mask, in order (torch.nonzero of a vector, flattened). Not differentiable;
 * records nothing. Used to keep only the rows that carry a label. The output's
 * size depends on the data, so the kernel allocates it. */
#include "optable.h"

lfl_status lfl_cpu_nonzero(lfl_tensor *mask, lfl_tensor **out)
{
    int64_t n = mask->shape[0], s = mask->stride[0], count = 0;
    const bool *m = lfl_data(mask);
    for (int64_t i = 0; i < n; i++) count += m[i * s];
    LFL_TRY(lfl_empty(1, &count, LFL_I64, LFL_CPU, out));
    int64_t *o = lfl_data(*out), k = 0;
    for (int64_t i = 0; i < n; i++)
        if (m[i * s]) o[k++] = i;
    return LFL_OK;
}

lfl_status lfl_nonzero(lfl_tensor *mask, lfl_tensor **out)
{
    char b[128];
    if (mask->dtype != LFL_BOOL || mask->ndim != 1)
        return lfl_fail(LFL_ERR_ARG, "nonzero: want a 1-D bool mask, got %s %s", lfl_dtype_name(mask->dtype),
                        lfl_shape_str(mask, b, sizeof b));
    lfl_nonzero_kernel fn;
    LFL_TRY(lfl_dispatch_nonzero(mask->device, NULL, &fn));
    return fn(mask, out);
}
