// Sum of squares on CUDA (global-norm clipping): f64 partial sums per block,
// then one block adds the partials in a fixed order, so the result does not
// depend on scheduling; the total is copied back (the caller needs it on the host).
#include "common.cuh"

template <typename T> __global__ void partial_kernel(const T *x, long long n, double *part)
{
    __shared__ double scratch[32];
    double acc = 0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        acc += (double)x[i] * (double)x[i];
    acc = lfl_block_sum(acc, scratch);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void total_kernel(const double *part, int nparts, double *out)
{
    __shared__ double scratch[32];
    double acc = 0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) acc += part[i];
    acc = lfl_block_sum(acc, scratch);
    if (threadIdx.x == 0) *out = acc;
}

extern "C" lfl_status lfl_cuda_sum_squares(lfl_tensor *g, double *out)
{
    long long n = lfl_numel(g);
    *out = 0;
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(g->device, "sum_squares"));
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 1024) blocks = 1024;
    lfl_tensor *pt; // the partials and the total, from the caching allocator
    int64_t np = blocks + 1;
    LFL_TRY(lfl_empty(1, &np, LFL_F64, g->device, &pt));
    double *part = (double *)lfl_data(pt);
    if (g->dtype == LFL_F32)
        LFL_LAUNCH(blocks, 256, 0, partial_kernel<float>)((const float *)lfl_data(g), n, part);
    else
        LFL_LAUNCH(blocks, 256, 0, partial_kernel<double>)((const double *)lfl_data(g), n, part);
    LFL_LAUNCH(1, 1024, 0, total_kernel)(part, (int)blocks, part + blocks);
    lfl_status st = lfl_cuda_launched("sum_squares");
    if (st == LFL_OK) {
        cudaError_t e = cudaMemcpy(out, part + blocks, sizeof(double), cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) st = lfl_fail(LFL_ERR_DEVICE, "sum_squares: %s", cudaGetErrorString(e));
    }
    lfl_tensor_release(pt);
    return st;
}
