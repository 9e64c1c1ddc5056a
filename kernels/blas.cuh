// cuBLAS for the kernels: loaded on first use (dlopen: linking it costs every
// lfl start ~150 MB of RSS and ~90 ms, also on machines without a GPU), one
// handle per device, bound to lfl_cuda_stream(). Under the emulator the same
// table points at the emulator's host GEMMs.
#ifndef LFL_KERNELS_BLAS_CUH
#define LFL_KERNELS_BLAS_CUH

#include "common.cuh"
#ifndef LFL_CUDA_EMU
#include <cublas_v2.h>
#endif

struct lfl_cublas_api {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                            const float *, int, const float *, int, const float *, float *, int);
    cublasStatus_t (*dgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const double *,
                            const double *, int, const double *, int, const double *, double *, int);
    // A, B of one 16-bit type (or f32), C of ctype, f32 compute
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void *, const void *, cudaDataType, int, long long, const void *,
                                              cudaDataType, int, long long, const void *, void *, cudaDataType, int,
                                              long long, int, cublasComputeType_t, cublasGemmAlgo_t);
};

// The handle of `device` (made current) and the API; fails naming op when
// cuBLAS cannot be loaded or a handle not made.
lfl_status lfl_cublas(int device, const char *op, cublasHandle_t *h, const lfl_cublas_api **api);

// Row-major GEMM on the current device: C[m,n] = alpha op(A) op(B) + beta C,
// op(A) [m,k] (A stored [k,m] when ta), op(B) [k,n] (B stored [n,k] when tb),
// lda/ldb/ldc the row strides. All three of one dtype: f32, f64, or bf16/f16
// for A and B with C f32 (ctype LFL_F32) or of their type. f32 accumulation.
lfl_status lfl_cuda_gemm(int device, const char *op, bool ta, bool tb, int m, int n, int k, float alpha,
                         const void *a, int lda, const void *b, int ldb, float beta, void *c, int ldc,
                         lfl_dtype abtype, lfl_dtype ctype);
// f64 with f64 alpha and beta (lfl_cuda_gemm's are float: a scaling such as
// LoRA's alpha / r would lose digits an f64 gradient check sees)
lfl_status lfl_cuda_dgemm(int device, const char *op, bool ta, bool tb, int m, int n, int k, double alpha,
                          const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc);
// The same for `batch` GEMMs at element strides sa, sb, sc.
lfl_status lfl_cuda_gemm_batched(int device, const char *op, bool ta, bool tb, int m, int n, int k, float alpha,
                                 const void *a, int lda, long long sa, const void *b, int ldb, long long sb,
                                 float beta, void *c, int ldc, long long sc, int batch, lfl_dtype abtype,
                                 lfl_dtype ctype);

#endif
