/* index_select: pick slices of `a` along dim by a 1-D 0-based index (i64 or
 * i32; repeats allowed). Backward index-adds the gradient slices back; the
 * threads split the non-indexed positions, so repeated indices never race. */
#include "dimwise.h"

#define INDEX_ADD(T)                                                                \
    do {                                                                            \
        const T *pg = lfl_data(g);                                                  \
        T *pz = lfl_data(z);                                                        \
        int64_t nb = (inner + LFL_DIM_BLK - 1) / LFL_DIM_BLK;                       \
        _Pragma("omp parallel for collapse(2) if (work > LFL_OMP_MIN)")             \
        for (int64_t o = 0; o < outer; o++)                                         \
            for (int64_t ib = 0; ib < nb; ib++) {                                   \
                int64_t i0 = ib * LFL_DIM_BLK;                                      \
                int64_t i1 = i0 + LFL_DIM_BLK < inner ? i0 + LFL_DIM_BLK : inner;   \
                for (int64_t k = 0; k < nidx; k++) {                                \
                    T *dst = pz + (o * len + pi[k]) * inner;                        \
                    const T *src = pg + (o * nidx + k) * inner;                     \
                    for (int64_t i = i0; i < i1; i++) dst[i] += src[i];             \
                }                                                                   \
            }                                                                       \
    } while (0)

static lfl_status index_select_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_tensor *ix = n->saved[0], *g, *z;
    const int64_t *pi = lfl_data(ix);
    int64_t outer, len, inner, nidx = lfl_numel(ix);
    lfl_dim_split(e->ndim, e->shape, (int)n->iarg[0], &outer, &len, &inner);
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_zeros(e->ndim, e->shape, g->dtype, LFL_CPU, &z);
    if (st) { lfl_tensor_release(g); return st; }
    int64_t work = outer * nidx * inner;
    if (g->dtype == LFL_F32) INDEX_ADD(float);
    else INDEX_ADD(double);
    lfl_tensor_release(g);
    gin[0] = z;
    return LFL_OK;
}

lfl_status lfl_index_select(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out)
{
    char b[128];
    int d;
    if (a->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "index_select: CUDA tensors are not supported yet");
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "index_select: %s tensors cannot be indexed", lfl_dtype_name(a->dtype));
    LFL_TRY(lfl_norm_dim("index_select", dim, a->ndim, &d));
    if (index->ndim > 1)
        return lfl_fail(LFL_ERR_ARG, "index_select: index must be 1-D, got %s", lfl_shape_str(index, b, sizeof b));
    lfl_tensor *ix = NULL, *c = NULL, *o = NULL;
    LFL_TRY(lfl_index_i64("index_select", index, &ix));
    const int64_t *pi = lfl_data(ix);
    int64_t outer, len, inner, nidx = lfl_numel(ix), at;
    lfl_dim_split(a->ndim, a->shape, d, &outer, &len, &inner);
    if (lfl_index_find_bad(pi, nidx, len, &at)) {
        int64_t bad = pi[at];
        lfl_tensor_release(ix);
        return lfl_fail(LFL_ERR_ARG, "index_select: index %lld (element %lld of index, 0-based) is out of range "
                                     "for dim %d of size %lld (indices are 0-based)",
                        (long long)bad, (long long)at, d + 1, (long long)len);
    }
    int64_t oshape[LFL_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) oshape[k] = k == d ? nidx : a->shape[k];
    lfl_status st = lfl_contiguous_nograd(a, &c);
    if (st == LFL_OK) st = lfl_empty(a->ndim, oshape, a->dtype, LFL_CPU, &o);
    if (st == LFL_OK && inner > 0) {
        size_t run = (size_t)inner * lfl_dtype_size(a->dtype);
        const char *pa = lfl_data(c);
        char *po = lfl_data(o);
        int64_t rows = outer * nidx;
#pragma omp parallel for if (rows * inner > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            int64_t oo = r / nidx, k = r % nidx;
            memcpy(po + (size_t)r * run, pa + (size_t)(oo * len + pi[k]) * run, run);
        }
    }
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(ix); return st; }
    if (a->dtype == LFL_F32 || a->dtype == LFL_F64) {
        lfl_node *n = lfl_node_begin("index_select", index_select_backward, 1, &a, 1);
        if (n) {
            n->iarg[0] = d;
            lfl_node_save(n, ix);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
    }
    lfl_tensor_release(ix);
    *out = o;
    return LFL_OK;
}
