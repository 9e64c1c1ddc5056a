// Row-major SGEMM on CUDA through cuBLAS (column-major: compute C^T = B^T A^T).
// cuBLAS is dlopen'ed on the first GEMM: linking it makes every lfl start pay
// ~150 MB of RSS and ~90 ms of relocations, also on machines without a GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <pthread.h>
extern "C" {
#include "kernels.h"
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

extern "C" lfl_status lfl_cuda_sgemm(int device, bool ta, bool tb, int m, int n, int k, float alpha,
                                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                                     int ldc)
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
