// CUDA device memory: the lfl_device_* hooks of core/device.h.
#include <stdio.h>
#include "common.cuh"
extern "C" {
#include "device.h"
}

static lfl_status cuda_fail(const char *what, cudaError_t e)
{
    return lfl_fail(LFL_ERR_DEVICE, "%s: %s", what, cudaGetErrorString(e));
}

extern "C" int lfl_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" const char *lfl_device_describe(void)
{
    static char buf[512];
    int rt = 0, n = 0;
    cudaRuntimeGetVersion(&rt);
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(buf, sizeof buf, "CUDA %d.%d built, no usable device (%s)", rt / 1000, (rt % 1000) / 10,
                 cudaGetErrorString(e));
        return buf;
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    snprintf(buf, sizeof buf, "CUDA %d.%d, %d device(s): %s (sm_%d%d, %.0f GiB)", rt / 1000, (rt % 1000) / 10, n,
             p.name, p.major, p.minor, p.totalGlobalMem / 1073741824.0);
    return buf;
}

extern "C" lfl_status lfl_device_alloc(int device, size_t nbytes, void **ptr)
{
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) return cuda_fail("cudaSetDevice", e);
    e = cudaMalloc(ptr, nbytes ? nbytes : 1);
    if (e != cudaSuccess) return cuda_fail("cudaMalloc", e);
    return LFL_OK;
}

extern "C" void lfl_device_free(int device, void *ptr)
{
    cudaSetDevice(device);
    cudaFree(ptr);
}

extern "C" lfl_status lfl_device_memset(int device, void *ptr, int v, size_t nbytes)
{
    cudaSetDevice(device);
    cudaError_t e = cudaMemset(ptr, v, nbytes);
    return e == cudaSuccess ? LFL_OK : cuda_fail("cudaMemset", e);
}

extern "C" lfl_status lfl_device_memcpy(int device, void *dst, const void *src, size_t nbytes, int kind)
{
    static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
    cudaSetDevice(device);
    cudaError_t e = cudaMemcpy(dst, src, nbytes, kinds[kind]);
    return e == cudaSuccess ? LFL_OK : cuda_fail("cudaMemcpy", e);
}
