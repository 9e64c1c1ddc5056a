// max along one dim on CUDA: values and 0-based i64 positions with the CPU
// kernel's choice (the first of equal values; the first NaN wins and stays).
// Holds the kernel min.cu and argmax.cu share (lfl_cuda_extremum) and
// max_backward (min's too).
//
// Each thread scans its share of the dim in increasing position with the
// CPU's strict comparison, so it keeps its own first best; the shares are
// then combined with a preference that is a total order (NaN first, then the
// larger value, then the lower position), which picks the element the CPU's
// single scan picks whatever the combining order. Layouts: dim innermost ->
// a warp or a block per row; otherwise 32 consecutive columns per block row
// and 8 rows of threads splitting the dim.
#include "dimwise.cuh"

#define EXT_NONE 0x7fffffffffffffffll // a thread that saw no element

// does candidate (a, ia) win over (b, ib)?
template <typename T> __device__ static inline bool ext_wins(T a, long long ia, T b, long long ib, bool is_min)
{
    if (ib == EXT_NONE) return ia != EXT_NONE;
    if (ia == EXT_NONE) return false;
    bool an = a != a, bn = b != b;
    if (an || bn) return an && (!bn || ia < ib);
    if (is_min ? a < b : a > b) return true;
    return a == b && ia < ib;
}

// the CPU's step: v replaces the best so far (strict, a NaN once)
template <typename T> __device__ static inline bool ext_better(T v, T b, bool is_min)
{
    return (is_min ? v < b : v > b) || (v != v && b == b);
}

// scans positions first, first + step, ... < len of x[k * stride]
template <typename T>
__device__ static inline void ext_scan(const T *x, long long stride, long long first, long long len, long long step,
                                       bool is_min, T *best, long long *bi)
{
    *bi = EXT_NONE;
    if (first >= len) return;
    T b = x[first * stride];
    long long i = first;
    for (long long k = first + step; k < len; k += step) {
        T v = x[k * stride];
        if (ext_better(v, b, is_min)) { b = v; i = k; }
    }
    *best = b;
    *bi = i;
}

template <typename T>
__device__ static inline void ext_take(T *b, long long *bi, T v, long long vi, bool is_min)
{
    if (ext_wins(v, vi, *b, *bi, is_min)) { *b = v; *bi = vi; }
}

// dim innermost: TPO threads (a warp, or the whole block of 256) per row
template <typename T, int TPO>
__global__ void ext_rows_kernel(const T *x, T *vals, int64_t *idx, long long rows, long long len, bool is_min)
{
    __shared__ T sv[32];
    __shared__ long long si[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    for (long long rb = (long long)blockIdx.x * groups; rb < rows; rb += (long long)gridDim.x * groups) {
        long long r = rb + group; // uniform across the TPO threads of the row
        T b = T();
        long long bi = EXT_NONE;
        if (r < rows) ext_scan(x + r * len, 1, lane, len, TPO, is_min, &b, &bi);
        for (int o = 16; o > 0; o >>= 1) {
            T v = __shfl_xor_sync(0xffffffffu, b, o);
            long long vi = __shfl_xor_sync(0xffffffffu, bi, o);
            ext_take(&b, &bi, v, vi, is_min);
        }
        if (TPO > 32) {
            int w = threadIdx.x >> 5;
            __syncthreads(); // sv / si may still be read by the previous row
            if ((threadIdx.x & 31) == 0) { sv[w] = b; si[w] = bi; }
            __syncthreads();
            if (threadIdx.x == 0)
                for (int k = 1; k < TPO / 32; k++) ext_take(&b, &bi, sv[k], si[k], is_min);
        }
        if (lane == 0 && r < rows) { vals[r] = b; idx[r] = bi; }
    }
}

// dim not innermost: columns j = (o, i), x over 32 columns, y splits the dim
template <typename T>
__global__ void ext_cols_kernel(const T *x, T *vals, int64_t *idx, long long outer, long long len, long long inner,
                                bool is_min)
{
    __shared__ T sv[8][33];
    __shared__ long long si[8][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    long long cols = outer * inner;
    for (long long jb = (long long)blockIdx.x * 32; jb < cols; jb += (long long)gridDim.x * 32) {
        long long j = jb + tx;
        T b = T();
        long long bi = EXT_NONE;
        if (j < cols) ext_scan(x + (j / inner) * len * inner + j % inner, inner, ty, len, 8, is_min, &b, &bi);
        sv[ty][tx] = b;
        si[ty][tx] = bi;
        __syncthreads();
        if (ty == 0 && j < cols) {
            for (int k = 1; k < 8; k++) ext_take(&b, &bi, sv[k][tx], si[k][tx], is_min);
            vals[j] = b;
            idx[j] = bi;
        }
        __syncthreads();
    }
}

template <typename T>
static lfl_status ext_launch(const lfl_tensor *c, long long outer, long long len, long long inner, bool is_min,
                             lfl_tensor *values, lfl_tensor *indices)
{
    const T *x = (const T *)lfl_data(c);
    T *v = (T *)lfl_data(values);
    int64_t *ix = (int64_t *)lfl_data(indices);
    if (inner == 1 && len <= 1024)
        LFL_LAUNCH(lfl_cuda_grid(outer, 8, 65535), 256, 0, ext_rows_kernel<T, 32>)(x, v, ix, outer, len, is_min);
    else if (inner == 1)
        LFL_LAUNCH(lfl_cuda_grid(outer, 1, 65535), 256, 0, ext_rows_kernel<T, 256>)(x, v, ix, outer, len, is_min);
    else
        LFL_LAUNCH(lfl_cuda_grid(outer * inner, 32, 65535), dim3(32, 8), 0, ext_cols_kernel<T>)(x, v, ix, outer, len,
                                                                                              inner, is_min);
    return LFL_OK;
}

lfl_status lfl_cuda_extremum(lfl_tensor *c, int d, bool is_min, lfl_tensor *values, lfl_tensor *indices)
{
    const char *op = is_min ? "min" : "max";
    long long outer, len, inner;
    lfl_cuda_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    if (outer * inner == 0) return LFL_OK; // the front refuses len == 0: nothing to pick only when no output
    LFL_TRY(lfl_cuda_use(c->device, op));
    switch (c->dtype) {
    case LFL_F32: LFL_TRY(ext_launch<float>(c, outer, len, inner, is_min, values, indices)); break;
    case LFL_F64: LFL_TRY(ext_launch<double>(c, outer, len, inner, is_min, values, indices)); break;
    case LFL_I32: LFL_TRY(ext_launch<int32_t>(c, outer, len, inner, is_min, values, indices)); break;
    case LFL_I64: LFL_TRY(ext_launch<int64_t>(c, outer, len, inner, is_min, values, indices)); break;
    default:
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op, lfl_dtype_name(c->dtype));
    }
    return lfl_cuda_launched(op);
}

extern "C" lfl_status lfl_cuda_max(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_cuda_extremum(a, dim, false, values, indices);
}

// dx (zeros of the input's shape) at (o, indices[o, i], i) = g[o, i]: one thread per g element, no two alike
template <typename T>
__global__ void max_backward_kernel(const T *g, const int64_t *idx, T *dx, long long m, long long len, long long inner)
{
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < m;
         j += (long long)gridDim.x * blockDim.x) {
        long long o = j / inner, i = j % inner;
        dx[(o * len + idx[j]) * inner + i] = g[j];
    }
}

extern "C" lfl_status lfl_cuda_max_backward(lfl_tensor *g, lfl_tensor *indices, int d, lfl_tensor *dx)
{
    long long outer, len, inner;
    lfl_cuda_dim_split(dx->ndim, dx->shape, d, &outer, &len, &inner);
    long long m = outer * inner;
    if (m == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dx->device, "max backward"));
    unsigned blocks = lfl_cuda_grid(m, 256, 65535);
    const int64_t *ix = (const int64_t *)lfl_data(indices);
    LFL_F32_F64_SWITCH(dx->dtype, "max backward", T,
                       LFL_LAUNCH(blocks, 256, 0, max_backward_kernel<T>)((const T *)lfl_data(g), ix,
                                                                          (T *)lfl_data(dx), m, len, inner));
    return lfl_cuda_launched("max backward");
}
