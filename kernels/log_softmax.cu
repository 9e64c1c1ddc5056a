// log_softmax along any dim on CUDA (f32, f64): the forward is softmax.cu's
// kernel; the backward is dx = g - exp(y) * sum(g) along the dim, in
// softmax.cu's layouts (a warp or a block per row when the dim is innermost,
// else a thread per column).
#include "dimwise.cuh"

extern "C" lfl_status lfl_cuda_log_softmax(lfl_tensor *a, int dim, lfl_tensor *out)
{
    return lfl_cuda_softmax_fwd(a, dim, true, out);
}

template <typename T, int TPO>
__global__ void log_softmax_back_rows_kernel(const T *g, const T *y, T *dx, long long rows, long long len)
{
    __shared__ T scratch[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    for (long long rb = (long long)blockIdx.x * groups; rb < rows; rb += (long long)gridDim.x * groups) {
        long long r = rb + group, n = r < rows ? len : 0, off = (r < rows ? r : 0) * len;
        T sg = 0;
        for (long long k = lane; k < n; k += TPO) sg += g[off + k];
        sg = lfl_row_sum<TPO>(sg, scratch);
        for (long long k = lane; k < n; k += TPO) dx[off + k] = g[off + k] - lfl_dev_exp(y[off + k]) * sg;
    }
}

template <typename T>
__global__ void log_softmax_back_cols_kernel(const T *g, const T *y, T *dx, long long outer, long long len,
                                             long long inner)
{
    long long cols = outer * inner;
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < cols;
         j += (long long)gridDim.x * blockDim.x) {
        long long base = (j / inner) * len * inner + j % inner;
        T sg = 0;
        for (long long k = 0; k < len; k++) sg += g[base + k * inner];
        for (long long k = 0; k < len; k++)
            dx[base + k * inner] = g[base + k * inner] - lfl_dev_exp(y[base + k * inner]) * sg;
    }
}

extern "C" lfl_status lfl_cuda_log_softmax_backward(lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx)
{
    long long outer, len, inner;
    lfl_cuda_dim_split(y->ndim, y->shape, dim, &outer, &len, &inner);
    if (outer * len * inner == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(y->device, "log_softmax backward"));
    LFL_F32_F64_SWITCH(y->dtype, "log_softmax backward", T, {
        const T *pg = (const T *)lfl_data(g), *py = (const T *)lfl_data(y);
        T *pd = (T *)lfl_data(dx);
        if (inner == 1 && len <= 1024)
            LFL_LAUNCH(lfl_cuda_grid(outer, 8, 65535), 256, 0, log_softmax_back_rows_kernel<T, 32>)(pg, py, pd, outer,
                                                                                                   len);
        else if (inner == 1)
            LFL_LAUNCH(lfl_cuda_grid(outer, 1, 65535), 256, 0, log_softmax_back_rows_kernel<T, 256>)(pg, py, pd,
                                                                                                    outer, len);
        else
            LFL_LAUNCH(lfl_cuda_grid(outer * inner, 256, 65535), 256, 0, log_softmax_back_cols_kernel<T>)(
                pg, py, pd, outer, len, inner);
    });
    return lfl_cuda_launched("log_softmax backward");
}
