/* Helpers shared by the ops that work along one dim (max/min, softmax,
 * index_select, gather, scatter_add, cat, split) and read index tensors. */
#ifndef LFL_OPS_DIMWISE_H
#define LFL_OPS_DIMWISE_H

#include "../iter.h"
#include "../ops.h"

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

/* Index tensors are data: 0-based i64 (or i32), never shifted. Returns a
 * contiguous i64 copy (or a new ref to idx when already so) for the loops. */
static inline lfl_status lfl_index_i64(const char *op, lfl_tensor *idx, lfl_tensor **out)
{
    if (idx->dtype != LFL_I64 && idx->dtype != LFL_I32)
        return lfl_fail(LFL_ERR_ARG, "%s: index must be an i64 or i32 tensor, got %s", op,
                        lfl_dtype_name(idx->dtype));
    if (idx->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: CUDA tensors are not supported yet", op);
    if (idx->dtype == LFL_I64 && lfl_is_contiguous(idx)) { *out = lfl_tensor_retain(idx); return LFL_OK; }
    lfl_tensor *c;
    LFL_TRY(lfl_empty(idx->ndim, idx->shape, LFL_I64, LFL_CPU, &c));
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

/* max.c: values and 0-based i64 positions of the max (is_min: min) along dim;
 * either output may be NULL; records a node for values when `record`. */
lfl_status lfl_extremum(const char *op, lfl_tensor *a, int dim, bool keepdim, bool is_min, bool record,
                        lfl_tensor **values, lfl_tensor **indices);

/* softmax.c: the stable (log-)softmax kernel along dim d (already normalised)
 * of a into a new contiguous tensor; no grad recorded. */
lfl_status lfl_softmax_raw(lfl_tensor *a, int d, bool is_log, lfl_tensor **out);

/* gather.c: out[index shape] = a at index along d (a any strides, index
 * contiguous i64 already range-checked); no grad recorded. */
lfl_status lfl_gather_raw(lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor **out);

/* scatter_add.c: dst (contiguous, f32/f64) at index along d += src (same
 * dtype, any strides, at least index's shape); index contiguous i64, checked. */
void lfl_scatter_add_raw(lfl_tensor *dst, int d, lfl_tensor *index, lfl_tensor *src);

/* gather.c / scatter_add.c: index's shape against the data tensors' (same
 * ndim; index no larger than `a` off dim d, and no larger than src anywhere),
 * then every index value inside [0, a.shape[d]). Returns the contiguous i64
 * index in *ix. */
lfl_status lfl_check_scatter_index(const char *op, lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor *src,
                                   lfl_tensor **ix);

#define LFL_DIM_BLK 256 /* inner-dim block of the [outer, len, inner] column loops */

#endif
