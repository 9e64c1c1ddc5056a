// GEMMs with one bf16/f16 operand (a stored weight) and one f32 operand on
// CUDA, numerically what core/ops/lowp_gemm.c does on the CPU: the 16-bit
// operand is widened to f32 one block at a time into a device scratch and the
// block goes to cuBLAS's sgemm, so the products are exact f32 products of the
// widened weights and the f32 activations are never rounded (cuBLAS's bf16
// GemmEx would need both operands 16-bit). Under matmul precision "medium"
// the CPU rounds activations to bf16; here they stay f32 (more accurate than
// the CPU there, by the bf16 rounding of the activations).
// Also the small helpers the linear-family kernels share (bias rows, C *= beta).
#ifndef LFL_KERNELS_LOWP_GEMM_CUH
#define LFL_KERNELS_LOWP_GEMM_CUH

#include "blas.cuh"

// scratch of at most this many f32 per block (64 MB): wide enough that each
// sgemm runs at full speed, small next to an H100's memory
#define LFL_LOWP_SCRATCH_ELEMS (16ll << 20)

// dst[r * cols + c] = f32(src[r * sr + c * sc]) over rows x cols
template <typename S>
__global__ void lfl_widen_kernel(const S *src, long long rows, long long cols, long long sr, long long sc, float *dst)
{
    long long n = rows * cols, step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step) {
        long long r = i / cols, c = i - r * cols;
        dst[i] = lfl_ld(src + r * sr + c * sc);
    }
}

// c[r * ldc + j] *= beta over m x n (beta 0 clears, NaN included)
template <typename T> __global__ void lfl_scale_c_kernel(T *c, long long m, long long n, long long ldc, T beta)
{
    long long total = m * n, step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += step) {
        long long r = i / n, j = i - r * n;
        c[r * ldc + j] = beta == (T)0 ? (T)0 : c[r * ldc + j] * beta;
    }
}

// o[r * n + j] = bias[j]: C starts from the bias so the GEMM adds into it
template <typename T> __global__ void lfl_bias_rows_kernel(T *o, const T *bias, long long rows, long long n)
{
    long long total = rows * n, step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += step) o[i] = bias[i % n];
}

// grid of 256-thread blocks over n items, capped (the kernels stride over the rest)
static inline unsigned lfl_cuda_grid(long long n)
{
    unsigned b = lfl_cuda_blocks(n, 256);
    return b > 65535u ? 65535u : b;
}

static inline lfl_status lfl_cuda_scale_c(const char *op, lfl_dtype dt, void *c, long long m, long long n,
                                          long long ldc, double beta)
{
    if (m == 0 || n == 0) return LFL_OK;
    if (dt == LFL_F64)
        LFL_LAUNCH(lfl_cuda_grid(m * n), 256, 0, lfl_scale_c_kernel<double>)((double *)c, m, n, ldc, beta);
    else
        LFL_LAUNCH(lfl_cuda_grid(m * n), 256, 0, lfl_scale_c_kernel<float>)((float *)c, m, n, ldc, (float)beta);
    return lfl_cuda_launched(op);
}

// o [rows, n] contiguous = bias rows (f32 or f64)
static inline lfl_status lfl_cuda_bias_rows(const char *op, lfl_tensor *o, const lfl_tensor *bias, long long rows,
                                            long long n)
{
    if (rows == 0 || n == 0) return LFL_OK;
    if (o->dtype == LFL_F64)
        LFL_LAUNCH(lfl_cuda_grid(rows * n), 256, 0, lfl_bias_rows_kernel<double>)(
            (double *)lfl_data(o), (const double *)lfl_data(bias), rows, n);
    else
        LFL_LAUNCH(lfl_cuda_grid(rows * n), 256, 0, lfl_bias_rows_kernel<float>)(
            (float *)lfl_data(o), (const float *)lfl_data(bias), rows, n);
    return lfl_cuda_launched(op);
}

static inline lfl_status lfl_cuda_widen(const char *op, lfl_dtype dt, const void *src, long long rows,
                                        long long cols, long long sr, long long sc, float *dst)
{
    unsigned g = lfl_cuda_grid(rows * cols);
    if (dt == LFL_BF16)
        LFL_LAUNCH(g, 256, 0, lfl_widen_kernel<bf16_t>)((const bf16_t *)src, rows, cols, sr, sc, dst);
    else
        LFL_LAUNCH(g, 256, 0, lfl_widen_kernel<f16_t>)((const f16_t *)src, rows, cols, sr, sc, dst);
    return lfl_cuda_launched(op);
}

static inline long long lfl_lowp_abs(long long v) { return v < 0 ? -v : v; }

// C[m, n] = op(A)[m, k] @ B[k, n] + beta C, A f32 as cuBLAS takes it (ta,
// lda), B a bf16/f16 view at b with element strides sbk (along k) and sbn
// (along n). B is widened in blocks of output columns.
static inline lfl_status lfl_cuda_gemm_f32_lowp(int device, const char *op, bool ta, long long m, long long n,
                                                long long k, const float *a, int lda, lfl_dtype bdt, const void *b,
                                                long long sbk, long long sbn, float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (k == 0) return lfl_cuda_scale_c(op, LFL_F32, c, m, n, ldc, beta);
    long long nb = LFL_LOWP_SCRATCH_ELEMS / k;
    if (nb < 1) nb = 1;
    if (nb > n) nb = n;
    lfl_tensor *s;
    int64_t sshape[1] = {nb * k};
    LFL_TRY(lfl_empty(1, sshape, LFL_F32, device, &s));
    float *ps = (float *)lfl_data(s);
    size_t es = lfl_dtype_size(bdt);
    // keep the weight's fast dim contiguous: W[n, k] rows become S[nb, k] used transposed
    bool rows_of_n = lfl_lowp_abs(sbk) <= lfl_lowp_abs(sbn);
    lfl_status st = LFL_OK;
    for (long long j0 = 0; j0 < n && st == LFL_OK; j0 += nb) {
        long long w = n - j0 < nb ? n - j0 : nb;
        const char *src = (const char *)b + (j0 * sbn) * (long long)es;
        if (rows_of_n) {
            st = lfl_cuda_widen(op, bdt, src, w, k, sbn, sbk, ps);
            if (st == LFL_OK)
                st = lfl_cuda_gemm(device, op, ta, true, (int)m, (int)w, (int)k, 1.0f, a, lda, ps, (int)k, beta,
                                   c + j0, ldc, LFL_F32, LFL_F32);
        } else {
            st = lfl_cuda_widen(op, bdt, src, k, w, sbk, sbn, ps);
            if (st == LFL_OK)
                st = lfl_cuda_gemm(device, op, ta, false, (int)m, (int)w, (int)k, 1.0f, a, lda, ps, (int)w, beta,
                                   c + j0, ldc, LFL_F32, LFL_F32);
        }
    }
    lfl_tensor_release(s);
    return st;
}

// C[m, n] = A[m, k] @ op(B)[k, n] + beta C with A the bf16/f16 view (element
// strides sam along m, sak along k) and B f32 as cuBLAS takes it (tb, ldb);
// A is widened in blocks of output rows.
static inline lfl_status lfl_cuda_gemm_lowp_f32(int device, const char *op, long long m, long long n, long long k,
                                                lfl_dtype adt, const void *a, long long sam, long long sak, bool tb,
                                                const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (k == 0) return lfl_cuda_scale_c(op, LFL_F32, c, m, n, ldc, beta);
    long long mb = LFL_LOWP_SCRATCH_ELEMS / k;
    if (mb < 1) mb = 1;
    if (mb > m) mb = m;
    lfl_tensor *s;
    int64_t sshape[1] = {mb * k};
    LFL_TRY(lfl_empty(1, sshape, LFL_F32, device, &s));
    float *ps = (float *)lfl_data(s);
    size_t es = lfl_dtype_size(adt);
    bool rows_of_m = lfl_lowp_abs(sak) <= lfl_lowp_abs(sam);
    lfl_status st = LFL_OK;
    for (long long i0 = 0; i0 < m && st == LFL_OK; i0 += mb) {
        long long h = m - i0 < mb ? m - i0 : mb;
        const char *src = (const char *)a + (i0 * sam) * (long long)es;
        if (rows_of_m) {
            st = lfl_cuda_widen(op, adt, src, h, k, sam, sak, ps);
            if (st == LFL_OK)
                st = lfl_cuda_gemm(device, op, false, tb, (int)h, (int)n, (int)k, 1.0f, ps, (int)k, b, ldb, beta,
                                   c + i0 * (long long)ldc, ldc, LFL_F32, LFL_F32);
        } else {
            st = lfl_cuda_widen(op, adt, src, k, h, sak, sam, ps);
            if (st == LFL_OK)
                st = lfl_cuda_gemm(device, op, true, tb, (int)h, (int)n, (int)k, 1.0f, ps, (int)h, b, ldb, beta,
                                   c + i0 * (long long)ldc, ldc, LFL_F32, LFL_F32);
        }
    }
    lfl_tensor_release(s);
    return st;
}

// C[m, n] = alpha op(A) op(B) + beta C for contiguous f32/f64 operands of dtype
// dt (row-major, the leading dims their row lengths); k = 0 scales C
static inline lfl_status lfl_cuda_gemm_typed(int device, const char *op, lfl_dtype dt, bool ta, bool tb, long long m,
                                             long long n, long long k, double alpha, const void *a, long long lda,
                                             const void *b, long long ldb, double beta, void *c, long long ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) {
        LFL_TRY(lfl_cuda_use(device, op));
        return lfl_cuda_scale_c(op, dt, c, m, n, ldc, beta);
    }
    if (dt == LFL_F64) // alpha (a LoRA scaling) in full f64
        return lfl_cuda_dgemm(device, op, ta, tb, (int)m, (int)n, (int)k, alpha, (const double *)a, (int)lda,
                              (const double *)b, (int)ldb, beta, (double *)c, (int)ldc);
    return lfl_cuda_gemm(device, op, ta, tb, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb,
                         (float)beta, c, (int)ldc, dt, dt);
}

#endif
