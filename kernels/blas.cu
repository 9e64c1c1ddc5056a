// cuBLAS loading and the row-major GEMM wrappers of blas.cuh.
#include <dlfcn.h>
#include <pthread.h>
#include "blas.cuh"

static lfl_cublas_api api_;
static bool loaded_;
static pthread_once_t once_ = PTHREAD_ONCE_INIT;
static cublasHandle_t handles_[16];
static pthread_mutex_t handles_lock_ = PTHREAD_MUTEX_INITIALIZER;

static void load(void)
{
#ifdef LFL_CUDA_EMU
    api_ = lfl_emu::cublas_api<lfl_cublas_api>();
    loaded_ = true;
#else
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (int i = 0; i < 3 && !loaded_; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        api_.create = (decltype(api_.create))dlsym(h, "cublasCreate_v2");
        api_.set_stream = (decltype(api_.set_stream))dlsym(h, "cublasSetStream_v2");
        api_.sgemm = (decltype(api_.sgemm))dlsym(h, "cublasSgemm_v2");
        api_.dgemm = (decltype(api_.dgemm))dlsym(h, "cublasDgemm_v2");
        api_.gemm_ex = (decltype(api_.gemm_ex))dlsym(h, "cublasGemmEx");
        api_.gemm_strided_batched_ex = (decltype(api_.gemm_strided_batched_ex))dlsym(h, "cublasGemmStridedBatchedEx");
        loaded_ = api_.create && api_.set_stream && api_.sgemm && api_.dgemm && api_.gemm_ex &&
                  api_.gemm_strided_batched_ex;
        if (!loaded_) dlclose(h);
    }
#endif
}

lfl_status lfl_cublas(int device, const char *op, cublasHandle_t *h, const lfl_cublas_api **api)
{
    if (device < 0 || device >= 16) return lfl_fail(LFL_ERR_DEVICE, "%s: bad CUDA device %d", op, device);
    pthread_once(&once_, load);
    if (!loaded_) return lfl_fail(LFL_ERR_DEVICE, "%s: libcublas.so (12 or 13) could not be loaded", op);
    LFL_TRY(lfl_cuda_use(device, op));
    pthread_mutex_lock(&handles_lock_);
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (!handles_[device]) {
        s = api_.create(&handles_[device]);
        if (s == CUBLAS_STATUS_SUCCESS) s = api_.set_stream(handles_[device], lfl_cuda_stream());
    }
    *h = handles_[device];
    pthread_mutex_unlock(&handles_lock_);
    if (s != CUBLAS_STATUS_SUCCESS) return lfl_fail(LFL_ERR_DEVICE, "%s: cublasCreate failed (status %d)", op, (int)s);
    *api = &api_;
    return LFL_OK;
}

static bool cuda_type(lfl_dtype d, cudaDataType *t)
{
    switch (d) {
    case LFL_F32: *t = CUDA_R_32F; return true;
    case LFL_F64: *t = CUDA_R_64F; return true;
    case LFL_BF16: *t = CUDA_R_16BF; return true;
    case LFL_F16: *t = CUDA_R_16F; return true;
    default: return false;
    }
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the
// operands and the sizes, keep the flags.
lfl_status lfl_cuda_gemm_batched(int device, const char *op, bool ta, bool tb, int m, int n, int k, float alpha,
                                 const void *a, int lda, long long sa, const void *b, int ldb, long long sb,
                                 float beta, void *c, int ldc, long long sc, int batch, lfl_dtype abtype,
                                 lfl_dtype ctype)
{
    if (m <= 0 || n <= 0 || batch <= 0) return LFL_OK;
    // cuBLAS does not define k = 0 the same way on every version: callers set C themselves
    LFL_ASSERT(k > 0);
    cublasHandle_t h;
    const lfl_cublas_api *api;
    LFL_TRY(lfl_cublas(device, op, &h, &api));
    cudaDataType tab, tc;
    if (!cuda_type(abtype, &tab) || !cuda_type(ctype, &tc) || (abtype == LFL_F64) != (ctype == LFL_F64) ||
        (abtype == LFL_F32 && ctype != LFL_F32))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: GEMM of %s operands into %s is not implemented on CUDA", op,
                        lfl_dtype_name(abtype), lfl_dtype_name(ctype));
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (abtype == LFL_F64) {
        double al = alpha, be = beta;
        s = api->gemm_strided_batched_ex(h, ob, oa, n, m, k, &al, b, tab, ldb, sb, a, tab, lda, sa, &be, c, tc, ldc, sc,
                                         batch, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
    } else {
        s = api->gemm_strided_batched_ex(h, ob, oa, n, m, k, &alpha, b, tab, ldb, sb, a, tab, lda, sa, &beta, c, tc,
                                         ldc, sc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (s != CUBLAS_STATUS_SUCCESS) return lfl_fail(LFL_ERR_DEVICE, "%s: cuBLAS GEMM failed (status %d)", op, (int)s);
    return LFL_OK;
}

lfl_status lfl_cuda_gemm(int device, const char *op, bool ta, bool tb, int m, int n, int k, float alpha,
                         const void *a, int lda, const void *b, int ldb, float beta, void *c, int ldc,
                         lfl_dtype abtype, lfl_dtype ctype)
{
    return lfl_cuda_gemm_batched(device, op, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1,
                                 abtype, ctype);
}

lfl_status lfl_cuda_dgemm(int device, const char *op, bool ta, bool tb, int m, int n, int k, double alpha,
                          const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc)
{
    if (m <= 0 || n <= 0) return LFL_OK;
    LFL_ASSERT(k > 0);
    cublasHandle_t h;
    const lfl_cublas_api *api;
    LFL_TRY(lfl_cublas(device, op, &h, &api));
    cublasStatus_t s = api->dgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                                  ldb, a, lda, &beta, c, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return lfl_fail(LFL_ERR_DEVICE, "%s: cuBLAS GEMM failed (status %d)", op, (int)s);
    return LFL_OK;
}
