// int8_linear_lt's CUDA entry: LLM.int8's inference matmul with every rounding
// of the CPU kernel (core/ops/int8_linear_lt.c, bitsandbytes 0.50's): x goes
// to f16, outlier elements (|x16| >= threshold) are zeroed and their columns
// marked; each row is quantized to int8 by its absmax; the int8 x int8 product
// is summed exactly in int32 (a shared-memory tiled kernel); the epilogue
// scales it, adds the bias and the outlier columns' f32 product with the
// weight's dequantized columns, each product and sum rounded on its own
// (__fmul_rn / __fadd_rn: no FMA, as the CPU keeps it), so the result is the
// CPU's bit for bit.
//
// The weight's row scales SCB live in w->quant->scb, a CPU tensor (the
// quantization state does not move with to_device): they are copied to the
// device on each call (out-features floats), as are the outlier columns'
// indices (found on the device, compacted on the host: k bytes back).
#include "common.cuh"
extern "C" {
#include "quant/bnb8.h"
}

// the int8 tiles: 16 x 16 outputs per block, k in slices of 64
#define I8_TILE 16
#define I8_KT 64

// the columns holding an outlier of f16(x) (benign race: every writer writes 1)
__global__ static void i8_outliers_kernel(const float *x, long long total, long long k, float thr, uint8_t *flag)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += step) {
        float v = lfl_dev_f16_to_f32(lfl_dev_f32_to_f16(x[i]));
        if (fabsf(v) >= thr) flag[i % k] = 1;
    }
}

// x16 with its outlier elements zeroed (thr 0: none)
__device__ static inline float i8_xs(float x, float thr)
{
    float v = lfl_dev_f16_to_f32(lfl_dev_f32_to_f16(x));
    return thr > 0 && fabsf(v) >= thr ? 0.0f : v;
}

// one block per row: SCA = max |x16| (NaN if any is NaN, as the CPU's loop
// keeps it), CA = round_half_even(x16 * (f32(1 / SCA) * 127)), outlier
// columns 0 when there is more than one row
__global__ static void i8_rows_kernel(const float *x, long long m, long long k, float thr, const uint8_t *flag,
                                      float *sca, int8_t *ca)
{
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    const float *row = x + r * k;
    float am = 0, bad = 0;
    for (long long c = threadIdx.x; c < k; c += blockDim.x) {
        float v = fabsf(i8_xs(row[c], thr));
        if (v != v) bad = 1;
        else if (v > am) am = v;
    }
    am = lfl_block_max(am, scratch);
    bad = lfl_block_max(bad, scratch);
    if (bad > 0) am = NAN;
    float inv = __fmul_rn(__frcp_rn(am), 127.0f); // 127 / SCA as torch's scalar / tensor
    for (long long c = threadIdx.x; c < k; c += blockDim.x) {
        float v = __fmul_rn(i8_xs(row[c], thr), inv);
        // a zero row: 0 * inf is NaN, which becomes int8 0 (lfl_i8_round)
        ca[r * k + c] = am == 0.0f || (m > 1 && flag[c]) || v != v ? (int8_t)0 : (int8_t)(int)rintf(v);
    }
    if (threadIdx.x == 0) sca[r] = am;
}

// out[r, j] = ((f32(CA_r . CB_j) * (SCA_r SCB_j)) * c1 + bias_j) + sum over the
// outlier columns c of x[r, c] * ((CB_jc * SCB_j) * c2); blocks of 16 x 16
__global__ static void i8_gemm_kernel(const int8_t *ca, const int8_t *cb, long long m, long long n, long long k,
                                      const float *sca, const float *scb, const float *bias, const float *x,
                                      const int *outl, int nout, float *out)
{
    __shared__ int8_t As[I8_TILE][I8_KT];
    __shared__ int8_t Bs[I8_TILE][I8_KT];
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * I8_TILE + tx;
    long long r0 = (long long)blockIdx.x * I8_TILE, j0 = (long long)blockIdx.y * I8_TILE;
    long long r = r0 + ty, j = j0 + tx;
    int acc = 0;
    for (long long k0 = 0; k0 < k; k0 += I8_KT) {
        for (int e = tid; e < I8_TILE * I8_KT; e += I8_TILE * I8_TILE) {
            int rr = e / I8_KT, kk = e - rr * I8_KT;
            long long gk = k0 + kk;
            As[rr][kk] = r0 + rr < m && gk < k ? ca[(r0 + rr) * k + gk] : (int8_t)0;
            Bs[rr][kk] = j0 + rr < n && gk < k ? cb[(j0 + rr) * k + gk] : (int8_t)0;
        }
        __syncthreads();
        for (int kk = 0; kk < I8_KT; kk++) acc += (int)As[ty][kk] * (int)Bs[tx][kk];
        __syncthreads();
    }
    if (r >= m || j >= n) return;
    const float c1 = 6.200124e-05f, c2 = (float)7.874015718698502e-3;
    float sw = scb[j];
    float v = __fmul_rn(__fmul_rn((float)acc, __fmul_rn(sca[r], sw)), c1);
    if (bias) v = __fadd_rn(v, bias[j]);
    if (nout) {
        float add = 0;
        const int8_t *wj = cb + j * k;
        for (int i = 0; i < nout; i++) {
            int c = outl[i];
            add = __fadd_rn(add, __fmul_rn(x[r * k + c], __fmul_rn(__fmul_rn((float)wj[c], sw), c2)));
        }
        v = __fadd_rn(v, add);
    }
    out[r * n + j] = v;
}

extern "C" lfl_status lfl_cuda_int8_linear_lt(lfl_tensor *cx, lfl_tensor *w, lfl_tensor *cb, double threshold,
                                              lfl_tensor *o)
{
    const char *op = "int8_linear_lt";
    long long k = w->shape[1], n = w->shape[0], m = k ? lfl_numel(cx) / k : 0;
    if (m == 0 || n == 0) return LFL_OK;
    int dev = o->device;
    LFL_TRY(lfl_cuda_use(dev, op));
    lfl_tensor *scb = w->quant->scb, *dscb = NULL, *flag = NULL, *ca = NULL, *sca = NULL, *list = NULL;
    uint8_t *hflag = NULL;
    int *hlist = NULL;
    int nout = 0;
    float thr = (float)threshold;
    int64_t kk = k, mk = m * k, mm = m;
    lfl_status st = scb->device == dev ? (dscb = lfl_tensor_retain(scb), LFL_OK) : lfl_to_device(scb, dev, &dscb);
    if (st == LFL_OK) st = lfl_zeros(1, &kk, LFL_U8, dev, &flag);
    if (st == LFL_OK) st = lfl_empty(1, &mk, LFL_U8, dev, &ca);
    if (st == LFL_OK) st = lfl_empty(1, &mm, LFL_F32, dev, &sca);
    const float *px = (const float *)lfl_data(cx);
    if (st == LFL_OK && thr > 0) { // the outlier columns, as a list of indices on the device
        unsigned g = lfl_cuda_blocks(mk, 256);
        LFL_LAUNCH(g > 65535u ? 65535u : g, 256, 0, i8_outliers_kernel)(px, mk, k, thr, (uint8_t *)lfl_data(flag));
        st = lfl_cuda_launched(op);
        if (st == LFL_OK && (!(hflag = (uint8_t *)malloc((size_t)k)) || !(hlist = (int *)malloc(sizeof(int) * k))))
            st = lfl_fail(LFL_ERR_MEM, "%s: out of memory", op);
        if (st == LFL_OK) st = lfl_device_memcpy(dev, hflag, lfl_data(flag), (size_t)k, 1);
        for (long long c = 0; st == LFL_OK && c < k; c++)
            if (hflag[c]) hlist[nout++] = (int)c;
        int64_t nl = nout;
        if (st == LFL_OK && nout) st = lfl_empty(1, &nl, LFL_I32, dev, &list);
        if (st == LFL_OK && nout) st = lfl_device_memcpy(dev, lfl_data(list), hlist, sizeof(int) * nout, 0);
    }
    if (st == LFL_OK) {
        LFL_LAUNCH(m, 256, 0, i8_rows_kernel)(px, m, k, thr, (const uint8_t *)lfl_data(flag), (float *)lfl_data(sca),
                                              (int8_t *)lfl_data(ca));
        st = lfl_cuda_launched(op);
    }
    if (st == LFL_OK) {
        dim3 grid((unsigned)((m + I8_TILE - 1) / I8_TILE), (unsigned)((n + I8_TILE - 1) / I8_TILE));
        LFL_LAUNCH(grid, dim3(I8_TILE, I8_TILE), 0, i8_gemm_kernel)(
            (const int8_t *)lfl_data(ca), (const int8_t *)lfl_data(w), m, n, k, (const float *)lfl_data(sca),
            (const float *)lfl_data(dscb), cb ? (const float *)lfl_data(cb) : (const float *)0, px,
            nout ? (const int *)lfl_data(list) : (const int *)0, nout, (float *)lfl_data(o));
        st = lfl_cuda_launched(op);
    }
    free(hflag);
    free(hlist);
    lfl_tensor_release(dscb);
    lfl_tensor_release(flag);
    lfl_tensor_release(ca);
    lfl_tensor_release(sca);
    lfl_tensor_release(list);
    return st;
}
