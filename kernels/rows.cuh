// Shared by the row-wise NN kernels (norms, rope, gated activations): rows of
// a tensor whose last dim is unit-stride (core/ops/rows.h's lfl_rows_ready)
// located from their row number, the block size of a one-block-per-row
// kernel, the f32/f64 dispatch of ops whose fronts take only those, and the
// second pass of the deterministic column reductions behind the weight
// gradients (partial sums per fixed chunk of rows, then summed in chunk order:
// no atomics, the same bits on every run).
#ifndef LFL_KERNELS_ROWS_CUH
#define LFL_KERNELS_ROWS_CUH

#include <string.h>
#include "common.cuh"

// Where row r starts: r * ld for a contiguous tensor (nd == 0), else decoded
// over the leading dims' shape and strides. Passed to kernels by value.
struct lfl_row_map {
    int nd;
    long long ld, shape[LFL_MAX_DIMS], stride[LFL_MAX_DIMS];
};

static inline lfl_row_map lfl_row_map_of(const lfl_tensor *t)
{
    lfl_row_map m;
    memset(&m, 0, sizeof m);
    m.ld = t->ndim ? t->shape[t->ndim - 1] : 1;
    if (lfl_is_contiguous(t)) return m;
    m.nd = t->ndim - 1;
    for (int d = 0; d < m.nd; d++) {
        m.shape[d] = t->shape[d];
        m.stride[d] = t->stride[d];
    }
    return m;
}

__host__ __device__ static inline long long lfl_row_off(const lfl_row_map &m, long long r)
{
    if (m.nd == 0) return r * m.ld;
    long long off = 0;
    for (int d = m.nd - 1; d >= 0; d--) {
        long long n = m.shape[d];
        off += (r % n) * m.stride[d];
        r /= n;
    }
    return off;
}

// element i's offset, elements numbered row-major over rows of F
__host__ __device__ static inline long long lfl_elem_off(const lfl_row_map &m, long long i, long long F)
{
    if (m.nd == 0) return i;
    long long r = i / F;
    return lfl_row_off(m, r) + (i - r * F);
}

// blocks of 256 for a grid-stride loop over n elements (capped: the loop covers the rest)
static inline unsigned lfl_elem_blocks(long long n) { return lfl_cuda_blocks(n < (1LL << 28) ? n : (1LL << 28), 256); }

// a grid-stride loop of i over [0, n)
#define LFL_GRID_STRIDE(i, n)                                                        \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// threads for one block per row of n elements: about 4 elements per thread,
// a multiple of 32, at most cap (<= 1024)
static inline int lfl_row_threads(long long n, int cap)
{
    long long t = (n + 3) / 4;
    t = (t + 31) / 32 * 32;
    if (t < 32) t = 32;
    return (int)(t > cap ? cap : t);
}

// blocks for a grid-stride loop over rows: one per row up to a cap (the loop
// covers the rest)
static inline unsigned lfl_row_blocks(long long rows)
{
    const long long cap = 1LL << 20;
    return (unsigned)(rows < 1 ? 1 : rows > cap ? cap : rows);
}

// Calls body with T the storage type of dt (f32 or f64), or fails naming op.
#define LFL_F32_F64_SWITCH(dt, op, T, ...)                                                              \
    switch (dt) {                                                                                       \
    case LFL_F32: { typedef float T; __VA_ARGS__; } break;                                              \
    case LFL_F64: { typedef double T; __VA_ARGS__; } break;                                             \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op,         \
                             lfl_dtype_name(dt));                                                       \
    }

// ---- column reductions over rows ------------------------------------------------
// Rows split into chunks of `per` rows (a function of the row and column
// counts only); pass 1 (the op's kernel) writes part[c * H + j], the sum over
// chunk c of column j, one thread per column so the loads are coalesced;
// pass 2 below sums the chunks in order.
struct lfl_col_chunks {
    long long per, n; // rows per chunk, chunks
};

static inline lfl_col_chunks lfl_col_chunks_of(long long rows, long long H, int threads)
{
    // enough blocks of `threads` columns x chunks to fill a large GPU (~2048),
    // while each chunk keeps at least 16 rows
    long long colblocks = (H + threads - 1) / threads;
    long long want = 2048 / (colblocks > 0 ? colblocks : 1);
    long long most = (rows + 15) / 16;
    if (want > most) want = most;
    if (want < 1) want = 1;
    if (want > 65535) want = 65535;
    lfl_col_chunks c;
    c.per = (rows + want - 1) / want;
    if (c.per < 1) c.per = 1;
    c.n = (rows + c.per - 1) / c.per;
    if (c.n < 1) c.n = 1;
    return c;
}

template <typename T> __global__ void lfl_col_chunks_sum(const double *part, long long nch, long long H, T *out)
{
    LFL_GRID_STRIDE(j, H) {
        double s = 0;
        for (long long c = 0; c < nch; c++) s += part[c * H + j];
        out[j] = (T)s;
    }
}

// a [nch, H] f64 scratch tensor on `device` for pass 1
static inline lfl_status lfl_col_scratch(int device, const lfl_col_chunks &c, long long H, lfl_tensor **out)
{
    int64_t shape[2] = {c.n, H};
    return lfl_empty(2, shape, LFL_F64, device, out);
}

#endif
