/* sum over dims (or all), keepdim; the gradient broadcasts back. */
#include "../iter.h"
#include "optable.h"

static lfl_status sum_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    /* re-insert the reduced dims as size 1, then expand to the input shape */
    int64_t kshape[LFL_MAX_DIMS];
    for (int d = 0; d < e->ndim; d++) kshape[d] = (n->iarg[0] >> d) & 1 ? 1 : e->shape[d];
    lfl_tensor *g = NULL, *k = NULL, *x = NULL;
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_view(g, e->ndim, kshape, &k);
    if (st == LFL_OK) st = lfl_expand(k, e->ndim, e->shape, &x);
    if (st == LFL_OK) st = lfl_contiguous(x, &gin[0]);
    lfl_tensor_release(g);
    lfl_tensor_release(k);
    lfl_tensor_release(x);
    return st;
}

/* Reduces the dims in `mask` of a contiguous input into out (f64 accumulation). */
#define SUM_LOOP(T)                                                                \
    do {                                                                           \
        const T *px = lfl_data(c);                                                 \
        T *po = lfl_data(r);                                                       \
        _Pragma("omp parallel for if (total > LFL_OMP_MIN)")                        \
        for (int64_t oi = 0; oi < nout; oi++) {                                    \
            /* base offset of output element oi over the kept dims */              \
            int64_t rem = oi, base = 0;                                            \
            for (int d = nd - 1; d >= 0; d--)                                      \
                if (!((mask >> d) & 1)) { base += (rem % c->shape[d]) * c->stride[d]; rem /= c->shape[d]; } \
            double acc = 0;                                                        \
            for (int64_t ri = 0; ri < nred; ri++) {                                \
                int64_t rr = ri, off = base;                                       \
                for (int d = nd - 1; d >= 0; d--)                                  \
                    if ((mask >> d) & 1) { off += (rr % c->shape[d]) * c->stride[d]; rr /= c->shape[d]; } \
                acc += px[off];                                                    \
            }                                                                      \
            po[oi] = (T)acc;                                                       \
        }                                                                          \
    } while (0)

lfl_status lfl_cpu_sum(lfl_tensor *c, int64_t mask, lfl_tensor *r)
{
    int nd = c->ndim;
    int64_t nout = lfl_numel(r), total = lfl_numel(c), nred = nout ? total / nout : 0;
    if (mask == ((int64_t)1 << nd) - 1 && c->dtype == LFL_F32) {
        /* full reduction: parallel partial sums in double */
        const float *px = lfl_data(c);
        double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (total > LFL_OMP_MIN)
        for (int64_t i = 0; i < total; i++) acc += px[i];
        *(float *)lfl_data(r) = (float)acc;
    } else if (c->dtype == LFL_F32) {
        SUM_LOOP(float);
    } else {
        SUM_LOOP(double);
    }
    return LFL_OK;
}

lfl_status lfl_sum(lfl_tensor *a, int ndims, const int *dims, bool keepdim, lfl_tensor **out)
{
    LFL_TRY(lfl_check_float("sum", a));
    int nd = a->ndim;
    int64_t mask = 0;
    if (ndims == 0) mask = (1 << nd) - 1;
    for (int i = 0; i < ndims; i++) {
        int d;
        LFL_TRY(lfl_norm_dim("sum", dims[i], nd, &d));
        mask |= 1 << d;
    }
    int64_t oshape[LFL_MAX_DIMS];
    int ond = 0;
    for (int d = 0; d < nd; d++) {
        if ((mask >> d) & 1) {
            if (keepdim) oshape[ond++] = 1;
        } else {
            oshape[ond++] = a->shape[d];
        }
    }
    lfl_sum_kernel fn;
    LFL_TRY(lfl_dispatch_sum(a->device, NULL, &fn));
    lfl_tensor *c, *r = NULL;
    LFL_TRY(lfl_contiguous(a, &c));
    lfl_status st = lfl_empty(ond, oshape, a->dtype, a->device, &r);
    if (st == LFL_OK) st = fn(c, mask, r);
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(r); return st; }
    lfl_node *n = lfl_node_begin("sum", sum_backward, 1, &a, 1);
    if (n) { n->iarg[0] = mask; lfl_node_set_output(n, r, 0); lfl_node_release(n); }
    *out = r;
    return LFL_OK;
}
