/* gather: out[index shape] with out[..k..] = a[..index[..k..]..] along dim
 * (0-based i64/i32 index, same ndim as a). Backward scatter-adds the gradient
 * into a's shape (scatter_add.c's kernel). Also holds the index check that
 * gather and scatter_add share. */
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
    LFL_TRY(lfl_index_i64(op, index, ix));
    const int64_t *pi = lfl_data(*ix);
    int64_t at;
    if (lfl_index_find_bad(pi, lfl_numel(*ix), a->shape[d], &at)) {
        int64_t bad = pi[at];
        lfl_tensor_release(*ix);
        *ix = NULL;
        return lfl_fail(LFL_ERR_ARG, "%s: index %lld (element %lld of index, 0-based) is out of range for dim %d "
                                     "of size %lld (indices are 0-based)",
                        op, (long long)bad, (long long)at, d + 1, (long long)a->shape[d]);
    }
    return LFL_OK;
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

lfl_status lfl_gather_raw(lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor **out)
{
    int nd = index->ndim;
    int64_t ist[LFL_MAX_DIMS], fibers = 1, len = index->shape[d];
    lfl_contig_strides(nd, index->shape, ist);
    for (int k = 0; k < nd; k++) if (k != d) fibers *= index->shape[k];
    const int64_t *strides[2] = {a->stride, ist};
    const int64_t *pi = lfl_data(index);
    lfl_tensor *o;
    LFL_TRY(lfl_empty(nd, index->shape, a->dtype, LFL_CPU, &o));
    switch (lfl_dtype_size(a->dtype)) {
    case 8: GATHER_LOOP(uint64_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 2: GATHER_LOOP(uint16_t); break;
    default: GATHER_LOOP(uint8_t); break;
    }
    *out = o;
    return LFL_OK;
}

static lfl_status gather_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_tensor *z;
    LFL_TRY(lfl_zeros(e->ndim, e->shape, gout[0]->dtype, LFL_CPU, &z));
    lfl_scatter_add_raw(z, (int)n->iarg[0], n->saved[0], gout[0]);
    gin[0] = z;
    return LFL_OK;
}

lfl_status lfl_gather(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out)
{
    int d;
    if (a->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "gather: CUDA tensors are not supported yet");
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
