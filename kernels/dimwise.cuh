// What the reduction and indexing kernels share (sum, max/min/argmax,
// softmax, embedding, index_select, gather, scatter_add, cat): the
// [outer, len, inner] view of a dim, a f32/f64 dtype switch, device scratch
// memory, the row plan of the row-wise copies, warp/block row reductions,
// and the index range check (a device flag the host reads back and turns
// into the CPU kernel's message).
#ifndef LFL_KERNELS_DIMWISE_CUH
#define LFL_KERNELS_DIMWISE_CUH

#include "common.cuh"

// a contiguous shape seen as [outer, len, inner] around dim d (dimwise.h's lfl_dim_split)
static inline void lfl_cuda_dim_split(int ndim, const int64_t *shape, int d, long long *outer, long long *len,
                                      long long *inner)
{
    long long o = 1, in = 1;
    for (int k = 0; k < d; k++) o *= shape[k];
    for (int k = d + 1; k < ndim; k++) in *= shape[k];
    *outer = o;
    *len = ndim ? shape[d] : 1;
    *inner = in;
}

// Runs body with T = float or double for the dtypes the CPU kernels of these
// ops take (f32, f64); fails naming the op for any other.
#define LFL_F32_F64_SWITCH(dt, op, T, ...)                                                      \
    switch (dt) {                                                                               \
    case LFL_F32: { typedef float T; __VA_ARGS__; } break;                                      \
    case LFL_F64: { typedef double T; __VA_ARGS__; } break;                                     \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op, \
                             lfl_dtype_name(dt));                                               \
    }

// Grid of at most `cap` blocks of `threads` covering n items (kernels
// grid-stride past it). The emulator caps every grid at a few blocks, so the
// tests' small tensors run the loops a GPU runs only on very large ones.
#ifdef LFL_CUDA_EMU
#define LFL_DIM_GRID_CAP 5u
#else
#define LFL_DIM_GRID_CAP 0x7fffffffu
#endif
static inline unsigned lfl_cuda_grid(long long n, int threads, unsigned cap)
{
    unsigned b = lfl_cuda_blocks(n, threads);
    if (cap > LFL_DIM_GRID_CAP) cap = LFL_DIM_GRID_CAP;
    return b < cap ? b : cap;
}

// Device scratch of n bytes on `device`: a u8 tensor from the caching
// allocator (lfl_tensor_release gives it back; work queued on the stream
// before a later reuse finishes first).
static inline lfl_status lfl_cuda_scratch(int device, long long nbytes, lfl_tensor **t)
{
    int64_t n = nbytes > 0 ? nbytes : 1;
    return lfl_empty(1, &n, LFL_U8, device, t);
}

// ---- rows of a copy ---------------------------------------------------------------
// Row-wise copies (embedding, index_select, cat) spread rows of `cols` elements
// over blocks of 256 threads: 2^shift threads a row (the row length rounded
// up to a power of two, at most 256), 256 >> shift rows a block, so a warp
// moves consecutive elements (of one row, or of neighbouring short rows) and
// no thread divides to find its element.
#define LFL_ROW_THREADS 256

struct lfl_row_plan {
    int shift;
    unsigned blocks;
};

static inline lfl_row_plan lfl_rows_plan(long long rows, long long cols)
{
    lfl_row_plan p;
    p.shift = 0;
    while (p.shift < 8 && (1LL << p.shift) < cols) p.shift++;
    p.blocks = lfl_cuda_grid(rows, LFL_ROW_THREADS >> p.shift, 65535);
    return p;
}

// in a kernel launched with a plan: the first row of this thread, the row step, the lane in the row
#define LFL_ROW_LOOP(r, rows, shift)                                                                     \
    for (long long r = (long long)blockIdx.x * (blockDim.x >> (shift)) + (threadIdx.x >> (shift)); r < (rows); \
         r += (long long)gridDim.x * (blockDim.x >> (shift)))
#define LFL_ROW_LANE(shift) ((long long)(threadIdx.x & ((1u << (shift)) - 1u)))

// ---- row reductions -------------------------------------------------------------
// Rows of TPO threads: a warp (TPO 32) or the whole block (TPO = blockDim.x);
// every thread of the row calls, every thread gets the result. scratch: 32
// values of shared memory (unused for a warp).
template <int TPO, typename T> __device__ static inline T lfl_row_sum(T v, T *scratch)
{
    return TPO == 32 ? lfl_warp_sum(v) : lfl_block_sum(v, scratch);
}
template <int TPO, typename T> __device__ static inline T lfl_row_max(T v, T *scratch)
{
    return TPO == 32 ? lfl_warp_max(v) : lfl_block_max(v, scratch);
}

__device__ static inline float lfl_dev_exp(float x) { return expf(x); }
__device__ static inline double lfl_dev_exp(double x) { return exp(x); }
__device__ static inline float lfl_dev_log(float x) { return logf(x); }
__device__ static inline double lfl_dev_log(double x) { return log(x); }

// ---- index range checks -------------------------------------------------------
// A kernel that finds index[pos] outside [0, size) records the lowest such
// pos in a device flag (all ones: none found). The host copies the flag back
// after the launch (the one synchronization these ops need) and, for a bad
// index, the value at that position, for the CPU kernel's message.
#define LFL_IX_NONE 0xffffffffffffffffull

__device__ static inline void lfl_ix_bad(unsigned long long *flag, long long pos)
{
    atomicMin(flag, (unsigned long long)pos);
}

struct lfl_ix_flag {
    lfl_tensor *t;
    unsigned long long *p;
};

static inline lfl_status lfl_ix_begin(int device, const char *op, lfl_ix_flag *f)
{
    f->t = NULL;
    f->p = NULL;
    LFL_TRY(lfl_cuda_scratch(device, sizeof(unsigned long long), &f->t));
    f->p = (unsigned long long *)lfl_data(f->t);
    cudaError_t e = cudaMemsetAsync(f->p, 0xff, sizeof(unsigned long long), lfl_cuda_stream());
    if (e != cudaSuccess) {
        lfl_tensor_release(f->t);
        f->t = NULL;
        return lfl_fail(LFL_ERR_DEVICE, "%s: CUDA: %s", op, cudaGetErrorString(e));
    }
    return LFL_OK;
}

// After the launch: *at = -1 when every index was in range, else the first
// bad position and *value the index there (ix: the contiguous i64 index on
// the device). Frees the flag.
static inline lfl_status lfl_ix_end(const char *op, lfl_ix_flag *f, const int64_t *ix, long long *at,
                                    long long *value)
{
    unsigned long long pos = LFL_IX_NONE;
    int64_t v = 0;
    cudaError_t e = cudaMemcpy(&pos, f->p, sizeof pos, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && pos != LFL_IX_NONE) e = cudaMemcpy(&v, ix + pos, sizeof v, cudaMemcpyDeviceToHost);
    lfl_tensor_release(f->t);
    f->t = NULL;
    if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "%s: CUDA: %s", op, cudaGetErrorString(e));
    *at = pos == LFL_IX_NONE ? -1 : (long long)pos;
    *value = v;
    return LFL_OK;
}

// lfl_ix_end, then dimwise.h's lfl_index_check message for a bad index
static inline lfl_status lfl_ix_end_dim(const char *op, lfl_ix_flag *f, const int64_t *ix, int dim, long long size)
{
    long long at = -1, v = 0;
    LFL_TRY(lfl_ix_end(op, f, ix, &at, &v));
    if (at < 0) return LFL_OK;
    return lfl_fail(LFL_ERR_ARG, "%s: index %lld (element %lld of index, 0-based) is out of range for dim %d "
                                 "of size %lld (indices are 0-based)",
                    op, v, at, dim + 1, size);
}

// Checks n indices against [0, size) on their own: for launches whose data
// work does not visit every index (an empty slice still has its indices checked).
// (a template only so that files which never launch it get no unused-function warning)
template <typename I>
__global__ void lfl_ix_check_kernel(const I *ix, long long n, long long size, unsigned long long *flag)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        if (ix[i] < 0 || ix[i] >= size) lfl_ix_bad(flag, i);
}

static inline void lfl_ix_check_launch(const int64_t *ix, long long n, long long size, unsigned long long *flag)
{
    if (n > 0) LFL_LAUNCH(lfl_cuda_grid(n, 256, 4096), 256, 0, lfl_ix_check_kernel<int64_t>)(ix, n, size, flag);
}

// ---- shared host entries (the CPU's shared kernels' CUDA twins) ---------------
// max.cu: max, min and argmax over a contiguous input
lfl_status lfl_cuda_extremum(lfl_tensor *a, int dim, bool is_min, lfl_tensor *values, lfl_tensor *indices);
// softmax.cu: softmax or log_softmax along dim of a contiguous input
lfl_status lfl_cuda_softmax_fwd(lfl_tensor *a, int dim, bool is_log, lfl_tensor *y);

#endif
