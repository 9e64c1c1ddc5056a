/* What matmul's front promises its kernels (CPU in matmul.c, CUDA in
 * kernels/gemm.cu): how an operand is handed to a GEMM, and where batch bi of
 * each operand starts. Plain C that C++ (nvcc) also compiles. */
#ifndef LFL_OPS_MATMUL_H
#define LFL_OPS_MATMUL_H

#include "../iter.h"

/* How the last two dims of t can be handed to a row-major GEMM: (trans, ld),
 * or false if they cannot (the front then makes a contiguous copy). */
static inline bool lfl_matmul_layout(const lfl_tensor *t, bool *trans, int *ld)
{
    int64_t r = t->shape[t->ndim - 2], c = t->shape[t->ndim - 1];
    int64_t sr = t->stride[t->ndim - 2], sc = t->stride[t->ndim - 1];
    if ((sc == 1 || c == 1) && sr >= (c > 1 ? c : 1)) { *trans = false; *ld = (int)(sr ? sr : 1); return true; }
    if ((sr == 1 || r == 1) && sc >= (r > 1 ? r : 1)) { *trans = true; *ld = (int)(sc ? sc : 1); return true; }
    return false;
}

/* Element strides of a's and b's batch dims over out's (broadcast) batch dims. */
static inline void lfl_matmul_batch_strides(const lfl_tensor *a, const lfl_tensor *b, const lfl_tensor *out,
                                            int64_t *sa, int64_t *sb, int64_t *batches)
{
    lfl_tensor ha = *a, hb = *b;
    int bnd = out->ndim - 2;
    ha.ndim -= 2;
    hb.ndim -= 2;
    lfl_broadcast_strides(&ha, bnd, out->shape, sa);
    lfl_broadcast_strides(&hb, bnd, out->shape, sb);
    int64_t n = 1;
    for (int d = 0; d < bnd; d++) n *= out->shape[d];
    *batches = n;
}

/* Element offsets of batch bi (row-major over out's batch dims) in a and b. */
static inline void lfl_matmul_batch_offsets(const lfl_tensor *out, const int64_t *sa, const int64_t *sb, int64_t bi,
                                            int64_t *oa, int64_t *ob)
{
    int64_t rem = bi, x = 0, y = 0;
    for (int d = out->ndim - 3; d >= 0; d--) {
        int64_t i = rem % out->shape[d];
        rem /= out->shape[d];
        x += i * sa[d];
        y += i * sb[d];
    }
    *oa = x;
    *ob = y;
}

#endif
