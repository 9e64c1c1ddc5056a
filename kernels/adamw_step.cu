// AdamW's update on CUDA: one fused pass over p, g, m, v (the arithmetic of
// core/optim/adamw.c's CPU kernel, in the same order, so both devices follow
// torch.optim.AdamW).
#include "common.cuh"

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, long long n, float b1, float b2,
                             float decay, float step_size, float sbc2, float eps)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = m[i] * b1 + (1 - b1) * gi;
        float vi = v[i] * b2 + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / sbc2 + eps);
    }
}

extern "C" lfl_status lfl_cuda_adamw_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *m, lfl_tensor *v,
                                          const lfl_adamw_opts *o)
{
    long long n = lfl_numel(p);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(p->device, "adamw"));
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 65536) blocks = 65536; // grid-stride beyond
    LFL_LAUNCH(blocks, 256, 0, adamw_kernel)((float *)lfl_data(p), (const float *)lfl_data(g), (float *)lfl_data(m),
                                             (float *)lfl_data(v), n, (float)o->beta1, (float)o->beta2,
                                             (float)(1.0 - o->lr * o->weight_decay), (float)(o->lr / bc1),
                                             (float)sqrt(bc2), (float)o->eps);
    return lfl_cuda_launched("adamw");
}
