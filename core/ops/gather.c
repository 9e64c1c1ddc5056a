/* gather: out[index shape] with out[..k..] = a[..index[..k..]..] along dim
 * (0-based i64/i32 index, same ndim as a). Backward scatter-adds the gradient
 * into a's shape (scatter_add's kernel). Also holds the index check that
 * gather and scatter_add share, and lfl_gather_raw, scatter_add's backward. */
#include "dimwise.h"

lfl_status lfl_check_scatter_index(const char *op, lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor *src,
                                   lfl_tensor **ix)
{
    char b1[128], b2[128], b3[128];
    if (index->ndim != a->ndim || (src && src->ndim != a->ndim))
        return lfl_fail(LFL_ERR_ARG, "%s: index %s%s%s must have as many dims as the input %s", op,
                        lfl_shape_str(index, b1, sizeof b1), src ? " and src " : "",
                        src ? lfl_shape_str(src, b3, sizeof b3) : "", lfl_shape_str(a, b2, sizeof b2));
    for (int k = 0; k < a->ndim; k++) {
        if (k != d && index->shape[k] > a->shape[k])
            return lfl_fail(LFL_ERR_ARG, "%s: index %s is larger than the input %s at dim %d (only dim %d may differ)",
                            op, lfl_shape_str(index, b1, sizeof b1), lfl_shape_str(a, b2, sizeof b2), k + 1, d + 1);
        if (src && index->shape[k] > src->shape[k])
            return lfl_fail(LFL_ERR_ARG, "%s: index %s is larger than src %s at dim %d", op,
                            lfl_shape_str(index, b1, sizeof b1), lfl_shape_str(src, b2, sizeof b2), k + 1);
    }
    return lfl_index_i64(op, index, a, ix);
}

/* Copies by element size: gather moves elements, whatever their type. */
#define GATHER_LOOP(T)                                                              \
    do {                                                                            \
        const T *pa = lfl_data(a);                                                  \
        T *po = lfl_data(o);                                                        \
        _Pragma("omp parallel for if (fibers * len > LFL_OMP_MIN)")                 \
        for (int64_t f = 0; f < fibers; f++) {                                      \
            int64_t off[2];                                                         \
            lfl_fiber_offsets(nd, index->shape, d, f, 2, strides, off);             \
            for (int64_t k = 0; k < len; k++) {                                     \
                int64_t j = off[1] + k * ist[d];                                    \
                po[j] = pa[off[0] + pi[j] * a->stride[d]];                          \
            }                                                                       \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_gather(lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor *o)
{
    LFL_TRY(lfl_index_check("gather", index, d, a->shape[d]));
    int nd = index->ndim;
    int64_t ist[LFL_MAX_DIMS], fibers = 1, len = index->shape[d];
    lfl_contig_strides(nd, index->shape, ist);
    for (int k = 0; k < nd; k++) if (k != d) fibers *= index->shape[k];
    const int64_t *strides[2] = {a->stride, ist};
    const int64_t *pi = lfl_data(index);
    switch (lfl_dtype_size(a->dtype)) {
    case 8: GATHER_LOOP(uint64_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 2: GATHER_LOOP(uint16_t); break;
    default: GATHER_LOOP(uint8_t); break;
    }
    return LFL_OK;
}

/* out [index shape] = a gathered along d; ix contiguous i64; no grad */
lfl_status lfl_gather_raw(lfl_tensor *a, int d, lfl_tensor *ix, lfl_tensor **out)
{
    lfl_gather_kernel fn;
    LFL_TRY(lfl_dispatch_gather(a->device, NULL, &fn));
    lfl_tensor *o;
    LFL_TRY(lfl_empty(ix->ndim, ix->shape, a->dtype, a->device, &o));
    lfl_status st = fn(a, d, ix, o);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}

/* scatter_add's kernel into zeros of the input's shape */
static lfl_status gather_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_scatter_add_kernel fn;
    LFL_TRY(lfl_dispatch_scatter_add(gout[0]->device, "gather backward", &fn));
    lfl_tensor *z;
    LFL_TRY(lfl_zeros(e->ndim, e->shape, gout[0]->dtype, gout[0]->device, &z));
    lfl_status st = fn(z, (int)n->iarg[0], n->saved[0], gout[0]);
    if (st) { lfl_tensor_release(z); return st; }
    gin[0] = z;
    return LFL_OK;
}

lfl_status lfl_gather(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out)
{
    int d;
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "gather: %s tensors cannot be indexed", lfl_dtype_name(a->dtype));
    LFL_TRY(lfl_norm_dim("gather", dim, a->ndim, &d));
    lfl_tensor *ix;
    LFL_TRY(lfl_check_scatter_index("gather", a, d, index, NULL, &ix));
    lfl_status st = lfl_gather_raw(a, d, ix, out);
    if (st) { lfl_tensor_release(ix); return st; }
    if (a->dtype == LFL_F32 || a->dtype == LFL_F64) {
        lfl_node *n = lfl_node_begin("gather", gather_backward, 1, &a, 1);
        if (n) {
            n->iarg[0] = d;
            lfl_node_save(n, ix);
            lfl_node_set_output(n, *out, 0);
            lfl_node_release(n);
        }
    }
    lfl_tensor_release(ix);
    return LFL_OK;
}
