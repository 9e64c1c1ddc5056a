// What the fused head-loss kernels (linear_cross_entropy, linear_kl_div,
// linear_topk_entropy) share on CUDA: the chunk GEMMs over V (logits of one
// column chunk, dhidden += dlogits @ w_c), the label range check with the
// CPU's message, and the per-row gradient coefficient read from g on the
// device (no host round trip).
#ifndef LFL_KERNELS_HEAD_LOSS_CUH
#define LFL_KERNELS_HEAD_LOSS_CUH

#include "lowp_gemm.cuh"
extern "C" {
#include "ops/loss.h"
}

// the rows' block: 256 threads, one block per row of a chunk
#define LFL_HEAD_THREADS 256

// buf[N, cw] = hidden[N, H] @ w[v0 : v0 + cw, H]^T; a bf16/f16 w with f32 hidden is widened block by block
static inline lfl_status lfl_cuda_chunk_logits(int dev, const char *op, lfl_dtype dt, const void *h, lfl_dtype wdt,
                                               const void *w, void *buf, long long N, long long H, long long v0,
                                               long long cw)
{
    const char *wc = (const char *)w + v0 * H * (long long)lfl_dtype_size(wdt);
    if (lfl_is_lowp(wdt))
        return lfl_cuda_gemm_f32_lowp(dev, op, false, N, cw, H, (const float *)h, (int)H, wdt, wc, 1, H, 0.0f,
                                      (float *)buf, (int)cw);
    LFL_TRY(lfl_cuda_use(dev, op));
    return lfl_cuda_gemm_typed(dev, op, dt, false, true, N, cw, H, 1.0, h, H, wc, H, 0.0, buf, cw); // H = 0 clears
}

// dst[N, H] += p[N, cw] @ w[v0 : v0 + cw, H]
static inline lfl_status lfl_cuda_chunk_dh(int dev, const char *op, lfl_dtype dt, const void *p, lfl_dtype wdt,
                                           const void *w, long long N, long long H, long long v0, long long cw,
                                           void *dst)
{
    const char *wc = (const char *)w + v0 * H * (long long)lfl_dtype_size(wdt);
    if (lfl_is_lowp(wdt))
        return lfl_cuda_gemm_f32_lowp(dev, op, false, N, H, cw, (const float *)p, (int)cw, wdt, wc, H, 1, 1.0f,
                                      (float *)dst, (int)H);
    return lfl_cuda_gemm_typed(dev, op, dt, false, false, N, H, cw, 1.0, p, cw, wc, H, 1.0, dst, H);
}

// dw[v0 : v0 + cw, H] = p[N, cw]^T @ hidden[N, H] (N = 0 clears)
static inline lfl_status lfl_cuda_chunk_dw(int dev, const char *op, lfl_dtype dt, const void *p, const void *h,
                                           long long N, long long H, long long v0, long long cw, void *dw)
{
    char *dwc = (char *)dw + v0 * H * (long long)lfl_dtype_size(dt);
    return lfl_cuda_gemm_typed(dev, op, dt, true, false, cw, H, N, 1.0, p, cw, h, H, 0.0, dwc, H);
}

// *first = the smallest position whose label is neither -100 nor in [0, V)
__global__ static void lfl_labels_check_kernel(const int64_t *lab, long long n, long long V,
                                               unsigned long long *first)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step) {
        int64_t v = lab[i];
        if (v != LFL_IGNORE_INDEX && (v < 0 || v >= V)) atomicMin(first, (unsigned long long)i);
    }
}

// The labels (contiguous i64 on the device) against V: LFL_OK, or the CPU
// kernel's error (lfl_loss_labels_check run on a host copy once a bad label
// is known to be there, so the message names it the same way).
static inline lfl_status lfl_cuda_labels_check(const char *op, lfl_tensor *labels, long long V)
{
    long long n = lfl_numel(labels);
    if (n == 0) return LFL_OK;
    int dev = labels->device;
    LFL_TRY(lfl_cuda_use(dev, op));
    unsigned long long none = (unsigned long long)n, first = none, *dflag;
    lfl_tensor *flag;
    int64_t one = 1;
    LFL_TRY(lfl_empty(1, &one, LFL_I64, dev, &flag));
    dflag = (unsigned long long *)lfl_data(flag);
    lfl_status st = lfl_device_memcpy(dev, dflag, &none, sizeof none, 0);
    if (st == LFL_OK) {
        LFL_LAUNCH(lfl_cuda_grid(n), 256, 0, lfl_labels_check_kernel)((const int64_t *)lfl_data(labels), n, V, dflag);
        st = lfl_cuda_launched(op);
    }
    if (st == LFL_OK) st = lfl_device_memcpy(dev, &first, dflag, sizeof first, 1);
    lfl_tensor_release(flag);
    if (st != LFL_OK || first == none) return st;
    lfl_tensor *host;
    LFL_TRY(lfl_to_device(labels, LFL_CPU, &host));
    st = lfl_loss_labels_check(op, host, V);
    lfl_tensor_release(host);
    return st != LFL_OK ? st : lfl_fail(LFL_ERR_DEVICE, "%s: the device found a bad label the host copy lacks", op);
}

__device__ static inline float lfl_exp(float x) { return expf(x); }
__device__ static inline double lfl_exp(double x) { return exp(x); }

// the gradient coefficient of row r: g[r] (no reduction) or g[0] / denom
// (denom: the count for mean, else 1), as lfl_loss_row_coef computes it
template <typename T> __device__ static inline double lfl_row_coef(const T *g, bool per_row, long long r, double denom)
{
    return per_row ? (double)g[r] : (double)g[0] / denom;
}

#endif
