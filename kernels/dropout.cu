// dropout on CUDA: the CPU's mask bit for bit (core/ops/dropout.c). The host
// reserves the same n words of the global Philox stream; thread q draws
// counter base + q (kernels/philox.cuh) and decides elements 4q..4q+3 from its
// four words, keeping one when its 24-bit uniform is >= ceil(p 2^24). out =
// x * (keep ? scale : 0), a multiply so NaN/inf in a dropped element stay NaN.
#include <math.h>
#include "elementwise.cuh"
#include "philox.cuh"
extern "C" {
#include "rng.h"
}

template <typename T>
__global__ void dropout_kernel(const T *x, uint8_t *m, T *y, T scale, uint64_t seed, uint64_t base, uint32_t thr,
                               long long n)
{
    long long groups = (n + 3) / 4;
    LFL_GRID_LOOP(long long, q, groups) {
        uint32_t w[4];
        lfl_philox4x32(seed, base + (uint64_t)q, w);
        long long i0 = q * 4;
        for (int k = 0; k < 4 && i0 + k < n; k++) {
            uint8_t keep = thr == 0xffffffffu ? 0 : (w[k] >> 8) >= thr;
            m[i0 + k] = keep;
            y[i0 + k] = x[i0 + k] * (keep ? scale : (T)0);
        }
    }
}

template <typename T> __global__ void dropout_bwd_kernel(const T *g, const uint8_t *m, T *y, T scale, long long n)
{
    LFL_GRID_LOOP(long long, i, n) y[i] = g[i] * (m[i] ? scale : (T)0);
}

extern "C" lfl_status lfl_cuda_dropout(lfl_tensor *a, double p, lfl_tensor *mask, lfl_tensor *out)
{
    long long n = lfl_numel(a);
    if (a->dtype != LFL_F32 && a->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dropout: dtype %s is not implemented on CUDA", lfl_dtype_name(a->dtype));
    uint64_t seed = 0, base = 0;
    uint32_t thr = 0xffffffffu; // p = 1: nothing kept, nothing drawn
    if (p < 1) {
        base = lfl_rng_reserve((uint64_t)n); // as the CPU does, even for n = 0
        seed = lfl_rng_get().seed;
        thr = (uint32_t)ceil(p * 16777216.0);
    }
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(a->device, "dropout"));
    double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
    unsigned blocks = lfl_ew_blocks((n + 3) / 4);
    uint8_t *m = (uint8_t *)lfl_data(mask);
    if (a->dtype == LFL_F32)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, dropout_kernel<float>)((const float *)lfl_data(a), m,
                                                                     (float *)lfl_data(out), (float)scale, seed,
                                                                     base, thr, n);
    else
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, dropout_kernel<double>)((const double *)lfl_data(a), m,
                                                                      (double *)lfl_data(out), scale, seed, base,
                                                                      thr, n);
    return lfl_cuda_launched("dropout");
}

extern "C" lfl_status lfl_cuda_dropout_backward(lfl_tensor *g, lfl_tensor *mask, double scale, lfl_tensor *dx)
{
    long long n = lfl_numel(g);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(g->device, "dropout backward"));
    unsigned blocks = lfl_ew_blocks(n);
    const uint8_t *m = (const uint8_t *)lfl_data(mask);
    if (g->dtype == LFL_F32)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, dropout_bwd_kernel<float>)((const float *)lfl_data(g), m,
                                                                         (float *)lfl_data(dx), (float)scale, n);
    else if (g->dtype == LFL_F64)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, dropout_bwd_kernel<double>)((const double *)lfl_data(g), m,
                                                                          (double *)lfl_data(dx), scale, n);
    else
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dropout backward: dtype %s is not implemented on CUDA",
                        lfl_dtype_name(g->dtype));
    return lfl_cuda_launched("dropout backward");
}
