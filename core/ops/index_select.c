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

lfl_status lfl_cpu_index_select_backward(lfl_tensor *g, int dim, lfl_tensor *ix, lfl_tensor *z)
{
    const int64_t *pi = lfl_data(ix);
    int64_t outer, len, inner, nidx = lfl_numel(ix);
    lfl_dim_split(z->ndim, z->shape, dim, &outer, &len, &inner);
    int64_t work = outer * nidx * inner;
    if (g->dtype == LFL_F32) INDEX_ADD(float);
    else INDEX_ADD(double);
    return LFL_OK;
}

static lfl_status index_select_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_index_select_backward_kernel fn;
    LFL_TRY(lfl_dispatch_index_select_backward(gout[0]->device, NULL, &fn));
    lfl_tensor *g, *z = NULL;
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_zeros(e->ndim, e->shape, g->dtype, g->device, &z);
    if (st == LFL_OK) st = fn(g, (int)n->iarg[0], n->saved[0], z);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(z); return st; }
    gin[0] = z;
    return LFL_OK;
}

lfl_status lfl_cpu_index_select(lfl_tensor *c, int d, lfl_tensor *ix, lfl_tensor *o)
{
    int64_t outer, len, inner, nidx = lfl_numel(ix);
    lfl_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    LFL_TRY(lfl_index_check("index_select", ix, d, len));
    const int64_t *pi = lfl_data(ix);
    if (inner > 0) {
        size_t run = (size_t)inner * lfl_dtype_size(c->dtype);
        const char *pa = lfl_data(c);
        char *po = lfl_data(o);
        int64_t rows = outer * nidx;
#pragma omp parallel for if (rows * inner > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            int64_t oo = r / nidx, k = r % nidx;
            memcpy(po + (size_t)r * run, pa + (size_t)(oo * len + pi[k]) * run, run);
        }
    }
    return LFL_OK;
}

lfl_status lfl_index_select(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out)
{
    char b[128];
    int d;
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "index_select: %s tensors cannot be indexed", lfl_dtype_name(a->dtype));
    LFL_TRY(lfl_norm_dim("index_select", dim, a->ndim, &d));
    if (index->ndim > 1)
        return lfl_fail(LFL_ERR_ARG, "index_select: index must be 1-D, got %s", lfl_shape_str(index, b, sizeof b));
    lfl_index_select_kernel fn;
    LFL_TRY(lfl_dispatch_index_select(a->device, NULL, &fn));
    lfl_tensor *ix = NULL, *c = NULL, *o = NULL;
    LFL_TRY(lfl_index_i64("index_select", index, a, &ix));
    int64_t oshape[LFL_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) oshape[k] = k == d ? lfl_numel(ix) : a->shape[k];
    lfl_status st = lfl_contiguous_nograd(a, &c);
    if (st == LFL_OK) st = lfl_empty(a->ndim, oshape, a->dtype, a->device, &o);
    if (st == LFL_OK) st = fn(c, d, ix, o);
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(ix); lfl_tensor_release(o); return st; }
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
