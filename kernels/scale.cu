// g *= s in place on CUDA (the clipping coefficient).
#include "common.cuh"

__global__ void scale_kernel(float *x, long long n, float f)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] *= f;
}

extern "C" lfl_status lfl_cuda_scale(lfl_tensor *g, double s)
{
    long long n = lfl_numel(g);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(g->device, "scale_"));
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 65536) blocks = 65536;
    LFL_LAUNCH(blocks, 256, 0, scale_kernel)((float *)lfl_data(g), n, (float)s);
    return lfl_cuda_launched("scale_");
}
