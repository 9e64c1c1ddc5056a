// Row-major SGEMM on CUDA through cuBLAS (column-major: compute C^T = B^T A^T).
#include <cublas_v2.h>
#include <cuda_runtime.h>
extern "C" {
#include "kernels.h"
}

static cublasHandle_t handles[16];

extern "C" lfl_status lfl_cuda_sgemm(int device, bool ta, bool tb, int m, int n, int k, float alpha,
                                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                                     int ldc)
{
    if (device < 0 || device >= 16) return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: bad device %d", device);
    cudaSetDevice(device);
    if (!handles[device] && cublasCreate(&handles[device]) != CUBLAS_STATUS_SUCCESS)
        return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: cublasCreate failed");
    cublasStatus_t s = cublasSgemm(handles[device], tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return lfl_fail(LFL_ERR_DEVICE, "cuda sgemm: cuBLAS status %d", (int)s);
    return LFL_OK;
}
