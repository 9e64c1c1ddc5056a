/* affine: a * s + c with scalar s, c (scaling, adding a constant, negation). */
#include "../iter.h"
#include "optable.h"

static lfl_status affine_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_affine(gout[0], n->farg[0], 0.0, &gin[0]);
}

lfl_status lfl_cpu_affine(lfl_tensor *o, double s, double c, lfl_tensor *r)
{
    int64_t n = lfl_numel(o);
    if (o->dtype == LFL_F32) {
        const float *x = lfl_data(o);
        float *y = lfl_data(r), fs = (float)s, fc = (float)c;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * fs + fc;
    } else if (o->dtype == LFL_F64) {
        const double *x = lfl_data(o);
        double *y = lfl_data(r);
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * s + c;
    } else {
        for (int64_t i = 0; i < n; i++) lfl_set(r, i, lfl_get(o, i) * s + c);
    }
    return LFL_OK;
}

lfl_status lfl_affine(lfl_tensor *a, double s, double c, lfl_tensor **out)
{
    if (lfl_dtype_is_block(a->dtype) || a->dtype == LFL_BOOL)
        return lfl_fail(LFL_ERR_ARG, "affine: dtype %s is not supported", lfl_dtype_name(a->dtype));
    lfl_affine_kernel fn;
    LFL_TRY(lfl_dispatch_affine(a->device, NULL, &fn));
    lfl_tensor *o;
    LFL_TRY(lfl_contiguous(a, &o));
    lfl_tensor *r = NULL;
    lfl_status st = lfl_empty_like(o, &r);
    if (st == LFL_OK) st = fn(o, s, c, r);
    lfl_tensor_release(o);
    if (st) { lfl_tensor_release(r); return st; }
    lfl_node *nd = lfl_node_begin("affine", affine_backward, 1, &a, 1);
    if (nd) { nd->farg[0] = s; lfl_node_set_output(nd, r, 0); lfl_node_release(nd); }
    *out = r;
    return LFL_OK;
}
