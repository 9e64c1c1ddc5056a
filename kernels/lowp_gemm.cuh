// GEMMs with one bf16/f16 operand (a stored weight) and one f32 operand on
// CUDA (lowp_gemm.cu), numerically what core/ops/lowp_gemm.c does on the CPU:
// the 16-bit operand is widened to f32 one block at a time into a device
// scratch and the block goes to cuBLAS's sgemm, so the products are exact f32
// products of the widened weights and the f32 activations are never rounded
// (cuBLAS's bf16 GemmEx would need both operands 16-bit). Matmul precision
// "medium" (bf16-rounded activations on the CPU) is not followed on CUDA, as
// gemm.cu's f32 GEMMs do not follow it either: results stay f32-accurate.
// Also the small helpers the linear-family kernels share (bias rows, C *= beta).
#ifndef LFL_KERNELS_LOWP_GEMM_CUH
#define LFL_KERNELS_LOWP_GEMM_CUH

#include "blas.cuh"

// c[r * ldc + j] *= beta over m x n (beta 0 clears, NaN included)
template <typename T> __global__ void lfl_scale_c_kernel(T *c, long long m, long long n, long long ldc, T beta)
{
    long long total = m * n, step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += step) {
        long long r = i / n, j = i - r * n;
        c[r * ldc + j] = beta == (T)0 ? (T)0 : c[r * ldc + j] * beta;
    }
}

// o[r * n + j] = bias[j * sb]: C starts from the bias so the GEMM adds into it
template <typename T>
__global__ void lfl_bias_rows_kernel(T *o, const T *bias, long long sb, long long rows, long long n)
{
    for (long long r = blockIdx.x; r < rows; r += gridDim.x)
        for (long long j = threadIdx.x; j < n; j += blockDim.x) o[r * n + j] = bias[j * sb];
}

// grid of 256-thread blocks over n items, capped (the kernels stride over the rest)
static inline unsigned lfl_cuda_grid(long long n)
{
    unsigned b = lfl_cuda_blocks(n, 256);
    return b > 65535u ? 65535u : b;
}

// grid of one block per row, capped (row kernels stride over the rest); row
// kernels walk their row's columns with the block's threads, so no element
// index is ever divided by a row length
static inline unsigned lfl_cuda_row_grid(long long rows)
{
    return rows < 1 ? 1u : rows > (1ll << 20) ? (1u << 20) : (unsigned)rows;
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

// o [rows, n] contiguous = bias rows (f32 or f64; bias 1-D with any stride)
static inline lfl_status lfl_cuda_bias_rows(const char *op, lfl_tensor *o, const lfl_tensor *bias, long long rows,
                                            long long n)
{
    if (rows == 0 || n == 0) return LFL_OK;
    long long sb = bias->stride[0];
    if (o->dtype == LFL_F64)
        LFL_LAUNCH(lfl_cuda_row_grid(rows), 256, 0, lfl_bias_rows_kernel<double>)(
            (double *)lfl_data(o), (const double *)lfl_data(bias), sb, rows, n);
    else
        LFL_LAUNCH(lfl_cuda_row_grid(rows), 256, 0, lfl_bias_rows_kernel<float>)(
            (float *)lfl_data(o), (const float *)lfl_data(bias), sb, rows, n);
    return lfl_cuda_launched(op);
}

// Test hook: the scratch block in f32 elements (n > 0 sets it; default 16M),
// so that tests reach the multi-block path with small tensors; returns the
// previous value.
extern "C" long long lfl_cuda_lowp_block_elems(long long n);

// C[m, n] = op(A)[m, k] @ B[k, n] + beta C, A f32 as cuBLAS takes it (ta,
// lda), B a bf16/f16 view at b with element strides sbk (along k) and sbn
// (along n). B is widened in blocks of output columns (lowp_gemm.cu).
lfl_status lfl_cuda_gemm_f32_lowp(int device, const char *op, bool ta, long long m, long long n, long long k,
                                  const float *a, int lda, lfl_dtype bdt, const void *b, long long sbk, long long sbn,
                                  float beta, float *c, int ldc);

// C[m, n] = A[m, k] @ op(B)[k, n] + beta C with A the bf16/f16 view (element
// strides sam along m, sak along k) and B f32 as cuBLAS takes it (tb, ldb);
// A is widened in blocks of output rows.
lfl_status lfl_cuda_gemm_lowp_f32(int device, const char *op, long long m, long long n, long long k, lfl_dtype adt,
                                  const void *a, long long sam, long long sak, bool tb, const float *b, int ldb,
                                  float beta, float *c, int ldc);

// C[m, n] = A[m, k] @ B + beta C with A f32 row-major (lda) and B an NF4/FP4
// weight W on the device (lfl_q4_check passed), taken as W^T when wt (W [n,
// k]: a linear's forward) or as W (W [k, n]: the input gradient). W is
// dequantized to f32 in blocks of rows (q4.cuh) and each block goes to
// sgemm, as the CPU's q4_gemm.c does with its tiles.
lfl_status lfl_cuda_gemm_f32_q4(int device, const char *op, long long m, long long n, long long k, const float *a,
                                int lda, const lfl_tensor *w, bool wt, float beta, float *c, int ldc);

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
