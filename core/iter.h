/* Strided iteration helpers shared by the CPU loops of copy and the ops. */
#ifndef LFL_ITER_H
#define LFL_ITER_H

#include "tensor.h"

/* Storage offsets (in elements) of the first element of `row` for nt operands
 * whose strides over the common shape are strides[k][0..nd). A row runs along
 * the last dim; rows are numbered in row-major order over the other dims. */
static inline void lfl_row_offsets(int nd, const int64_t *shape, int64_t row, int nt,
                                   int64_t (*strides)[LFL_MAX_DIMS], int64_t *offs)
{
    for (int k = 0; k < nt; k++) offs[k] = 0;
    for (int d = nd - 2; d >= 0; d--) {
        int64_t i = row % shape[d];
        row /= shape[d];
        for (int k = 0; k < nt; k++) offs[k] += i * strides[k][d];
    }
}

/* Strides of t viewed at the broadcast shape (nd, shape): 0 where broadcast. */
static inline void lfl_broadcast_strides(const lfl_tensor *t, int nd, const int64_t *shape, int64_t *st)
{
    int lead = nd - t->ndim;
    for (int d = 0; d < nd; d++) {
        if (d < lead) st[d] = 0;
        else st[d] = (t->shape[d - lead] == 1 && shape[d] != 1) ? 0 : t->stride[d - lead];
    }
}

/* Rows and row length of a shape (a 0-dim tensor is one row of one). */
static inline void lfl_rows(int nd, const int64_t *shape, int64_t *rows, int64_t *len)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    *len = nd ? shape[nd - 1] : 1;
    *rows = *len ? n / *len : 0;
}

#define LFL_OMP_MIN 32768 /* elements below which loops stay single-threaded */

#endif
