// Strided walks for the elementwise kernels: up to three tensors' strides over
// a common shape, with size-1 dims dropped and adjacent dims merged wherever
// every stride list allows (a contiguous tensor is one dim, a transposed
// matrix two), so a thread's index arithmetic is as short as the layout
// permits. 32-bit index math where every count and offset fits (integer
// division by a shape is the walk's main cost on a GPU).
#ifndef LFL_KERNELS_STRIDED_CUH
#define LFL_KERNELS_STRIDED_CUH

#include "common.cuh"

struct lfl_walk {
    int nd, k; // dims after merging, stride lists in use
    long long shape[LFL_MAX_DIMS], st[3][LFL_MAX_DIMS];
};

// k stride lists st[0..k) over (nd, shape); a walk of nothing but size-1 dims
// is one dim of one element with unit strides
static inline void lfl_walk_init(lfl_walk *w, int nd, const int64_t *shape, int k, const int64_t *const *st)
{
    w->nd = 0;
    w->k = k;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1) continue;
        int m = w->nd;
        bool merge = m > 0;
        for (int j = 0; j < k && merge; j++) merge = w->st[j][m - 1] == st[j][d] * shape[d];
        if (merge) { // d folds into the dim outside it
            w->shape[m - 1] *= shape[d];
            for (int j = 0; j < k; j++) w->st[j][m - 1] = st[j][d];
            continue;
        }
        w->shape[m] = shape[d];
        for (int j = 0; j < k; j++) w->st[j][m] = st[j][d];
        w->nd++;
    }
    if (w->nd == 0) {
        w->nd = 1;
        w->shape[0] = 1;
        for (int j = 0; j < k; j++) w->st[j][0] = 1;
    }
    for (int j = k; j < 3; j++)
        for (int d = 0; d < w->nd; d++) w->st[j][d] = 0;
}

// strides of t at the broadcast shape (nd, shape) (0 where broadcast)
static inline void lfl_walk_bstrides(const lfl_tensor *t, int nd, const int64_t *shape, int64_t *st)
{
    int lead = nd - t->ndim;
    for (int d = 0; d < nd; d++)
        st[d] = d < lead || (t->shape[d - lead] == 1 && shape[d] != 1) ? 0 : t->stride[d - lead];
}

// list j is unit-stride over all of the walk (a contiguous operand)
static inline bool lfl_walk_flat(const lfl_walk *w, int j) { return w->nd == 1 && w->st[j][0] == 1; }

// true when the count and every offset of every list fit in an int (the
// count with room for a grid-stride step past it: i + step must not overflow)
static inline bool lfl_walk_fits_int(const lfl_walk *w, long long n)
{
    if (n >= 2147483647LL - 65536LL * 1024) return false;
    for (int j = 0; j < w->k; j++) {
        long long m = 0;
        for (int d = 0; d < w->nd; d++) m += (w->shape[d] - 1) * (w->st[j][d] < 0 ? -w->st[j][d] : w->st[j][d]);
        if (m >= 2147483647LL) return false;
    }
    return true;
}

// the offsets of element i (row-major over the walk's shape) in lists 0..K)
template <int K, typename I> __device__ static inline void lfl_walk_at(const lfl_walk &w, I i, I *o)
{
    for (int j = 0; j < K; j++) o[j] = 0;
    for (int d = w.nd - 1; d >= 0; d--) {
        I len = (I)w.shape[d], q = i / len, r = i - q * len;
        i = q;
        for (int j = 0; j < K; j++) o[j] += r * (I)w.st[j][d];
    }
}

// Grid caps: past them each thread loops. The emulator's are small so that
// the tests' tensors run the loops a GPU runs only on very large ones.
#ifdef LFL_CUDA_EMU
static const unsigned lfl_walk_max_blocks = 7, lfl_walk_max_z = 3;
#else
static const unsigned lfl_walk_max_blocks = 65536, lfl_walk_max_z = 65535;
#endif

// blocks for a grid-stride loop over n items
static inline unsigned lfl_walk_blocks(long long n, int threads)
{
    long long b = (n + threads - 1) / threads;
    return b < 1 ? 1u : b > (long long)lfl_walk_max_blocks ? lfl_walk_max_blocks : (unsigned)b;
}

// grid-stride loop over [0, n) in index type I
#define LFL_GRID_LOOP(I, i, n) \
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < (n); i += (I)gridDim.x * (I)blockDim.x)

#endif
