// SGD's update on CUDA (momentum, weight decay): core/optim/adamw.c's CPU
// kernel's arithmetic, one fused pass.
#include "common.cuh"

__global__ void sgd_kernel(float *p, const float *g, float *buf, long long n, float lr, float mu, float wd, int first)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float d = g[i] + wd * p[i];
        if (buf) {
            d = first ? d : buf[i] * mu + d;
            buf[i] = d;
        }
        p[i] -= lr * d;
    }
}

extern "C" lfl_status lfl_cuda_sgd_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *buf, double lr, double momentum,
                                        double weight_decay, bool first)
{
    long long n = lfl_numel(p);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(p->device, "sgd"));
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 65536) blocks = 65536;
    LFL_LAUNCH(blocks, 256, 0, sgd_kernel)((float *)lfl_data(p), (const float *)lfl_data(g),
                                           buf ? (float *)lfl_data(buf) : (float *)NULL, n, (float)lr,
                                           (float)momentum, (float)weight_decay, first ? 1 : 0);
    return lfl_cuda_launched("sgd");
}
