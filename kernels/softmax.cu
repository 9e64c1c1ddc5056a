// softmax along any dim on CUDA (f32, f64), numerically stable like the CPU
// kernel: the max, then the sum of exp(x - max), then the scaled (softmax) or
// shifted (log-softmax) output; a row of -inf shifts by 0. Holds the forward
// kernel log_softmax.cu shares (lfl_cuda_softmax_fwd) and softmax's backward,
// dx = y * (g - sum(g * y)). Layouts: the dim innermost -> a warp (rows up to
// 1024) or a block of 256 per row, consecutive threads on consecutive
// elements; otherwise one thread per column, consecutive threads on
// consecutive columns.
#include "dimwise.cuh"

#include <math.h>

// one row of len elements: out = softmax or log_softmax of x
template <typename T, int TPO>
__device__ static inline void softmax_row(const T *x, T *o, long long len, int lane, bool is_log, T *scratch)
{
    T m = -INFINITY, s = 0;
    for (long long k = lane; k < len; k += TPO) m = x[k] > m ? x[k] : m;
    m = lfl_row_max<TPO>(m, scratch);
    if (m == -INFINITY) m = 0;
    for (long long k = lane; k < len; k += TPO) s += lfl_dev_exp(x[k] - m);
    s = lfl_row_sum<TPO>(s, scratch);
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
    __shared__ T scratch[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    for (long long rb = (long long)blockIdx.x * groups; rb < rows; rb += (long long)gridDim.x * groups) {
        long long r = rb + group;
        // a row past the end still takes part in the block's reductions (len 0)
        long long n = r < rows ? len : 0;
        softmax_row<T, TPO>(x + (r < rows ? r : 0) * len, y + (r < rows ? r : 0) * len, n, lane, is_log, scratch);
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
        for (long long k = 0; k < len; k++) m = xc[k * inner] > m ? xc[k * inner] : m;
        if (m == -INFINITY) m = 0;
        for (long long k = 0; k < len; k++) s += lfl_dev_exp(xc[k * inner] - m);
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
