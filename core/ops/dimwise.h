/* Helpers shared by the ops that work along one dim (max/min, softmax,
 * index_select, gather, scatter_add, cat, split) and read index tensors:
 * fronts and CPU kernels alike. */
#ifndef LFL_OPS_DIMWISE_H
#define LFL_OPS_DIMWISE_H

#include "../iter.h"
#include "optable.h"

/* A contiguous shape seen as [outer, len, inner] around dim d: element
 * (o, k, i) lives at (o * len + k) * inner + i. */
static inline void lfl_dim_split(int ndim, const int64_t *shape, int d, int64_t *outer, int64_t *len,
                                 int64_t *inner)
{
    int64_t o = 1, in = 1;
    for (int k = 0; k < d; k++) o *= shape[k];
    for (int k = d + 1; k < ndim; k++) in *= shape[k];
    *outer = o;
    *len = ndim ? shape[d] : 1;
    *inner = in;
}

/* lfl_contiguous for an op's private copy of an input: nothing recorded (the
 * op records its own node against the original input). */
static inline lfl_status lfl_contiguous_nograd(lfl_tensor *t, lfl_tensor **out)
{
    bool prev = lfl_set_grad_enabled(false);
    lfl_status st = lfl_contiguous(t, out);
    lfl_set_grad_enabled(prev);
    return st;
}

/* Index tensors are data: 0-based i64 (or i32), never shifted, on the data's
 * device. Returns a contiguous i64 copy (or a new ref to idx when already so)
 * for the kernels, which check the values (lfl_index_check). */
static inline lfl_status lfl_index_i64(const char *op, lfl_tensor *idx, const lfl_tensor *data, lfl_tensor **out)
{
    if (idx->dtype != LFL_I64 && idx->dtype != LFL_I32)
        return lfl_fail(LFL_ERR_ARG, "%s: index must be an i64 or i32 tensor, got %s", op,
                        lfl_dtype_name(idx->dtype));
    if (idx->device != data->device)
        return lfl_fail(LFL_ERR_DEVICE, "%s: the index must be on the same device as the data", op);
    if (idx->dtype == LFL_I64 && lfl_is_contiguous(idx)) { *out = lfl_tensor_retain(idx); return LFL_OK; }
    lfl_tensor *c;
    LFL_TRY(lfl_empty(idx->ndim, idx->shape, LFL_I64, idx->device, &c));
    lfl_status st = lfl_copy_(c, idx);
    if (st) { lfl_tensor_release(c); return st; }
    *out = c;
    return LFL_OK;
}

/* True when some index is outside [0, size); *at is the first such position. */
static inline bool lfl_index_find_bad(const int64_t *ix, int64_t n, int64_t size, int64_t *at)
{
    for (int64_t i = 0; i < n; i++)
        if (ix[i] < 0 || ix[i] >= size) { *at = i; return true; }
    return false;
}

/* CPU kernels: every value of the contiguous i64 index inside [0, size), else
 * the error naming the first bad one (dim is 0-based, printed 1-based). */
static inline lfl_status lfl_index_check(const char *op, const lfl_tensor *ix, int dim, int64_t size)
{
    const int64_t *pi = lfl_data(ix);
    int64_t at;
    if (!lfl_index_find_bad(pi, lfl_numel(ix), size, &at)) return LFL_OK;
    return lfl_fail(LFL_ERR_ARG, "%s: index %lld (element %lld of index, 0-based) is out of range for dim %d "
                                 "of size %lld (indices are 0-based)",
                    op, (long long)pi[at], (long long)at, dim + 1, (long long)size);
}

/* Element offsets of fiber f (the fibers run along dim d; f numbers them in
 * row-major order over the other dims of `shape`) in nt tensors with the given
 * strides. Used where index and data shapes differ (gather, scatter_add). */
static inline void lfl_fiber_offsets(int nd, const int64_t *shape, int d, int64_t f, int nt,
                                     const int64_t *const *strides, int64_t *offs)
{
    for (int t = 0; t < nt; t++) offs[t] = 0;
    for (int k = nd - 1; k >= 0; k--) {
        if (k == d) continue;
        int64_t i = f % shape[k];
        f /= shape[k];
        for (int t = 0; t < nt; t++) offs[t] += i * strides[t][k];
    }
}

/* Contiguous (row-major) strides of a shape. */
static inline void lfl_contig_strides(int nd, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) { st[k] = s; s *= shape[k]; }
}

/* max.c: the front of max, min and argmax (entry: LFL_OP_max, _min or
 * _argmax): values and 0-based i64 positions along dim, either output may be
 * NULL; records a node for values when `record`. */
lfl_status lfl_extremum(const char *op, lfl_op entry, lfl_tensor *a, int dim, bool keepdim, bool record,
                        lfl_tensor **values, lfl_tensor **indices);
/* max.c: their CPU kernel over a contiguous input */
lfl_status lfl_extremum_cpu(lfl_tensor *a, int dim, bool is_min, lfl_tensor *values, lfl_tensor *indices);

/* softmax.c: the stable (log-)softmax CPU kernel along dim d of a contiguous
 * a into y (a's shape). */
lfl_status lfl_softmax_cpu(lfl_tensor *a, int d, bool is_log, lfl_tensor *y);
/* softmax.c: the front of softmax and log_softmax (entry: LFL_OP_softmax or
 * LFL_OP_log_softmax), and of their backward nodes (entry: the _backward one) */
lfl_status lfl_softmax_front(const char *op, lfl_op entry, lfl_tensor *a, int dim, lfl_backward_fn backward,
                             lfl_tensor **out);
lfl_status lfl_softmax_backward_front(lfl_op entry, lfl_node *n, lfl_tensor **gout, lfl_tensor **gin);

/* gather.c / scatter_add.c: index's shape against the data tensors' (same
 * ndim; index no larger than `a` off dim d, and no larger than src anywhere),
 * and the index on a's device. Returns the contiguous i64 index in *ix; the
 * kernels check its values. */
lfl_status lfl_check_scatter_index(const char *op, lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor *src,
                                   lfl_tensor **ix);
/* gather.c: out [ix shape] = a gathered along d (ix from the check above), through
 * the dispatch table; no grad recorded */
lfl_status lfl_gather_raw(lfl_tensor *a, int d, lfl_tensor *ix, lfl_tensor **out);

#define LFL_DIM_BLK 256 /* inner-dim block of the [outer, len, inner] column loops */

#endif
