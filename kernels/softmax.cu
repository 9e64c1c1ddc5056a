// softmax along any dim on CUDA (f32, f64), numerically stable: the max and
// the sum of exp(x - max) in one pass (an online pair, rescaled when the max
// grows), then the scaled (softmax) or shifted (log-softmax) output: two reads
// of x instead of the CPU kernel's three, the same results at the edges (-inf
// adds nothing, a row of -inf shifts by 0 and gives NaN, a +inf or a NaN
// makes the row NaN). Holds the forward kernel log_softmax.cu shares
// (lfl_cuda_softmax_fwd) and softmax's backward, dx = y * (g - sum(g * y)).
// Layouts: the dim innermost -> a warp (rows up to 1024) or a block of 256
// per row, consecutive threads on consecutive elements; otherwise one thread
// per column, consecutive threads on consecutive columns.
#include "dimwise.cuh"

#include <math.h>

// (m, s): the max so far and the sum of exp(x - m); x joins
template <typename T> __device__ static inline void ms_push(T &m, T &s, T x)
{
    if (x > m) {
        s = s * lfl_dev_exp(m - x) + 1; // m = -inf: exp(-inf) = 0
        m = x;
        if (x == (T)INFINITY) s = (T)NAN; // the CPU's exp(inf - inf) term
    } else if (x != (T)-INFINITY) {       // -inf adds exp(-inf) = 0 (and NaN against m = -inf)
        s += lfl_dev_exp(x - m);         // a NaN x makes s NaN
    }
}

// two pairs into one; symmetric bit for bit, so a butterfly leaves every lane the same pair
template <typename T> __device__ static inline void ms_merge(T &m, T &s, T m2, T s2)
{
    T mm = m > m2 ? m : m2;
    s = mm == (T)-INFINITY ? s + s2 : s * lfl_dev_exp(m - mm) + s2 * lfl_dev_exp(m2 - mm);
    m = mm;
}

// the pair of the row across its TPO threads (a warp, or the block); sm, ss: 32 values of shared memory
template <int TPO, typename T> __device__ static inline void ms_row(T &m, T &s, T *sm, T *ss)
{
    for (int o = 16; o > 0; o >>= 1) {
        T m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        ms_merge(m, s, m2, s2);
    }
    if (TPO > 32) {
        int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
        __syncthreads(); // sm / ss may still be read by the previous row
        if (lane == 0) { sm[w] = m; ss[w] = s; }
        __syncthreads();
        m = lane < nw ? sm[lane] : (T)-INFINITY;
        s = lane < nw ? ss[lane] : (T)0;
        for (int o = 16; o > 0; o >>= 1) {
            T m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            ms_merge(m, s, m2, s2);
        }
    }
}

// one row of len elements: out = softmax or log_softmax of x
template <typename T, int TPO>
__device__ static inline void softmax_row(const T *x, T *o, long long len, int lane, bool is_log, T *sm, T *ss)
{
    T m = -INFINITY, s = 0;
    for (long long k = lane; k < len; k += TPO) ms_push(m, s, x[k]);
    ms_row<TPO>(m, s, sm, ss);
    if (m == (T)-INFINITY) m = 0;
    if (is_log) {
        T ls = lfl_dev_log(s);
        for (long long k = lane; k < len; k += TPO) o[k] = (x[k] - m) - ls;
    } else {
        T inv = 1 / s;
        for (long long k = lane; k < len; k += TPO) o[k] = lfl_dev_exp(x[k] - m) * inv;
    }
}

template <typename T, int TPO>
__global__ void softmax_rows_kernel(const T *x, T *y, long long rows, long long len, bool is_log)
{
    __shared__ T sm[32], ss[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    for (long long rb = (long long)blockIdx.x * groups; rb < rows; rb += (long long)gridDim.x * groups) {
        long long r = rb + group;
        // a row past the end still takes part in the block's reductions (len 0)
        long long n = r < rows ? len : 0;
        softmax_row<T, TPO>(x + (r < rows ? r : 0) * len, y + (r < rows ? r : 0) * len, n, lane, is_log, sm, ss);
    }
}

// the dim not innermost: one thread per column (o, i), walking k with stride inner
template <typename T>
__global__ void softmax_cols_kernel(const T *x, T *y, long long outer, long long len, long long inner, bool is_log)
{
    long long cols = outer * inner;
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < cols;
         j += (long long)gridDim.x * blockDim.x) {
        long long base = (j / inner) * len * inner + j % inner;
        const T *xc = x + base;
        T *yc = y + base;
        T m = -INFINITY, s = 0;
        for (long long k = 0; k < len; k++) ms_push(m, s, xc[k * inner]);
        if (m == (T)-INFINITY) m = 0;
        if (is_log) {
            T ls = lfl_dev_log(s);
            for (long long k = 0; k < len; k++) yc[k * inner] = (xc[k * inner] - m) - ls;
        } else {
            T inv = 1 / s;
            for (long long k = 0; k < len; k++) yc[k * inner] = lfl_dev_exp(xc[k * inner] - m) * inv;
        }
    }
}

lfl_status lfl_cuda_softmax_fwd(lfl_tensor *c, int d, bool is_log, lfl_tensor *y)
{
    const char *op = is_log ? "log_softmax" : "softmax";
    long long outer, len, inner;
    lfl_cuda_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    if (outer * len * inner == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(c->device, op));
    LFL_F32_F64_SWITCH(c->dtype, op, T, {
        const T *x = (const T *)lfl_data(c);
        T *o = (T *)lfl_data(y);
        if (inner == 1 && len <= 1024)
            LFL_LAUNCH(lfl_cuda_grid(outer, 8, 65535), 256, 0, softmax_rows_kernel<T, 32>)(x, o, outer, len, is_log);
        else if (inner == 1)
            LFL_LAUNCH(lfl_cuda_grid(outer, 1, 65535), 256, 0, softmax_rows_kernel<T, 256>)(x, o, outer, len, is_log);
        else
            LFL_LAUNCH(lfl_cuda_grid(outer * inner, 256, 65535), 256, 0, softmax_cols_kernel<T>)(x, o, outer, len,
                                                                                                 inner, is_log);
    });
    return lfl_cuda_launched(op);
}

extern "C" lfl_status lfl_cuda_softmax(lfl_tensor *a, int dim, lfl_tensor *out)
{
    return lfl_cuda_softmax_fwd(a, dim, false, out);
}

// ---- backward: dx = y * (g - sum_k g * y) ------------------------------------------
template <typename T, int TPO>
__global__ void softmax_back_rows_kernel(const T *g, const T *y, T *dx, long long rows, long long len)
{
    __shared__ T scratch[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    for (long long rb = (long long)blockIdx.x * groups; rb < rows; rb += (long long)gridDim.x * groups) {
        long long r = rb + group, n = r < rows ? len : 0, off = (r < rows ? r : 0) * len;
        T dot = 0;
        for (long long k = lane; k < n; k += TPO) dot += g[off + k] * y[off + k];
        dot = lfl_row_sum<TPO>(dot, scratch);
        for (long long k = lane; k < n; k += TPO) dx[off + k] = y[off + k] * (g[off + k] - dot);
    }
}

template <typename T>
__global__ void softmax_back_cols_kernel(const T *g, const T *y, T *dx, long long outer, long long len,
                                         long long inner)
{
    long long cols = outer * inner;
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < cols;
         j += (long long)gridDim.x * blockDim.x) {
        long long base = (j / inner) * len * inner + j % inner;
        T dot = 0;
        for (long long k = 0; k < len; k++) dot += g[base + k * inner] * y[base + k * inner];
        for (long long k = 0; k < len; k++) dx[base + k * inner] = y[base + k * inner] * (g[base + k * inner] - dot);
    }
}

extern "C" lfl_status lfl_cuda_softmax_backward(lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx)
{
    long long outer, len, inner;
    lfl_cuda_dim_split(y->ndim, y->shape, dim, &outer, &len, &inner);
    if (outer * len * inner == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(y->device, "softmax backward"));
    LFL_F32_F64_SWITCH(y->dtype, "softmax backward", T, {
        const T *pg = (const T *)lfl_data(g), *py = (const T *)lfl_data(y);
        T *pd = (T *)lfl_data(dx);
        if (inner == 1 && len <= 1024)
            LFL_LAUNCH(lfl_cuda_grid(outer, 8, 65535), 256, 0, softmax_back_rows_kernel<T, 32>)(pg, py, pd, outer, len);
        else if (inner == 1)
            LFL_LAUNCH(lfl_cuda_grid(outer, 1, 65535), 256, 0, softmax_back_rows_kernel<T, 256>)(pg, py, pd, outer,
                                                                                                 len);
        else
            LFL_LAUNCH(lfl_cuda_grid(outer * inner, 256, 65535), 256, 0, softmax_back_cols_kernel<T>)(pg, py, pd, outer,
                                                                                                     len, inner);
    });
    return lfl_cuda_launched("softmax backward");
}
