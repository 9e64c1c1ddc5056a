/* stack: n tensors of one shape joined along a new dim. Each input gets a
 * size-1 dim (a view) and cat joins them, so the gradient of input j is the
 * j-th slice, through cat's and the view's backward. */
#include "dimwise.h"

lfl_status lfl_stack(int n, lfl_tensor **ts, int dim, lfl_tensor **out)
{
    char b1[128], b2[128];
    if (n < 1) return lfl_fail(LFL_ERR_ARG, "stack: needs at least one tensor");
    lfl_tensor *a = ts[0];
    int d;
    if (a->ndim >= LFL_MAX_DIMS) return lfl_fail(LFL_ERR_ARG, "stack: inputs already have %d dims", a->ndim);
    LFL_TRY(lfl_norm_dim("stack", dim, a->ndim + 1, &d));
    for (int j = 1; j < n; j++) {
        if (!lfl_same_shape(ts[j], a))
            return lfl_fail(LFL_ERR_ARG, "stack: tensor %d has shape %s but tensor 1 has %s (all must be equal)",
                            j + 1, lfl_shape_str(ts[j], b1, sizeof b1), lfl_shape_str(a, b2, sizeof b2));
    }
    lfl_tensor **us = calloc((size_t)n, sizeof *us);
    if (!us) return lfl_fail(LFL_ERR_MEM, "stack: out of memory");
    lfl_status st = LFL_OK;
    for (int j = 0; j < n && st == LFL_OK; j++) st = lfl_unsqueeze(ts[j], d, &us[j]);
    if (st == LFL_OK) st = lfl_cat(n, us, d, out);
    for (int j = 0; j < n; j++) lfl_tensor_release(us[j]);
    free(us);
    return st;
}
