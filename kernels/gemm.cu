// matmul's CUDA entry in the dispatch table: f32 batches through cuBLAS SGEMM
// (row-major, so it computes C^T = B^T A^T in cuBLAS's column-major terms).
// cuBLAS is dlopen'ed on the first GEMM: linking it makes every lfl start pay
// ~150 MB of RSS and ~90 ms of relocations, also on machines without a GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
extern "C" {
#include "ops/matmul.h"
#include "ops/optable.h"
}

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*sgemm_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                   const float *, const float *, int, const float *, int, const float *,
                                   float *, int);

static cublasHandle_t handles[16];
static create_fn p_create;
static sgemm_fn p_sgemm;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load_cublas(void)
{
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (int i = 0; i < 3; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        p_create = (create_fn)dlsym(h, "cublasCreate_v2");
        p_sgemm = (sgemm_fn)dlsym(h, "cublasSgemm_v2");
        if (p_create && p_sgemm) return;
        p_create = NULL, p_sgemm = NULL;
        dlclose(h);
    }
}

// row-major C[m,n] = alpha op(A) op(B) + beta C on `device`
static lfl_status sgemm(int device, bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc)
{
    if (device < 0 || device >= 16) return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: bad device %d", device);
    pthread_once(&load_once, load_cublas);
    if (!p_sgemm) return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: libcublas.so (12 or 13) could not be loaded");
    cudaSetDevice(device);
    if (!handles[device] && p_create(&handles[device]) != CUBLAS_STATUS_SUCCESS)
        return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: cublasCreate failed");
    cublasStatus_t s = p_sgemm(handles[device], tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                               n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: cuBLAS status %d", (int)s);
    return LFL_OK;
}

// a and b as matmul's front leaves them: f32 with GEMM layouts (16-bit
// operands and f64 have no CUDA path yet); out [batch..., n, m] contiguous.
extern "C" lfl_status lfl_cuda_matmul(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out)
{
    if (a->dtype != LFL_F32 || b->dtype != LFL_F32)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "matmul: %s @ %s is not implemented on cuda:%d (f32 only)",
                        lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype), out->device);
    bool ta = false, tb = false;
    int lda = 1, ldb = 1;
    lfl_matmul_layout(a, &ta, &lda);
    lfl_matmul_layout(b, &tb, &ldb);
    int64_t n = out->shape[out->ndim - 2], m = out->shape[out->ndim - 1], k = a->shape[a->ndim - 1];
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS], batches;
    lfl_matmul_batch_strides(a, b, out, sa, sb, &batches);
    lfl_status st = LFL_OK;
    for (int64_t bi = 0; bi < batches && st == LFL_OK; bi++) {
        int64_t oa, ob;
        lfl_matmul_batch_offsets(out, sa, sb, bi, &oa, &ob);
        float *po = (float *)lfl_data(out) + bi * n * m;
        if (n == 0 || m == 0) continue;
        if (k == 0) {
            cudaSetDevice(out->device);
            cudaError_t e = cudaMemset(po, 0, sizeof(float) * (size_t)(n * m));
            if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "matmul: %s", cudaGetErrorString(e));
            continue;
        }
        st = sgemm(out->device, ta, tb, (int)n, (int)m, (int)k, 1.0f, (const float *)lfl_data(a) + oa, lda,
                   (const float *)lfl_data(b) + ob, ldb, 0.0f, po, (int)m);
    }
    return st;
}
