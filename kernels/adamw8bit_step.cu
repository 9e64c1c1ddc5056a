// 8-bit AdamW on CUDA (bitsandbytes' blockwise state; the CPU kernel is
// core/ops/adamw8bit_step.c): one CUDA block of 256 threads per quantization
// block. The threads dequantize their elements of both states with the
// dynamic maps, update them and the parameter, the block reduces the new
// absmax, and each thread requantizes its own elements by the CPU's search
// (the first midpoint >= x, ties to the lower code). Every product and sum
// is rounded on its own (__fmul_rn / __fadd_rn; the CPU file is compiled
// without contraction) and sqrtf and the divisions are IEEE-rounded (nvcc's
// default -prec-sqrt / -prec-div), so parameters, codes and absmax equal the
// CPU's bit for bit.
#include "common.cuh"
extern "C" {
#include "optim/adamw8bit.h"
}

struct Adam8Maps {
    float code1[256]; // signed dynamic map (exp_avg)
    float code2[256]; // unsigned dynamic map (exp_avg_sq)
};

struct Adam8Args {
    float b1, b2, omb1, omb2, decay, step_size, sbc2, eps;
    int wd;
};

// adamw8bit.c's bucket: index of the first midpoint >= x (255 if none)
__device__ static inline uint8_t a8_bucket(const float *mid, float x)
{
    int lo = 0, hi = 255;
    while (lo < hi) {
        int m = (lo + hi) >> 1;
        if (mid[m] < x) lo = m + 1; else hi = m;
    }
    return (uint8_t)lo;
}

__device__ static inline uint8_t a8_quant(const float *mid, float x, float inv)
{
    return a8_bucket(mid, fminf(1.0f, fmaxf(-1.0f, __fmul_rn(x, inv))));
}

// dynamic shared memory: the two maps, their midpoints, the reduction's
// scratch, then the block's new exp_avg / exp_avg_sq (each thread reads back
// only what it wrote)
__global__ void adamw8bit_kernel(float *p, const float *g, uint8_t *q1, float *a1, uint8_t *q2, float *a2,
                                 long long n, long long nb, int block, Adam8Maps maps, Adam8Args a)
{
    LFL_SMEM(float, sm);
    float *c1 = sm, *c2 = sm + 256, *mid1 = sm + 512, *mid2 = sm + 768, *red = sm + 1024;
    float *mm = sm + 1056, *vv = mm + block;
    int t = threadIdx.x;
    c1[t] = maps.code1[t];
    c2[t] = maps.code2[t];
    __syncthreads();
    if (t < 255) {
        mid1[t] = __fmul_rn(__fadd_rn(c1[t], c1[t + 1]), 0.5f); // (a + b) / 2, exactly
        mid2[t] = __fmul_rn(__fadd_rn(c2[t], c2[t + 1]), 0.5f);
    }
    __syncthreads();
    for (long long b = blockIdx.x; b < nb; b += gridDim.x) {
        long long s = b * block;
        int len = n - s < block ? (int)(n - s) : block;
        float am1 = a1[b], am2 = a2[b], max1 = 0, max2 = 0;
        for (int i = t; i < len; i += blockDim.x) {
            float gi = g[s + i];
            float mi = __fadd_rn(__fmul_rn(__fmul_rn(c1[q1[s + i]], am1), a.b1), __fmul_rn(a.omb1, gi));
            float vi = __fadd_rn(__fmul_rn(__fmul_rn(c2[q2[s + i]], am2), a.b2), __fmul_rn(__fmul_rn(a.omb2, gi), gi));
            mm[i] = mi;
            vv[i] = vi;
            max1 = fmaxf(max1, fabsf(mi));
            max2 = fmaxf(max2, fabsf(vi));
            float pi = p[s + i];
            if (a.wd) pi = __fmul_rn(pi, a.decay);
            float upd = mi / __fadd_rn(sqrtf(vi) / a.sbc2, a.eps);
            p[s + i] = __fadd_rn(pi, -__fmul_rn(a.step_size, upd));
        }
        // every thread has read a1[b] / a2[b] before the reductions' barriers
        max1 = lfl_block_max(max1, red);
        max2 = lfl_block_max(max2, red);
        float inv1 = 1.0f / fmaxf(max1, 1e-38f), inv2 = 1.0f / fmaxf(max2, 1e-38f);
        for (int i = t; i < len; i += blockDim.x) {
            q1[s + i] = a8_quant(mid1, mm[i], inv1);
            q2[s + i] = a8_quant(mid2, vv[i], inv2);
        }
        if (t == 0) {
            a1[b] = max1;
            a2[b] = max2;
        }
    }
}

extern "C" lfl_status lfl_cuda_adamw8bit_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *mq, lfl_tensor *mabs,
                                              lfl_tensor *vq, lfl_tensor *vabs, int64_t block, const lfl_adamw_opts *o)
{
    long long n = lfl_numel(p);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(p->device, "adamw8bit"));
    Adam8Maps maps;
    lfl_qmap_dynamic(true, maps.code1);
    lfl_qmap_dynamic(false, maps.code2);
    // the CPU kernel's scalars, computed the same way
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = sqrt(1.0 - pow(o->beta2, (double)o->step));
    Adam8Args a;
    a.b1 = (float)o->beta1;
    a.b2 = (float)o->beta2;
    a.omb1 = 1 - a.b1;
    a.omb2 = 1 - a.b2;
    a.eps = (float)o->eps;
    a.decay = (float)(1.0 - o->lr * o->weight_decay);
    a.step_size = (float)(o->lr / bc1);
    a.sbc2 = (float)bc2;
    a.wd = o->weight_decay > 0;
    long long nb = (n + block - 1) / block;
    unsigned blocks = nb > 65536 ? 65536u : (unsigned)nb; // block-stride beyond
    size_t smem = (1056 + 2 * (size_t)block) * sizeof(float);
    LFL_LAUNCH(blocks, 256, smem, adamw8bit_kernel)((float *)lfl_data(p), (const float *)lfl_data(g),
                                                    (uint8_t *)lfl_data(mq), (float *)lfl_data(mabs),
                                                    (uint8_t *)lfl_data(vq), (float *)lfl_data(vabs), n, nb,
                                                    (int)block, maps, a);
    return lfl_cuda_launched("adamw8bit");
}
