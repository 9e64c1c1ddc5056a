// Strided walks for the elementwise kernels: one or two tensors' strides over
// a common shape, with size-1 dims dropped and adjacent dims merged wherever
// both stride lists allow (a contiguous tensor is one dim, a transposed
// matrix two), so a thread's index arithmetic is as short as the layout
// permits. 32-bit index math where every count and offset fits (integer
// division by a shape is the walk's main cost on a GPU).
#ifndef LFL_KERNELS_STRIDED_CUH
#define LFL_KERNELS_STRIDED_CUH

#include "common.cuh"

struct lfl_walk {
    int nd;
    long long shape[LFL_MAX_DIMS], s0[LFL_MAX_DIMS], s1[LFL_MAX_DIMS];
};

// s1 may be NULL (one tensor: s1 all zero)
static inline void lfl_walk_init(lfl_walk *w, int nd, const int64_t *shape, const int64_t *s0, const int64_t *s1)
{
    w->nd = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1) continue;
        long long a = s0[d], b = s1 ? s1[d] : 0;
        int k = w->nd;
        if (k > 0 && w->s0[k - 1] == a * shape[d] && w->s1[k - 1] == b * shape[d]) {
            w->shape[k - 1] *= shape[d]; // d folds into the dim outside it
            w->s0[k - 1] = a;
            w->s1[k - 1] = b;
            continue;
        }
        w->shape[k] = shape[d];
        w->s0[k] = a;
        w->s1[k] = b;
        w->nd++;
    }
}

// true when n elements and every offset of both operands fit in an int
static inline bool lfl_walk_fits_int(const lfl_walk *w, long long n)
{
    long long m0 = 0, m1 = 0;
    for (int d = 0; d < w->nd; d++) {
        m0 += (w->shape[d] - 1) * (w->s0[d] < 0 ? -w->s0[d] : w->s0[d]);
        m1 += (w->shape[d] - 1) * (w->s1[d] < 0 ? -w->s1[d] : w->s1[d]);
    }
    return n < 2147483647LL && m0 < 2147483647LL && m1 < 2147483647LL;
}

// the offsets of element i (row-major over the walk's shape) in both operands
template <typename I> __device__ static inline void lfl_walk_at(const lfl_walk &w, I i, I *o0, I *o1)
{
    I a = 0, b = 0;
    for (int d = w.nd - 1; d >= 0; d--) {
        I len = (I)w.shape[d], k = i % len;
        i /= len;
        a += k * (I)w.s0[d];
        b += k * (I)w.s1[d];
    }
    *o0 = a;
    *o1 = b;
}

// blocks for a grid-stride loop over n items (capped: each thread loops)
static inline unsigned lfl_walk_blocks(long long n, int threads)
{
    unsigned b = lfl_cuda_blocks(n, threads);
    return b > 65536u ? 65536u : b;
}

#endif
