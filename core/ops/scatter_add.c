/* scatter_add: out = a with src[..k..] added at a[..index[..k..]..] along dim
 * (0-based i64/i32 index; src at least index's shape, only its index-shaped
 * corner is used). Backward: grad a = g; grad src = gather(g, dim, index),
 * zero outside that corner. Threads split the fibers along dim: two fibers
 * differ off dim, so they never write the same element. */
#include "dimwise.h"

#define SCATTER_LOOP(T)                                                             \
    do {                                                                            \
        const T *ps = lfl_data(src);                                                \
        T *pd = lfl_data(dst);                                                      \
        _Pragma("omp parallel for if (fibers * len > LFL_OMP_MIN)")                 \
        for (int64_t f = 0; f < fibers; f++) {                                      \
            int64_t off[3];                                                         \
            lfl_fiber_offsets(nd, index->shape, d, f, 3, strides, off);             \
            for (int64_t k = 0; k < len; k++) {                                     \
                int64_t j = off[2] + k * ist[d];                                    \
                pd[off[0] + pi[j] * dst->stride[d]] += ps[off[1] + k * src->stride[d]]; \
            }                                                                       \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_scatter_add(lfl_tensor *dst, int d, lfl_tensor *index, lfl_tensor *src)
{
    LFL_TRY(lfl_index_check("scatter_add", index, d, dst->shape[d]));
    int nd = index->ndim;
    int64_t ist[LFL_MAX_DIMS], fibers = 1, len = index->shape[d];
    lfl_contig_strides(nd, index->shape, ist);
    for (int k = 0; k < nd; k++) if (k != d) fibers *= index->shape[k];
    const int64_t *strides[3] = {dst->stride, src->stride, ist};
    const int64_t *pi = lfl_data(index);
    if (dst->dtype == LFL_F32) SCATTER_LOOP(float);
    else SCATTER_LOOP(double);
    return LFL_OK;
}

static lfl_status scatter_add_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *ix = n->saved[0];
    int d = (int)n->iarg[0];
    if (lfl_node_needs(n, 0)) gin[0] = lfl_tensor_retain(gout[0]);
    if (!lfl_node_needs(n, 1)) return LFL_OK;
    const lfl_edge *e = &n->in[1];
    lfl_tensor *gs;
    LFL_TRY(lfl_gather_raw(gout[0], d, ix, &gs));
    bool same = e->ndim == ix->ndim;
    for (int k = 0; same && k < e->ndim; k++) same = e->shape[k] == ix->shape[k];
    if (same) { gin[1] = gs; return LFL_OK; }
    /* src larger than index: its gradient is zero outside the used corner */
    lfl_tensor *z, *corner = NULL;
    lfl_status st = lfl_zeros(e->ndim, e->shape, gs->dtype, gs->device, &z);
    if (st == LFL_OK) {
        corner = lfl_tensor_retain(z);
        for (int k = 0; k < e->ndim && st == LFL_OK; k++) {
            lfl_tensor *v;
            st = lfl_narrow(corner, k, 0, ix->shape[k], &v);
            if (st == LFL_OK) { lfl_tensor_release(corner); corner = v; }
        }
        if (st == LFL_OK) st = lfl_copy_(corner, gs);
    }
    lfl_tensor_release(corner);
    lfl_tensor_release(gs);
    if (st) { lfl_tensor_release(z); return st; }
    gin[1] = z;
    return LFL_OK;
}

lfl_status lfl_scatter_add(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor *src, lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_check_float("scatter_add", a));
    LFL_TRY(lfl_check_same_dtype("scatter_add", a, src));
    LFL_TRY(lfl_check_same_device("scatter_add", a, src));
    LFL_TRY(lfl_norm_dim("scatter_add", dim, a->ndim, &d));
    lfl_scatter_add_kernel fn;
    LFL_TRY(lfl_dispatch_scatter_add(a->device, NULL, &fn));
    lfl_tensor *ix, *o;
    LFL_TRY(lfl_check_scatter_index("scatter_add", a, d, index, src, &ix));
    /* a fresh contiguous copy of a (lfl_copy_ records nothing) */
    lfl_status st = lfl_empty(a->ndim, a->shape, a->dtype, a->device, &o);
    if (st == LFL_OK) {
        st = lfl_copy_(o, a);
        if (st == LFL_OK) st = fn(o, d, ix, src);
        if (st) lfl_tensor_release(o);
    }
    if (st) { lfl_tensor_release(ix); return st; }
    lfl_tensor *in[2] = {a, src};
    lfl_node *n = lfl_node_begin("scatter_add", scatter_add_backward, 2, in, 1);
    if (n) {
        n->iarg[0] = d;
        lfl_node_save(n, ix);
        lfl_node_set_output(n, o, 0);
        lfl_node_release(n);
    }
    lfl_tensor_release(ix);
    *out = o;
    return LFL_OK;
}
