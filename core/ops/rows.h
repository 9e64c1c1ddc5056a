/* Row access shared by the row-wise NN ops (norms, rope, gated activations):
 * a tensor whose last dim has stride 1 is walked row by row in place, whatever
 * the strides of the other dims (so q/k views from a transpose or a split of a
 * fused projection need no copy); anything else is copied once. Also the fixed
 * chunking behind their deterministic weight-gradient reductions. */
#ifndef LFL_OPS_ROWS_H
#define LFL_OPS_ROWS_H

#include <math.h>
#include <stdlib.h>
#include "../iter.h"
#include "optable.h"

/* A new reference to t when its last dim is unit-stride (or t has < 2
 * elements in it), else to a contiguous copy. */
static inline lfl_status lfl_rows_ready(lfl_tensor *t, lfl_tensor **out)
{
    if (t->ndim == 0 || t->stride[t->ndim - 1] == 1 || t->shape[t->ndim - 1] <= 1) {
        *out = lfl_tensor_retain(t);
        return LFL_OK;
    }
    return lfl_contiguous(t, out);
}

/* Element offset of the first element of `row` (rows numbered row-major over
 * all dims but the last) in a tensor prepared by lfl_rows_ready. */
static inline int64_t lfl_row_offset(const lfl_tensor *t, int64_t row)
{
    int64_t off = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (row % n) * t->stride[d];
        row /= n;
    }
    return off;
}

/* Rows are split into a number of chunks that depends on the row count only,
 * so per-chunk partial sums reduced in chunk order give the same bits on any
 * thread count. */
#define LFL_ROW_CHUNKS 64
static inline int64_t lfl_row_chunks(int64_t rows)
{
    return rows < LFL_ROW_CHUNKS ? (rows > 0 ? rows : 1) : LFL_ROW_CHUNKS;
}

/* Checks shared by the NN ops: f32 or f64, and (ref not NULL) on ref's device. */
static inline lfl_status lfl_nn_check(const char *op, const lfl_tensor *t, const char *what, const lfl_tensor *ref)
{
    if (ref && t->device != ref->device)
        return lfl_fail(LFL_ERR_DEVICE, "%s: %s is on another device than the input", op, what);
    if (t->dtype != LFL_F32 && t->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: %s has dtype %s, expected f32 or f64", op, what, lfl_dtype_name(t->dtype));
    return LFL_OK;
}

#endif
